"""Strategy registry: the one place a strategy name becomes an implementation."""

from __future__ import annotations

from service.optimizer.base import Strategy, StrategyName
from service.optimizer.gp_strategy import GPStrategy
from service.optimizer.peers import SkoptStrategy, TPEStrategy, peer_available
from service.optimizer.sampling import RandomStrategy, SobolStrategy


def get_strategy(name: StrategyName) -> tuple[Strategy, str | None]:
    """Returns the strategy for `name` and, when it falls back to another, a warning.

    `tpe` needs optuna and `skopt` scikit-optimize (the dev/bench extras); without them the
    strategy falls back to `gp` with a warning saying which package is missing.
    """
    if name == StrategyName.RANDOM:
        return RandomStrategy(), None
    if name == StrategyName.SOBOL:
        return SobolStrategy(), None
    if name == StrategyName.TPE:
        missing = peer_available("optuna")
        return (TPEStrategy(), None) if missing is None else (GPStrategy(), missing)
    if name == StrategyName.SKOPT:
        missing = peer_available("skopt")
        return (SkoptStrategy(), None) if missing is None else (GPStrategy(), missing)
    return GPStrategy(), None
