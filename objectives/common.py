"""What every built-in Keras trainer shares that needs no TensorFlow.

- `TrainerArgs`: the arguments every trainer accepts (data, epochs, split, mixed precision,
  time limit); each trainer's argument model subclasses it.
- `merge_params`: a trial's parameters over the trainer's recipe defaults, so a study may
  search a subset of the default space; a parameter the configuration does not use is
  refused (a study never searches a dead dimension).
- `trial_data`: the trial's split of a loaded dataset, noted on the context.
- `TrialMonitor`: the per-epoch rules (finite losses, one `ctx.report` per epoch, pruning,
  time limit) and the metric history written to the artifact directory.

Rules:
- A non-finite loss or metric raises `TrialDiverged` at once.
- `ctx.report` is called exactly once per finished epoch with the validation metric.
- `ctx.note_dataset` is called once, by `trial_data`, before the first epoch; summary.json
  carries the same record under "dataset".
- When `ctx.report` returns True before the time limit, the trial is pruned: `result()`
  raises `TrialPruned`. When the time limit (the earlier of `ctx.deadline` and
  `args.time_limit`) has passed, training stops and `result()` returns the last value.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from objectives.base import TrialContext, TrialDiverged, TrialPruned
from objectives.data import DataOptions, Images, Split, split
from objectives.images import save_curves

log = logging.getLogger(__name__)


class TrainerArgs(BaseModel):
    """Arguments common to the built-in trainers (a study's `objective_args`)."""

    model_config = ConfigDict(extra="forbid")

    data: DataOptions = Field(
        default_factory=DataOptions,
        description="Where the dataset comes from and whether a fallback is acceptable.",
    )
    epochs: int = Field(default=10, ge=1, le=10_000)
    train_size: int | None = Field(
        default=None, ge=16, description="Use at most this many training images."
    )
    validation_fraction: float = Field(default=0.2, ge=0.05, le=0.5)
    split_seed: int | None = Field(
        default=None,
        description="Seed of the train/validation split; default: the trial seed.",
    )
    max_batch_size: int | None = Field(
        default=None, ge=1, description="Upper limit on the batch size (device memory)."
    )
    mixed_precision: bool = Field(default=False, description="Compute in float16/bfloat16.")
    deterministic: bool = Field(default=True, description="Enable deterministic kernels.")
    time_limit: float | None = Field(
        default=None, gt=0, description="Seconds; training stops after the epoch in progress."
    )
    images: bool = Field(default=True, description="Write PNG artifacts.")

    @model_validator(mode="before")
    @classmethod
    def _data_path_alias(cls, values: Any) -> Any:
        """`data_path` (the arguments' earlier, flat form, still in stored studies) is
        `data.path`; giving both is an error."""
        if not isinstance(values, Mapping) or "data_path" not in values:
            return values
        out = dict(values)
        path = out.pop("data_path")
        data = dict(out.get("data") or {})
        if path is not None:
            if data.get("path") not in (None, path):
                raise ValueError(f"data_path ({path!r}) and data.path ({data['path']!r}) differ")
            data["path"] = path
        out["data"] = data
        return out


def merge_params(
    defaults: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    unused: Collection[str] = (),
    because: str = "",
) -> dict[str, Any]:
    """Returns `params` over `defaults`.

    Raises ValueError naming any parameter that is not in `defaults`, or that is in
    `unused` (a parameter this configuration ignores; `because` says why).
    """
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"unknown parameters {unknown}; this objective takes {sorted(defaults)}")
    dead = sorted(set(params) & set(unused))
    if dead:
        raise ValueError(f"parameters {dead} are not used {because}; remove them from the "
                         f"study's space")
    return {**defaults, **params}


def batch_size(params: Mapping[str, Any], args: TrainerArgs) -> int:
    """The trial's `batch_size` parameter, capped by `args.max_batch_size`."""
    size = int(params["batch_size"])
    if args.max_batch_size is not None:
        size = min(size, args.max_batch_size)
    return max(1, size)


def check_finite(where: str, values: Mapping[str, Any]) -> None:
    """Raises TrialDiverged naming the first NaN or infinite value in `values`."""
    for name, value in values.items():
        v = float(value)
        if not math.isfinite(v):
            raise TrialDiverged(f"{name} is {v} at {where}")


def trial_data(data: Images, args: TrainerArgs, ctx: TrialContext) -> Split:
    """The trial's train/validation split (seeded by `args.split_seed`, else the trial seed),
    noted on `ctx` with `ctx.note_dataset` and logged."""
    seed = args.split_seed if args.split_seed is not None else ctx.seed
    parts = split(
        data, seed=seed, validation_fraction=args.validation_fraction, train_size=args.train_size
    )
    ctx.note_dataset(parts.record.as_dict())
    log.info("%s trains on %s", ctx.label, parts.record.summary())
    return parts


class TrialMonitor:
    """Per-epoch bookkeeping for one trial; see the module docstring for the rules."""

    def __init__(self, ctx: TrialContext, *, metric: str, time_limit: float | None) -> None:
        self.ctx = ctx
        self.metric = metric
        self.started = time.monotonic()
        limits = [ctx.deadline] if ctx.deadline is not None else []
        if time_limit is not None:
            limits.append(self.started + time_limit)
        self.deadline = min(limits) if limits else None
        self.history: list[dict[str, float]] = []
        self.pruned = False
        self.timed_out = False
        self._epoch_start = self.started

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def begin_epoch(self) -> None:
        self._epoch_start = time.monotonic()

    def end_epoch(self, epoch: int, logs: Mapping[str, Any]) -> bool:
        """Records epoch `epoch` (1-based) and reports its metric; True means stop training."""
        values = {k: float(v) for k, v in logs.items()}
        if self.metric not in values:
            raise KeyError(f"metric {self.metric!r} missing from epoch logs {sorted(values)}")
        check_finite(f"epoch {epoch}", values)
        values["seconds"] = time.monotonic() - self._epoch_start
        self.history.append({"epoch": float(epoch), **values})
        stop = self.ctx.report(epoch, values[self.metric])
        log.info(
            "%s epoch %d: %s=%.6g", self.ctx.label, epoch, self.metric, values[self.metric]
        )
        if self.out_of_time():
            self.timed_out = True
            log.info("%s: time limit reached after epoch %d", self.ctx.label, epoch)
            return True
        if stop:
            self.pruned = True
            log.info("%s: pruned after epoch %d", self.ctx.label, epoch)
        return stop

    @property
    def last_value(self) -> float:
        if not self.history:
            raise RuntimeError(f"trial {self.ctx.trial_id} finished no epoch")
        return self.history[-1][self.metric]

    def result(self) -> float:
        """The final metric; raises TrialPruned when the trial was pruned."""
        if self.pruned:
            raise TrialPruned(f"pruned after epoch {len(self.history)}")
        return self.last_value

    def save(self, curves: Mapping[str, Sequence[str]], *, images: bool = True) -> None:
        """Writes metrics.csv, summary.json and one loss-curve PNG per entry of `curves`.

        `curves` maps a file stem to the history columns drawn in it.
        """
        out = self.ctx.artifact_dir
        out.mkdir(parents=True, exist_ok=True)
        columns = sorted({k for row in self.history for k in row} - {"epoch"})
        with (out / "metrics.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", *columns])
            for row in self.history:
                writer.writerow([int(row["epoch"]), *(row.get(c, "") for c in columns)])
        summary = {
            "metric": self.metric,
            "value": self.history[-1][self.metric] if self.history else None,
            "epochs": len(self.history),
            "pruned": self.pruned,
            "timed_out": self.timed_out,
            "seconds": time.monotonic() - self.started,
            "dataset": self.ctx.dataset,
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        if not images or not self.history:
            return
        for stem, names in curves.items():
            series = {n: [row[n] for row in self.history if n in row] for n in names}
            save_curves(_png(out, stem), {n: s for n, s in series.items() if s}, title=stem)


def _png(directory: Path, stem: str) -> Path:
    return directory / f"{stem}.png"
