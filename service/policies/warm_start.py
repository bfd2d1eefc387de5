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
Expanded spaces: the new space may add parameters, fixed or searched, and conditions. An
earlier trial keeps the values it had; a parameter the earlier study held fixed is known (its
trials carry the value); one it never had is missing from the earlier configuration. For the
prior such a trial is used with its known part (the transfer model marginalizes what it
lacks: transfer.py); as a seed it gets the middle of each missing parameter's range (or its
first choice), so the best earlier configurations still run first. Configurations whose known
part is outside the new space (a value out of range, off the grid or no longer a choice, a
parameter the new space dropped) are left out. Failed, pruned and non-finite earlier trials
are left out (the store's reader never returns them): their values say nothing reliable about
the function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from service.domain import Direction, TrialState
from service.errors import InvalidConfiguration, InvalidRequest
from service.optimizer.base import Observation
from service.records import CompletedTrial, StudyRef
from service.space import SearchSpace
from service.specs import WarmStartSpec


def resolve_sources(
    spec: WarmStartSpec,
    lookup: Callable[[int | str], StudyRef | None],
    *,
    objective: str,
    direction: Direction,
) -> list[int]:
    """Ids of the named earlier studies (`lookup` finds one by id or name); raises
    InvalidRequest naming the bad entry."""
    ids: list[int] = []
    for i, ref in enumerate(spec.studies):
        where = f"warm_start.studies.{i}"
        source = lookup(ref)
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


def source_ids(warm_start: Mapping[str, Any] | None) -> list[int]:
    """The earlier studies a stored `warm_start` names, oldest (lowest id) first."""
    if not warm_start:
        return []
    return sorted({int(i) for i in warm_start.get("studies", [])})


def _fitting(space: SearchSpace, params: dict[str, Any]) -> dict[str, Any] | None:
    """The earlier configuration's part that fits `space` (parameters the new space dropped
    are ignored, those it added are missing), or None when a known value does not fit."""
    try:
        config, _ = space.validate_partial(
            {k: v for k, v in params.items() if k in space.params}
        )
    except InvalidConfiguration:
        return None
    return config


def _complete(space: SearchSpace, config: dict[str, Any]) -> dict[str, Any]:
    """A partial configuration made whole: missing parameters at the middle of their range."""
    return space.validate(space.filled(config))


def seed_configs(
    earlier: Mapping[int, Sequence[CompletedTrial]],
    space: SearchSpace,
    direction: Direction,
    n: int,
) -> list[dict[str, Any]]:
    """The best `n` distinct earlier configurations that fit `space`, best first."""
    if n <= 0:
        return []
    trials = sorted(
        (t for ts in earlier.values() for t in ts), key=lambda t: direction.sort_key(t.value)
    )
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for t in trials:
        known = _fitting(space, t.params)
        if known is None:
            continue
        config = _complete(space, known)
        if space.key(config) in seen:
            continue
        seen.add(space.key(config))
        out.append(config)
        if len(out) == n:
            break
    return out


def prior_studies(
    earlier: Mapping[int, Sequence[CompletedTrial]], space: SearchSpace
) -> list[list[Observation]]:
    """The earlier studies' completed trials that fit `space`, one list per study, in the
    order of `earlier` (oldest study first: the transfer model stacks later studies over
    earlier ones, closest to the new one on top), values raw: each study is on its own
    scale, the model maps them. A configuration lacks the parameters its study did not
    have (see the module docstring)."""
    out: list[list[Observation]] = []
    for trials in earlier.values():
        observations = []
        for t in trials:
            config = _fitting(space, t.params)
            if config is not None:
                observations.append(
                    Observation(
                        params=config, value=t.value, state=TrialState.COMPLETE, values=t.values
                    )
                )
        out.append(observations)
    return out
