"""Trial pruning: decided on every report from the study's `pruning` configuration.

Two rules, both decided from stored intermediate values only (so any server process decides
the same way, and a restart changes nothing):

- median (Golovin et al., Vizier's median stopping rule; Optuna's MedianPruner): after the
  first `warmup_steps` steps (steps count from 1, one per epoch), stop a trial whose best
  value so far is worse than the median of the values that completed trials reported at the
  same step, once at least `min_trials` completed trials reported that step.
- asha (Li et al., asynchronous successive halving; Optuna's SuccessiveHalvingPruner): rungs
  at steps min_steps * reduction_factor**k. A trial reaching a rung goes on only if its value
  there ranks in the top 1/reduction_factor of all trials that reached the rung so far (with
  fewer than reduction_factor trials there, only the best goes on). Nobody waits for
  stragglers: the decision uses whatever has been reported.

Values are compared in the study's direction. A pruned trial ends PRUNED with its last
value and step; the optimizer sees it as an observation at that value (see gp_strategy).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from service.domain import Direction, TrialState
from service.specs import AshaRule, MedianRule

Rule = MedianRule | AshaRule


def median_decision(
    rule: MedianRule, direction: Direction, own: Sequence[float], peers_at_step: Sequence[float],
    step: int,
) -> bool:
    """True to prune. `own`: this trial's values up to `step`; `peers_at_step`: completed
    trials' values at `step`."""
    if step <= rule.warmup_steps or len(peers_at_step) < rule.min_trials or not own:
        return False
    best = direction.best(own)
    if best is None:
        return False
    return direction.better(statistics.median(peers_at_step), best)


def asha_rung(rule: AshaRule, step: int) -> int | None:
    """The rung index whose step is exactly `step`, or None between rungs."""
    k = 0
    rung_step = rule.min_steps
    while rung_step < step:
        k += 1
        rung_step = rule.min_steps * rule.reduction_factor**k
    return k if rung_step == step else None


def asha_decision(
    rule: AshaRule, direction: Direction, value: float, competitors: Sequence[float]
) -> bool:
    """True to prune. `competitors`: values at this rung of every trial that reached it,
    this one included."""
    ranked = sorted(competitors, key=direction.sort_key)
    keep = max(len(ranked) // rule.reduction_factor, 1)
    return direction.better(ranked[keep - 1], value)


def peer_states(rule: Rule, step: int) -> tuple[TrialState, ...] | None:
    """Whose values at `step` the rule compares against; None when it decides nothing at
    `step` (ASHA between rungs), so the caller reads nothing."""
    if isinstance(rule, MedianRule):
        return (TrialState.COMPLETE,)
    if asha_rung(rule, step) is None:
        return None
    return tuple(TrialState)


def should_prune(
    rule: Rule,
    direction: Direction,
    step: int,
    own: Sequence[tuple[int, float]],
    peers_at_step: Sequence[float],
) -> bool:
    """True when a trial that has just reported `step` should stop.

    `own`: the trial's (step, value) pairs up to `step`, in step order; `peers_at_step`: the
    finite values at `step` of the trials in `peer_states(rule, step)`.
    """
    if not own or own[-1][0] != step or not math.isfinite(own[-1][1]):
        return False
    if isinstance(rule, MedianRule):
        return median_decision(rule, direction, [v for _, v in own], peers_at_step, step)
    if asha_rung(rule, step) is None:
        return False
    return asha_decision(rule, direction, own[-1][1], peers_at_step)
