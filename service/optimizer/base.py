"""The strategy seam: what the scheduler hands a strategy, and what a strategy hands back.

A strategy never sees the database or the study: the scheduler rebuilds a `SuggestRequest`
from stored trials on every call (designer-per-request), so a restart or a second server
loses nothing. Anything a strategy wants to remember between calls goes in `state`, a JSON
object the scheduler stores on the study and passes back next time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from service.domain import Direction, TrialState
from service.space import SearchSpace
from service.specs import ConstraintSpec, StrategySpec


@dataclass(frozen=True)
class Observation:
    """A finished trial as the optimizer sees it.

    `value` is the raw objective value in the study's direction (not sign-flipped); it is None
    or non-finite for failed trials. `state` is a finished state; `step` is the last reported
    step for pruned trials.
    """

    params: Mapping[str, Any]
    value: float | None
    state: TrialState
    step: int | None = None
    values: tuple[float, ...] | None = None
    """Every objective's raw value (several objectives; `value` is the first)."""
    feasible: bool | None = None
    """False when a constraint failed (the value is real but does not count as a result);
    None without constraints."""
    metrics: Mapping[str, float] | None = None
    """The trial's named metrics (what `SuggestRequest.constraints` bound)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", TrialState(self.state))

    @property
    def is_finite(self) -> bool:
        return self.value is not None and math.isfinite(self.value)


@dataclass(frozen=True)
class SuggestRequest:
    """One call's input. `observations` and `pending` are this study's trials only.

    `prior` holds earlier studies' finished trials (warm start), one sequence per study,
    oldest first, with raw values in this study's direction: they are another function's
    values (another dataset, another scale), so they never mix with `observations`. The gp
    strategy builds a transfer model from them (service/optimizer/transfer.py); tpe and skopt
    see them as extra observations during their initial design; random and sobol ignore them.
    """

    space: SearchSpace
    direction: Direction
    spec: StrategySpec
    observations: Sequence[Observation]
    pending: Sequence[Mapping[str, Any]]
    count: int
    seed: int
    state: Mapping[str, Any] = field(default_factory=dict)
    prior: Sequence[Sequence[Observation]] = ()
    directions: tuple[Direction, ...] = ()
    """With several objectives, each one's direction (`direction` is the first's); strategies
    get them scalarized (service/optimizer/multiobjective.py) and never see more than one."""
    constraints: Sequence[ConstraintSpec] = ()
    """Bounds on observations' `metrics`: the gp strategy models each constrained metric
    (service/optimizer/feasibility.py)."""
    infeasible: Sequence[Mapping[str, Any]] = ()
    """Configurations that failed as infeasible (out of memory, say): no value, only the
    knowledge that they cannot run (service/optimizer/feasibility.py). Strategies see them
    as pending points too, so they are never suggested again."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "direction", Direction(self.direction))


@dataclass(frozen=True)
class SuggestionInfo:
    """Why a configuration was suggested; stored with its trial (`Trial.suggestion`, JSON)
    and read back by the dashboard and the EI stopping rule.

    `source`: the strategy that chose it ("gp", "sobol", "random", "tpe", "skopt") or how it
    arrived ("enqueued", "warm_start", "imported"). For GP suggestions: the acquisition, its
    value (standardized units), the predicted mean and std (the objective's own units and
    direction), and for the `auto` portfolio its name and the arms' gains. Non-finite numbers
    are stored as None.
    """

    source: str
    acquisition: str | None = None
    acquisition_value: float | None = None
    mean: float | None = None
    std: float | None = None
    portfolio: str | None = None
    hedge_gains: dict[str, float | None] | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored with the trial (None fields left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> SuggestionInfo:
        """Reads a stored object back; unknown keys and malformed values are ignored."""
        raw = raw or {}

        def text(key: str) -> str | None:
            value = raw.get(key)
            return value if isinstance(value, str) else None

        gains = raw.get("hedge_gains")
        return cls(
            source=text("source") or "",
            acquisition=text("acquisition"),
            acquisition_value=_finite_or_none(raw.get("acquisition_value")),
            mean=_finite_or_none(raw.get("mean")),
            std=_finite_or_none(raw.get("std")),
            portfolio=text("portfolio"),
            hedge_gains=(
                {str(k): _finite_or_none(v) for k, v in gains.items()}
                if isinstance(gains, dict)
                else None
            ),
        )


def _finite_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Suggestion:
    """A configuration to evaluate, with why it was chosen (no id: it is not a trial yet)."""

    params: dict[str, Any]
    info: SuggestionInfo


@dataclass(frozen=True)
class SuggestResult:
    suggestions: list[Suggestion]
    state: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class Strategy(Protocol):
    def suggest(self, request: SuggestRequest) -> SuggestResult:
        """Returns exactly `request.count` valid configurations of `request.space`.

        Must not return a configuration that is in `observations` or `pending` unless the
        space is exhausted. Must not raise on NaN/inf values or on an empty history.
        """
        ...
