"""Optimizers: pure functions from (space, observations, pending) to suggestions."""

from service.optimizer.base import (
    AcquisitionName,
    Direction,
    Observation,
    StrategyName,
    StrategySpec,
    Suggestion,
    SuggestRequest,
    SuggestResult,
)
from service.optimizer.strategies import get_strategy

__all__ = [
    "AcquisitionName",
    "Direction",
    "Observation",
    "StrategyName",
    "StrategySpec",
    "SuggestRequest",
    "SuggestResult",
    "Suggestion",
    "get_strategy",
]
