"""The parts of a study specification besides its space: strategy, pruning, stopping, warm
start. Pydantic models only: the wire contract and the client import them; the policies and
the optimizer interpret them (service.policies, service.optimizer).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.domain import Direction

MAX_WARM_START_SOURCES = 10


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


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MedianRule(_Rule):
    rule: Literal["median"] = "median"
    warmup_steps: int = Field(default=0, ge=0, le=100_000)
    min_trials: int = Field(default=5, ge=1, le=100_000)


class AshaRule(_Rule):
    rule: Literal["asha"] = "asha"
    min_steps: int = Field(default=1, ge=1, le=100_000)
    reduction_factor: int = Field(default=3, ge=2, le=100)


PruningSpec = Annotated[MedianRule | AshaRule, Field(discriminator="rule")]


def parse_pruning(raw: dict[str, Any]) -> MedianRule | AshaRule:
    """A stored `pruning` object as its rule."""
    if raw.get("rule") == "asha":
        return AshaRule.model_validate(raw)
    return MedianRule.model_validate(raw)


class StoppingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: float | None = Field(default=None, allow_inf_nan=False)
    patience: int | None = Field(default=None, ge=1, le=100_000)
    ei_threshold: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    ei_patience: int = Field(default=3, ge=1, le=1000)
    min_trials: int = Field(default=10, ge=1, le=100_000)


class WarmStartSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    studies: list[int | str] = Field(min_length=1, max_length=MAX_WARM_START_SOURCES)
    n_seed: int = Field(default=1, ge=0, le=100)


MAX_OBJECTIVES = 3
MAX_CONSTRAINTS = 10


class ObjectiveSpec(BaseModel):
    """One of a study's several objectives (the `objectives` field)."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, max_length=200)
    direction: Direction


class ConstraintSpec(BaseModel):
    """A bound on a metric that a trial reports (`metrics`): feasible when `min <= value <=
    max` (either bound may be left out, not both)."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, max_length=200)
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _bounds(self) -> ConstraintSpec:
        if self.min is None and self.max is None:
            raise ValueError("a constraint needs `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


def parse_objectives(raw: list[Any] | None) -> list[ObjectiveSpec]:
    """A stored `objectives` list (empty: the study has one objective)."""
    return [ObjectiveSpec.model_validate(o) for o in raw or []]


def parse_constraints(raw: list[Any] | None) -> list[ConstraintSpec]:
    return [ConstraintSpec.model_validate(c) for c in raw or []]
