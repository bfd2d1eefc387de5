"""Synthetic objectives: cheap, deterministic, with a learning curve, for tests and demos."""

from __future__ import annotations

import math
import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from objectives.base import Objective, TrialContext, TrialDiverged, TrialPruned


class SyntheticArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=3, ge=1, le=1000, description="Reported steps (epochs).")
    step_seconds: float = Field(default=0.0, ge=0, le=60, description="Sleep per step.")
    fail_above: float | None = Field(
        default=None, description="Raise an error when x exceeds this (failure injection)."
    )
    diverge_above: float | None = Field(
        default=None, description="Report NaN when x exceeds this (divergence injection)."
    )
    record_env: bool = Field(
        default=False, description="Write CUDA_VISIBLE_DEVICES to env.txt in the artifacts."
    )


def _quadratic(params: dict[str, Any], args: SyntheticArgs, ctx: TrialContext) -> float:
    """(x - 0.3)^2 + (y - 0.6)^2 (+0.1 if kind is 'b'), approached over `steps` steps."""
    x, y = float(params["x"]), float(params["y"])
    if args.record_env:
        ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
        (ctx.artifact_dir / "env.txt").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    if args.fail_above is not None and x > args.fail_above:
        raise RuntimeError(f"injected failure: x={x} > {args.fail_above}")
    final = (x - 0.3) ** 2 + (y - 0.6) ** 2 + (0.1 if params["kind"] == "b" else 0.0)
    value = final
    for step in range(1, args.steps + 1):
        if args.step_seconds:
            time.sleep(args.step_seconds)
        value = final + 1.0 / step - 1.0 / args.steps
        if args.diverge_above is not None and x > args.diverge_above:
            value = math.nan
        if not math.isfinite(value):
            raise TrialDiverged(f"value is {value} at step {step}")
        if ctx.report(step, value):
            raise TrialPruned()
    return value


SYNTHETIC = Objective(
    name="synthetic",
    description="A quadratic bowl with a decreasing learning curve; for tests and demos.",
    metric="loss",
    direction="minimize",
    space={
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "y": {"type": "float", "low": 0.0, "high": 1.0},
        "kind": {"type": "categorical", "choices": ["a", "b"]},
    },
    defaults={"x": 0.5, "y": 0.5, "kind": "a"},
    train=_quadratic,
    args_model=SyntheticArgs,
)


class BraninArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(default=0.0, ge=0, le=60, description="Sleep before returning.")


def _branin(params: dict[str, Any], args: BraninArgs, ctx: TrialContext) -> float:
    x1, x2 = float(params["x1"]), float(params["x2"])
    if args.seconds:
        time.sleep(args.seconds)
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    value = (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10
    ctx.report(1, value)
    return value


BRANIN = Objective(
    name="branin",
    description="The Branin function (global minimum 0.397887); a classic BO benchmark.",
    metric="value",
    direction="minimize",
    space={
        "x1": {"type": "float", "low": -5.0, "high": 10.0},
        "x2": {"type": "float", "low": 0.0, "high": 15.0},
    },
    train=_branin,
    args_model=BraninArgs,
)


class ZdtArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    problem: int = Field(default=1, ge=1, le=3, description="ZDT1, ZDT2 or ZDT3.")
    seconds: float = Field(default=0.0, ge=0, le=60, description="Sleep before returning.")
    oom_above: float | None = Field(
        default=None,
        description="Raise MemoryError when x0 exceeds this (a hidden out-of-memory region).",
    )


def _zdt(params: dict[str, Any], args: ZdtArgs, ctx: TrialContext) -> dict[str, float]:
    """ZDT1-3 (Zitzler, Deb and Thiele, 2000) over x0..x3 in [0, 1], both minimized, with a
    `cost` metric (for constraints) that grows with x1: a model size, say."""
    x = [float(params[f"x{i}"]) for i in range(4)]
    if args.seconds:
        time.sleep(args.seconds)
    if args.oom_above is not None and x[0] > args.oom_above:
        raise MemoryError(f"x0={x[0]} > {args.oom_above}: out of memory")
    g = 1.0 + 9.0 * sum(x[1:]) / 3.0
    f1 = x[0]
    if args.problem == 1:
        f2 = g * (1.0 - math.sqrt(f1 / g))
    elif args.problem == 2:
        f2 = g * (1.0 - (f1 / g) ** 2)
    else:
        f2 = g * (1.0 - math.sqrt(f1 / g) - (f1 / g) * math.sin(10.0 * math.pi * f1))
    ctx.report(1, f1)
    return {"f1": f1, "f2": f2, "cost": 1e6 * (1.0 + x[1])}


ZDT = Objective(
    name="zdt",
    description="ZDT1-3: two objectives (f1, f2, both minimized) and a cost metric; for "
    "tests and demos of several objectives, constraints and out-of-memory regions.",
    metric="f1",
    direction="minimize",
    space={f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(4)},
    train=_zdt,
    args_model=ZdtArgs,
)
