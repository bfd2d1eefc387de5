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
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.models import Study, Trial, TrialState, TrialValue


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


def _better(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "minimize" else a > b


def _values_at_step(session: Session, study_id: int, step: int, states: list[str]) -> list[float]:
    rows = session.scalars(
        select(TrialValue.value)
        .join(Trial, Trial.id == TrialValue.trial_id)
        .where(Trial.study_id == study_id, Trial.state.in_(states), TrialValue.step == step)
    ).all()
    return [v for v in rows if math.isfinite(v)]


def _own_values(session: Session, trial_id: int, up_to: int) -> list[tuple[int, float]]:
    rows = session.execute(
        select(TrialValue.step, TrialValue.value)
        .where(TrialValue.trial_id == trial_id, TrialValue.step <= up_to)
        .order_by(TrialValue.step)
    ).all()
    return [(int(s), float(v)) for s, v in rows]


def median_decision(
    rule: MedianRule, direction: str, own: list[float], peers_at_step: list[float], step: int
) -> bool:
    """True to prune. `own`: this trial's values up to `step`; `peers_at_step`: completed
    trials' values at `step`."""
    if step <= rule.warmup_steps or len(peers_at_step) < rule.min_trials or not own:
        return False
    best = min(own) if direction == "minimize" else max(own)
    return _better(statistics.median(peers_at_step), best, direction)


def asha_rung(rule: AshaRule, step: int) -> int | None:
    """The rung index whose step is exactly `step`, or None between rungs."""
    k = 0
    rung_step = rule.min_steps
    while rung_step < step:
        k += 1
        rung_step = rule.min_steps * rule.reduction_factor**k
    return k if rung_step == step else None


def asha_decision(rule: AshaRule, direction: str, value: float, competitors: list[float]) -> bool:
    """True to prune. `competitors`: values at this rung of every trial that reached it,
    this one included."""
    ranked = sorted(competitors, reverse=direction == "maximize")
    keep = max(len(ranked) // rule.reduction_factor, 1)
    threshold = ranked[keep - 1]
    return _better(threshold, value, direction)


def should_prune(session: Session, study: Study, trial: Trial, step: int) -> bool:
    """True when `trial`, having just reported `step`, should stop. No rule: never."""
    if not study.pruning:
        return False
    rule = _parse(study.pruning)
    own = _own_values(session, trial.id, step)
    if not own or own[-1][0] != step or not math.isfinite(own[-1][1]):
        return False
    if isinstance(rule, MedianRule):
        peers = _values_at_step(session, study.id, step, [TrialState.COMPLETE.value])
        return median_decision(rule, study.direction, [v for _, v in own], peers, step)
    if asha_rung(rule, step) is None:
        return False
    states = [s.value for s in TrialState]
    competitors = _values_at_step(session, study.id, step, states)
    return asha_decision(rule, study.direction, own[-1][1], competitors)


def _parse(raw: dict[str, object]) -> MedianRule | AshaRule:
    if raw.get("rule") == "asha":
        return AshaRule.model_validate(raw)
    return MedianRule.model_validate(raw)
