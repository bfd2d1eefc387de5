"""Warm start: a new study learns from earlier studies of the same objective.

Two mechanisms, measured by `python bench/study_policies.py warm` (the earlier study ran on a
shifted and rescaled version of the function):
1. Seeding: the best `n_seed` distinct configurations of the earlier studies that fit the
   new space are queued first (as Vizier and Optuna users do by hand with enqueue), so the
   first trial already lands where the earlier study ended.
2. A prior for the model, for the whole study: `prior_studies` hands every completed,
   finite trial of the earlier studies whose configuration fits the new space to the strategy
   as `SuggestRequest.prior`, one list per study, values raw. They are never mixed into the
   study's observations: an earlier study measured a related but different function (another
   dataset, another epoch count), so its values sit on another scale and its optimum may have
   moved. The gp strategy fits them as a stack of GPs and models the new study's values as a
   residual over that prior mean, with the prior scaled and offset onto the new values by
   least squares and the model's uncertainty moving from the prior's to the study's own as
   its trials accumulate (service/optimizer/transfer.py, after Google Vizier's transfer
   learning).
   It skips the space-filling design: after the seeds it is model-based at once. tpe and
   skopt see the earlier trials as extra observations during their initial design only.
Configurations outside the new space (a parameter missing, a value out of range or no longer
a choice) are left out; parameters the new space adds are fixed-only. Failed, pruned and
non-finite earlier trials are left out: their values say nothing reliable about the function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import InvalidConfiguration, InvalidRequest
from service.optimizer import Observation
from service.space import SearchSpace
from service.store.models import Study, Trial, TrialState

MAX_SOURCES = 10


class WarmStartSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    studies: list[int | str] = Field(min_length=1, max_length=MAX_SOURCES)
    n_seed: int = Field(default=1, ge=0, le=100)


def resolve_sources(
    session: Session, spec: WarmStartSpec, *, objective: str, direction: str
) -> list[int]:
    """Ids of the named earlier studies; raises InvalidRequest naming the bad entry."""
    ids: list[int] = []
    for i, ref in enumerate(spec.studies):
        where = f"warm_start.studies.{i}"
        column = Study.id if isinstance(ref, int) else Study.name
        source = session.scalar(select(Study).where(column == ref))
        if source is None:
            raise InvalidRequest(f"{where}: no study {ref!r}", field=where)
        if source.objective != objective or source.direction != direction:
            raise InvalidRequest(
                f"{where}: study {ref!r} optimizes {source.objective} ({source.direction}), "
                f"not {objective} ({direction})",
                field=where,
            )
        ids.append(source.id)
    return ids


def _fitting(space: SearchSpace, params: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return space.validate({k: v for k, v in params.items() if k in space.params})
    except InvalidConfiguration:
        return None


@dataclass(frozen=True)
class _EarlierTrial:
    params: dict[str, Any]
    value: float


def _source_trials(session: Session, source_ids: Sequence[int]) -> dict[int, list[_EarlierTrial]]:
    """Completed trials with finite values per study, in trial order (the model subsamples
    large studies with a seeded generator, so the order must not vary between calls). Only
    the columns needed are read: this runs on every suggestion of a warm study."""
    rows = session.execute(
        select(Trial.study_id, Trial.params, Trial.value)
        .where(
            Trial.study_id.in_(list(source_ids)),
            Trial.state == TrialState.COMPLETE.value,
            Trial.value.is_not(None),
        )
        .order_by(Trial.study_id, Trial.number)
    ).all()
    out: dict[int, list[_EarlierTrial]] = {i: [] for i in source_ids}
    for study_id, params, value in rows:
        if value is not None and math.isfinite(value):
            out[study_id].append(_EarlierTrial(params, float(value)))
    return out


def seed_configs(
    session: Session, source_ids: Sequence[int], space: SearchSpace, direction: str, n: int
) -> list[dict[str, Any]]:
    """The best `n` distinct earlier configurations that fit `space`, best first."""
    if n <= 0:
        return []
    trials = [t for ts in _source_trials(session, source_ids).values() for t in ts]
    sign = 1.0 if direction == "minimize" else -1.0
    trials.sort(key=lambda t: sign * t.value)
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for t in trials:
        config = _fitting(space, t.params)
        if config is None or space.key(config) in seen:
            continue
        seen.add(space.key(config))
        out.append(config)
        if len(out) == n:
            break
    return out


def prior_studies(session: Session, study: Study, space: SearchSpace) -> list[list[Observation]]:
    """The earlier studies' completed trials that fit `space`, one list per study, oldest
    study first (the transfer model stacks later studies over earlier ones, closest to the
    new one on top), values raw: each study is on its own scale, the model maps them."""
    if not study.warm_start:
        return []
    source_ids = sorted({int(i) for i in study.warm_start.get("studies", [])})
    out: list[list[Observation]] = []
    for trials in _source_trials(session, source_ids).values():
        observations = []
        for t in trials:
            config = _fitting(space, t.params)
            if config is not None:
                observations.append(Observation(params=config, value=t.value, state="complete"))
        out.append(observations)
    return out
