"""Strategy registry: the one place a strategy name becomes an implementation.

Each strategy's module is imported on first use, so a process that only reads the seam's
types (or never suggests) does not load scipy, scikit-learn or the peers' packages.
"""

from __future__ import annotations

from service.optimizer.base import Strategy
from service.specs import StrategyName


def get_strategy(name: StrategyName) -> tuple[Strategy, str | None]:
    """Returns the strategy for `name` and, when it falls back to another, a warning. Every
    strategy comes wrapped for several objectives and infeasible failures
    (service/optimizer/multiobjective.py)."""
    from service.optimizer.multiobjective import ObjectiveAdapter

    strategy, warning = _strategy(name)
    return ObjectiveAdapter(strategy), warning


def _strategy(name: StrategyName) -> tuple[Strategy, str | None]:
    """The one-objective strategy for `name` and, when it falls back to another, a warning.

    `tpe` needs optuna and `skopt` scikit-optimize (the dev/bench extras); without them the
    strategy falls back to `gp` with a warning saying which package is missing.
    """
    if name == StrategyName.RANDOM:
        from service.optimizer.sampling import RandomStrategy

        return RandomStrategy(), None
    if name == StrategyName.SOBOL:
        from service.optimizer.sampling import SobolStrategy

        return SobolStrategy(), None
    from service.optimizer.gp_strategy import GPStrategy

    if name in (StrategyName.TPE, StrategyName.SKOPT):
        from service.optimizer.peers import SkoptStrategy, TPEStrategy, peer_available

        missing = peer_available("optuna" if name == StrategyName.TPE else "skopt")
        if missing is not None:
            return GPStrategy(), missing
        return (TPEStrategy() if name == StrategyName.TPE else SkoptStrategy()), None
    return GPStrategy(), None
