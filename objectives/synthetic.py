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
