"""The objective interface: what a trainer declares and what it is called with.

A trainer is `train(params, args, ctx) -> float`: it trains one configuration `params`
(already validated against the search space), with the objective's parsed arguments `args`,
reports one value per epoch through `ctx.report`, and returns the final metric value.

Rules every trainer follows:
- `ctx.report(step, value)` returns True when the trial should stop now (pruned); the
  trainer then raises `TrialPruned` (or returns its last value) promptly.
- A diverged loss (NaN/inf) raises `TrialDiverged`; the worker fails the trial with the
  reason "diverged: ..." and carries on.
- The trainer calls `ctx.note_dataset(record)` once, after loading its data and before the
  first epoch, with what it trains on (`objectives.data.DatasetRecord.as_dict()`).
- Heavy imports (TensorFlow, Keras) happen inside `train`, never at module import, so the
  server can list objectives without them. `Objective.train` may therefore be given as a
  "module:function" string, imported on first call.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from service.domain import Direction


class TrialPruned(Exception):
    """Raised by a trainer when `ctx.report` told it to stop."""


class TrialDiverged(Exception):
    """Raised by a trainer whose loss became NaN or infinite."""


class NoArgs(BaseModel):
    """Argument schema of an objective that takes no arguments."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class TrialContext:
    """What a trainer gets besides its configuration.

    `report_fn(step, value)` is supplied by the worker; it returns True to ask the trainer to
    stop. `dataset_fn(record)` is supplied by the worker too; it receives the dataset record
    the trainer passes to `note_dataset` (a JSON-safe dict). `deadline` is a
    `time.monotonic()` value after which the trainer should stop.
    """

    trial_id: int
    study_id: int
    seed: int
    artifact_dir: Path
    report_fn: Callable[[int, float], bool] = field(default=lambda step, value: False)
    deadline: float | None = None
    device: str | None = None
    threads: int | None = None
    dataset_fn: Callable[[dict[str, Any]], None] = field(default=lambda record: None)
    dataset: dict[str, Any] | None = None
    _stop: bool = False

    def note_dataset(self, record: Mapping[str, Any]) -> None:
        """Records the data this trial trains on: kept as `self.dataset` (the trainers write
        it into summary.json) and passed to `dataset_fn`. Called once per trial."""
        self.dataset = dict(record)
        self.dataset_fn(dict(record))

    def report(self, step: int, value: float) -> bool:
        """Records the metric after `step`; True means stop now (pruned or out of time)."""
        if self.report_fn(step, float(value)):
            self._stop = True
        if self.deadline is not None and time.monotonic() > self.deadline:
            self._stop = True
        return self._stop

    @property
    def should_stop(self) -> bool:
        return self._stop

    def time_left(self) -> float:
        if self.deadline is None:
            return math.inf
        return self.deadline - time.monotonic()


TrainFn = Callable[[dict[str, Any], Any, TrialContext], float | Mapping[str, float]]
"""A trainer returns its metric's final value, or a dict of named final metrics (several
objectives, constraints such as a parameter count) that holds its metric among them."""


@dataclass(frozen=True)
class Objective:
    """A registered trainer: its identity, default search space, metric and argument schema.

    `space` uses the same JSON form as a study specification's `space` field; it is the
    default space for the default arguments. When the parameters a trainer uses depend on
    its arguments (the VAE's `architecture`, FC-DenseNet's `preset`), `space_fn(args)` gives
    the default space for parsed arguments, and `space_for(objective_args)` is what a study
    without its own `space` should search: every dimension of it changes the model.
    `defaults` is the source recipe's configuration (a value for every parameter any of its
    spaces holds), or None for an objective without one; `recipe_for(objective_args)`
    restricts it to `space_for`. `direction` may be given as its string ("minimize" or
    "maximize").
    """

    name: str
    description: str
    metric: str
    direction: Direction | Literal["minimize", "maximize"]
    space: Mapping[str, Mapping[str, Any]]
    train: TrainFn | str
    args_model: type[BaseModel] = NoArgs
    space_fn: Callable[[Any], Mapping[str, Mapping[str, Any]]] | None = None
    defaults: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "direction", Direction(self.direction))

    def parse_args(self, args: Mapping[str, Any] | None) -> BaseModel:
        """Validates `objective_args`; raises pydantic.ValidationError naming the field."""
        return self.args_model.model_validate(dict(args or {}))

    def space_for(self, args: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
        """The default search space for `args` (a study's `objective_args`).

        Validates `args` first (raises pydantic.ValidationError naming the field). Equals
        `space` for the default arguments and for objectives without `space_fn`.
        """
        parsed = self.parse_args(args)
        space = self.space if self.space_fn is None else self.space_fn(parsed)
        return {k: dict(v) for k, v in space.items()}

    def recipe_for(self, args: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The recipe's value of every parameter in `space_for(args)`; None without a recipe.

        Raises pydantic.ValidationError for invalid `args`.
        """
        if self.defaults is None:
            return None
        return {name: self.defaults[name] for name in self.space_for(args) if name in self.defaults}

    def load_train(self) -> TrainFn:
        if callable(self.train):
            return self.train
        module, _, attr = self.train.partition(":")
        fn: TrainFn = getattr(importlib.import_module(module), attr)
        return fn

    def run(
        self, params: dict[str, Any], args: Mapping[str, Any] | None, ctx: TrialContext
    ) -> float:
        """The final value of the objective's `metric` (from the dict, when the trainer
        returns named metrics; KeyError when it lacks the metric)."""
        result = self.run_metrics(params, args, ctx)
        return result[self.metric] if isinstance(result, dict) else result

    def run_metrics(
        self, params: dict[str, Any], args: Mapping[str, Any] | None, ctx: TrialContext
    ) -> float | dict[str, float]:
        """What the trainer returns: one value, or named metrics (each as a float)."""
        result = self.load_train()(params, self.parse_args(args), ctx)
        if isinstance(result, Mapping):
            return {str(k): float(v) for k, v in result.items()}
        return float(result)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "metric": self.metric,
            "direction": self.direction,
            "space": {k: dict(v) for k, v in self.space.items()},
            "args_schema": self.args_model.model_json_schema(),
        }
