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

from service.domain import Direction, trial_label


class TrialPruned(Exception):
    """Raised by a trainer when `ctx.report` told it to stop."""


class TrialDiverged(Exception):
    """Raised by a trainer whose loss became NaN or infinite."""


class ParameterMismatch(ValueError):
    """A study's space does not fit its objective's declared parameters.

    `name` is the parameter at fault (None when the space as a whole is), `str(exc)` the
    sentence to show.
    """

    def __init__(self, name: str | None, message: str) -> None:
        super().__init__(message)
        self.name = name


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
    trial_number: int | None = None
    _stop: bool = False

    @property
    def label(self) -> str:
        """The trial as log lines name it (`trial_label`)."""
        return trial_label(self.trial_number, self.trial_id, self.study_id)

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


TrainFn = Callable[[dict[str, Any], Any, TrialContext], float]


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

    The trainer contract (checked when a study is created, `complete_space`): the
    parameters a trainer reads for given arguments are `space_for(args)`'s, each with its
    range and, when `defaults` holds one, its default value (as a KerasTuner hyperparameter
    carries its own). A study's space may narrow or leave out any parameter that has a
    default (the trainer then gets the default, as a fixed parameter); it may not name a
    parameter the trainer does not read for these arguments, nor leave out one without a
    default.
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
        """The recipe's value of every parameter in `space_for(args)` that is active in it (a
        parameter whose `condition` the recipe's own values do not meet is left out); None
        without a recipe.

        Raises pydantic.ValidationError for invalid `args`.
        """
        if self.defaults is None:
            return None
        space = self.space_for(args)
        recipe = {name: self.defaults[name] for name in space if name in self.defaults}
        dropped = True
        while dropped:  # a parent dropped makes its children inactive too
            dropped = False
            for name, spec in space.items():
                condition = spec.get("condition") or {}
                if name in recipe and any(
                    parent not in recipe or recipe[parent] not in values
                    for parent, values in condition.items()
                ):
                    del recipe[name]
                    dropped = True
        return recipe

    def parameters_for(self, args: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
        """Every parameter the trainer reads for `args`: its default range (the space's JSON
        form) plus `"default"` when the objective declares one. Raises
        pydantic.ValidationError for invalid `args`."""
        defaults = self.defaults or {}
        return {
            name: {**spec, **({"default": defaults[name]} if name in defaults else {})}
            for name, spec in self.space_for(args).items()
        }

    def complete_space(
        self, space: Mapping[str, Mapping[str, Any]] | None, args: Mapping[str, Any] | None
    ) -> dict[str, dict[str, Any]]:
        """The space a study of this objective searches: `space` (None: the default space)
        with every parameter it leaves out fixed at its default.

        Raises ParameterMismatch naming a parameter of `space` the trainer does not read for
        `args`, or one it reads that `space` leaves out and that has no default; raises
        pydantic.ValidationError for invalid `args`.
        """
        declared = self.parameters_for(args)
        if space is None:
            return {name: _range(spec) for name, spec in declared.items()}
        for name in space:
            if name not in declared:
                raise ParameterMismatch(name, self._unknown(name, declared))
        out = {name: dict(spec) for name, spec in space.items()}
        for name, spec in declared.items():
            if name in out:
                continue
            if "default" not in spec:
                raise ParameterMismatch(
                    None,
                    f"objective {self.name!r} needs parameter {name!r}, which has no default: "
                    f"add it to the space (its range: {_range(spec)})",
                )
            out[name] = {"type": "fixed", "value": spec["default"]}
        return out

    def _unknown(self, name: str, declared: Mapping[str, Any]) -> str:
        elsewhere = set(self.space) | set(self.defaults or {})
        what = (
            f"does not use {name!r} with these objective_args" if name in elsewhere
            else f"has no parameter {name!r}"
        )
        return f"objective {self.name!r} {what}; its parameters: {sorted(declared)}"

    def load_train(self) -> TrainFn:
        if callable(self.train):
            return self.train
        module, _, attr = self.train.partition(":")
        fn: TrainFn = getattr(importlib.import_module(module), attr)
        return fn

    def run(
        self, params: dict[str, Any], args: Mapping[str, Any] | None, ctx: TrialContext
    ) -> float:
        """Trains `params`, with the declared default of every parameter they leave out (a
        study stored before its objective declared that parameter, or imported)."""
        parsed = self.parse_args(args)
        space = self.space if self.space_fn is None else self.space_fn(parsed)
        defaults = {k: v for k, v in (self.defaults or {}).items() if k in space}
        return float(self.load_train()({**defaults, **params}, parsed, ctx))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "metric": self.metric,
            "direction": self.direction,
            "space": {k: dict(v) for k, v in self.space.items()},
            "parameters": self.parameters_for(None),
            "args_schema": self.args_model.model_json_schema(),
        }


def _range(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A declared parameter's range alone (its JSON form without `"default"`)."""
    return {k: v for k, v in spec.items() if k != "default"}
