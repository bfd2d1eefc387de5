"""The strategy seam: what the scheduler hands a strategy, and what a strategy hands back.

A strategy never sees the database or the study: the scheduler rebuilds a `SuggestRequest`
from stored trials on every call (designer-per-request), so a restart or a second server
loses nothing. Anything a strategy wants to remember between calls goes in `state`, a JSON
object the scheduler stores on the study and passes back next time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from service.space import SearchSpace

Direction = Literal["minimize", "maximize"]


class StrategyName(StrEnum):
    GP = "gp"
    RANDOM = "random"
    SOBOL = "sobol"
    TPE = "tpe"
    SKOPT = "skopt"


class AcquisitionName(StrEnum):
    UCB = "ucb"
    PI = "pi"
    EI = "ei"
    AUTO = "auto"


class StrategySpec(BaseModel):
    """The `strategy` field of a study specification.

    `beta` multiplies the predicted std in UCB; `xi` is the EI/PI margin, both in standardized
    (warped) output units. `n_initial` defaults, for gp, to twice the number of searchable
    parameters clipped to [5, 10] (10 for tpe and skopt). `output_warping` turns the robust
    output transform (failed values imputed, bad half rank-warped) on or off; off still
    imputes failures.
    """

    model_config = ConfigDict(extra="forbid")

    name: StrategyName = StrategyName.GP
    acquisition: AcquisitionName = AcquisitionName.AUTO
    beta: float = Field(default=2.0, gt=0, le=100, allow_inf_nan=False)
    xi: float = Field(default=0.01, ge=0, le=10, allow_inf_nan=False)
    n_initial: int | None = Field(default=None, ge=1, le=1000)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    output_warping: bool = True


@dataclass(frozen=True)
class Observation:
    """A finished trial as the optimizer sees it.

    `value` is the raw objective value in the study's direction (not sign-flipped); it is None
    or non-finite for failed trials. `state` is "complete", "pruned" or "failed"; `step` is the
    last reported step for pruned trials.
    """

    params: Mapping[str, Any]
    value: float | None
    state: Literal["complete", "pruned", "failed"]
    step: int | None = None

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


@dataclass(frozen=True)
class Suggestion:
    """A configuration to evaluate, with why it was chosen (no id: it is not a trial yet).

    `info` is stored with the trial and shown on the dashboard: e.g. {"source": "gp",
    "acquisition": "ei", "acquisition_value": ..., "mean": ..., "std": ...}.
    """

    params: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


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
