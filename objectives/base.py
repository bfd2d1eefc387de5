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
        for name, spec in out.items():  # a parameter used only in some configurations
            if declared[name].get("condition") and not spec.get("condition"):
                spec["condition"] = dict(declared[name]["condition"])
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
            if spec.get("condition"):
                out[name]["condition"] = dict(spec["condition"])
        return _settle_fixed_parents(out, filled=set(out) - set(space))

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
        """The final value of the objective's `metric` (from the dict, when the trainer
        returns named metrics; KeyError when it lacks the metric)."""
        result = self.run_metrics(params, args, ctx)
        return result[self.metric] if isinstance(result, dict) else result

    def run_metrics(
        self, params: dict[str, Any], args: Mapping[str, Any] | None, ctx: TrialContext
    ) -> float | dict[str, float]:
        """What the trainer returns: one value, or named metrics (each as a float). It trains
        `params` with the declared default of every parameter they leave out (a study stored
        before its objective declared that parameter, or imported)."""
        parsed = self.parse_args(args)
        space = self.space if self.space_fn is None else self.space_fn(parsed)
        result = self.load_train()(_with_defaults(params, self.defaults or {}, space), parsed, ctx)
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
            "parameters": self.parameters_for(None),
            "args_schema": self.args_model.model_json_schema(),
        }


def _range(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A declared parameter's range alone (its JSON form without `"default"`)."""
    return {k: v for k, v in spec.items() if k != "default"}


def _with_defaults(
    params: Mapping[str, Any], defaults: Mapping[str, Any], space: Mapping[str, Any]
) -> dict[str, Any]:
    """`params` plus the default of each parameter of `space` they leave out and that is
    active: a conditional parameter gets its default only when its parents' values (given or
    defaulted themselves) satisfy its condition, so a dense VAE never receives `filters`."""
    merged = dict(params)
    waiting = {k: v for k, v in defaults.items() if k in space and k not in merged}
    added = True
    while added:
        added = False
        for name in list(waiting):
            condition = space[name].get("condition") or {}
            if all(parent in merged and merged[parent] in values
                   for parent, values in condition.items()):
                merged[name] = waiting.pop(name)
                added = True
    return merged


def _settle_fixed_parents(
    space: dict[str, dict[str, Any]], *, filled: set[str]
) -> dict[str, dict[str, Any]]:
    """Resolves the conditions on a parent fixed at its default (`filled`: the parameters the
    study left out). A condition the default meets is dropped; a filled parameter whose
    condition it fails is never active and leaves the space; a parameter the study named that
    could never be active is refused (ParameterMismatch naming it)."""
    changed = True
    while changed:
        changed = False
        for name in list(space):
            condition = space[name].get("condition")
            parent = next((p for p in condition or {} if p in filled or p not in space), None)
            if condition is None or parent is None:
                continue
            fixed = space.get(parent)
            if fixed is not None and fixed["value"] in condition[parent]:
                rest = {p: v for p, v in condition.items() if p != parent}
                space[name] = {k: v for k, v in space[name].items() if k != "condition"}
                if rest:
                    space[name]["condition"] = rest
            elif name in filled:
                del space[name]
            elif fixed is not None:
                raise ParameterMismatch(
                    name,
                    f"{name!r} is used only when {parent!r} is one of {condition[parent]}, "
                    f"and the space leaves {parent!r} at its default {fixed['value']!r}: "
                    f"search {parent!r} too, or leave {name!r} out",
                )
            else:
                continue  # the study named it with an unknown parent: validation refuses it
            changed = True
    return space
