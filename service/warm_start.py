"""Warm start: a new study learns from earlier studies of the same objective.

Two mechanisms, both measured in bench/warm_start.py:
1. Seeding: the best `n_seed` distinct configurations of the earlier studies that fit the
   new space are queued first (as Vizier and Optuna users do by hand with enqueue).
2. Prior observations: while the new study is in its initial design (fewer than `n_initial`
   trials), every completed trial of the earlier studies whose configuration fits the new
   space is given to the optimizer as an observation, so the first model-based suggestions
   already aim at the region that was good before. Values are standardized
   per earlier study and mapped onto the new study's scale once it has two finite values of
   its own, so a shifted or rescaled objective (another dataset, another epoch count) still
   transfers its shape. Configurations outside the new space (a parameter missing, a value out
   of range or no longer a choice) are left out; parameters the new space adds are fixed-only.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
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


def _source_trials(session: Session, source_ids: Sequence[int]) -> dict[int, list[Trial]]:
    rows = session.scalars(
        select(Trial).where(
            Trial.study_id.in_(list(source_ids)),
            Trial.state == TrialState.COMPLETE.value,
            Trial.value.is_not(None),
        )
    ).all()
    out: dict[int, list[Trial]] = {i: [] for i in source_ids}
    for t in rows:
        if t.value is not None and math.isfinite(t.value):
            out[t.study_id].append(t)
    return out


def seed_configs(
    session: Session, source_ids: Sequence[int], space: SearchSpace, direction: str, n: int
) -> list[dict[str, Any]]:
    """The best `n` distinct earlier configurations that fit `space`, best first."""
    if n <= 0:
        return []
    trials = [t for ts in _source_trials(session, source_ids).values() for t in ts]
    sign = 1.0 if direction == "minimize" else -1.0
    trials.sort(key=lambda t: sign * float(t.value or 0.0))
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


def prior_observations(
    session: Session, study: Study, space: SearchSpace, own_values: Sequence[float]
) -> list[Observation]:
    """Earlier studies' completed trials as observations on this study's scale."""
    if not study.warm_start:
        return []
    source_ids = [int(i) for i in study.warm_start.get("studies", [])]
    own = [v for v in own_values if math.isfinite(v)]
    target = (statistics.fmean(own), statistics.pstdev(own) or 1.0) if len(own) >= 2 else None
    out: list[Observation] = []
    for trials in _source_trials(session, source_ids).values():
        values = [float(t.value) for t in trials if t.value is not None]
        if not values:
            continue
        mean, std = statistics.fmean(values), statistics.pstdev(values) or 1.0
        for t in trials:
            config = _fitting(space, t.params)
            if config is None or t.value is None:
                continue
            value = float(t.value)
            if target is not None:
                value = target[0] + (value - mean) / std * target[1]
            out.append(Observation(params=config, value=value, state="complete"))
    return out
