"""Optimizers: pure functions from (space, observations, pending) to suggestions.

Importing the package loads only the seam (`base`) and the strategy specification it is
configured with (`service.specs`, re-exported here); a strategy and its numerical stack are
imported when `get_strategy` is first asked for it.
"""

from service.optimizer.base import (
    Observation,
    Strategy,
    Suggestion,
    SuggestionInfo,
    SuggestRequest,
    SuggestResult,
)
from service.optimizer.strategies import get_strategy
from service.specs import AcquisitionName, StrategyName, StrategySpec

__all__ = [
    "AcquisitionName",
    "Observation",
    "Strategy",
    "StrategyName",
    "StrategySpec",
    "SuggestRequest",
    "SuggestResult",
    "Suggestion",
    "SuggestionInfo",
    "get_strategy",
]
