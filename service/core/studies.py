"""Studies: a specification becomes a stored study (resolved against its objective); its
budget changes; the user's actions on it (pause, resume, stop); its deletion. Who may do
which is service.core.owners' rule, checked by the API before these run."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any

from pydantic import ValidationError

from objectives import registry
from objectives.base import ParameterMismatch
from objectives.registry import EXTERNAL
from service.core import machine
from service.core.artifacts import ArtifactFiles
from service.core.suggesting import enqueue
from service.domain import Direction
from service.errors import Conflict, InvalidRequest
from service.policies.warm_start import resolve_sources, seed_configs
from service.schemas import StudyCreate, StudyUpdate
from service.space import SearchSpace
from service.store import reader
from service.store import repository as repo
from service.store.db import Database
from service.store.models import Study, Trial


class StudyAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


_ACTIONS: dict[StudyAction, Callable[[Study], None]] = {
    StudyAction.PAUSE: machine.pause,
    StudyAction.RESUME: machine.resume,
    StudyAction.STOP: machine.stop,
}


@dataclass(frozen=True)
class ResolvedObjective:
    """A specification's objective with its defaults filled in."""

    metric: str
    direction: Direction
    space: dict[str, Any]
    args: dict[str, Any]


def resolve_objective(spec: StudyCreate) -> ResolvedObjective:
    """The metric, direction, space and arguments of `spec`, the objective's defaults filled
    in; raises InvalidRequest naming the field (an unknown objective, arguments its schema
    refuses, an external study without a space, a space that does not fit the trainer's
    declared parameters: `Objective.complete_space`, whose defaults fill in the parameters
    the space leaves out)."""
    space_spec = (
        {name: p.model_dump() for name, p in spec.space.items()} if spec.space is not None else None
    )
    if spec.objective == EXTERNAL:
        if space_spec is None:
            raise InvalidRequest("an external study needs a space", field="space")
        direction = spec.direction or Direction.MINIMIZE
        return ResolvedObjective(
            spec.metric or "value", direction, space_spec, spec.objective_args
        )
    try:
        objective = registry.get(spec.objective)
    except KeyError as exc:
        raise InvalidRequest(str(exc.args[0]), field="objective") from None
    try:
        args = objective.parse_args(spec.objective_args).model_dump(mode="json")
    except ValidationError as exc:
        raise InvalidRequest.from_validation(exc, prefix="objective_args") from None
    try:
        space_spec = objective.complete_space(space_spec, spec.objective_args)
    except ParameterMismatch as exc:
        field = "space" if exc.name is None else f"space.{exc.name}"
        raise InvalidRequest(str(exc), field=field) from None
    return ResolvedObjective(
        spec.metric or objective.metric,
        spec.direction or Direction(objective.direction),
        space_spec,
        args,
    )


def create_study(db: Database, spec: StudyCreate, *, owner_token_id: int | None) -> int:
    """Validates `spec` against its objective and stores it; returns the new study's id.

    The study belongs to `owner_token_id` and that token's name (None: to no one, only
    admins change it). Raises InvalidRequest naming the field, or Conflict when the name is
    taken.
    """
    resolved = resolve_objective(spec)
    metric, direction, args = resolved.metric, resolved.direction, resolved.args
    if spec.objectives:
        # The first objective is also the study's `metric`/`direction` (service.core.results).
        metric, direction = spec.objectives[0].metric, spec.objectives[0].direction
    space = SearchSpace.from_spec(resolved.space)
    if len(spec.enqueue) > spec.budget.max_trials:
        raise InvalidRequest(
            f"enqueue: {len(spec.enqueue)} configurations do not fit in budget.max_trials "
            f"({spec.budget.max_trials})",
            field="enqueue",
        )
    for i, config in enumerate(spec.enqueue):
        space.validate(config, field=f"enqueue.{i}")
    with db.write() as session:
        study = repo.add_study(
            session,
            Study(
                name=spec.name,
                objective=spec.objective,
                objective_args=args,
                metric=metric,
                direction=direction,
                space=space.to_spec(),
                strategy=spec.strategy.model_dump(mode="json"),
                budget=spec.budget.model_dump(mode="json"),
                pruning=spec.pruning.model_dump(mode="json") if spec.pruning else None,
                stopping=spec.stopping.model_dump(mode="json") if spec.stopping else None,
                warm_start=None,
                objectives=(
                    [o.model_dump(mode="json") for o in spec.objectives]
                    if spec.objectives
                    else None
                ),
                constraints=[c.model_dump(mode="json") for c in spec.constraints] or None,
                seed=spec.seed if spec.seed is not None else secrets.randbelow(2**31),
                owner_token_id=owner_token_id,
                owner_name=None if owner_token_id is None else repo.token_name(
                    session, owner_token_id
                ),
            ),
        )
        if spec.enqueue:
            enqueue(session, study, spec.enqueue)
        if spec.warm_start is not None:
            sources = resolve_sources(
                spec.warm_start,
                partial(reader.study_ref, session),
                objective=spec.objective,
                direction=direction,
            )
            study.warm_start = {"studies": sources, "n_seed": spec.warm_start.n_seed}
            earlier = reader.completed_trials(session, sources)
            seeds = seed_configs(earlier, space, direction, spec.warm_start.n_seed)
            enqueue(session, study, seeds, source="warm_start")
        return study.id


def update_study(db: Database, study_id: int, update: StudyUpdate) -> None:
    """Replaces the notes and applies a new budget, each when given; a study that was DONE
    because its budget ran out runs again when the new budget leaves room for a trial (a
    change of `max_parallel` alone leaves it done)."""
    with db.write() as session:
        study = repo.get_study(session, study_id, lock=True)
        if update.notes is not None:
            study.notes = update.notes
        if update.budget is None:
            return
        budget = dict(study.budget)
        n_trials = sum(repo.trial_counts(session, [study.id])[study.id].values())
        if update.budget.max_trials is not None:
            if update.budget.max_trials < n_trials:
                raise InvalidRequest(
                    f"budget.max_trials: the study already has {n_trials} trials",
                    field="budget.max_trials",
                )
            budget["max_trials"] = update.budget.max_trials
        if update.budget.max_parallel is not None:
            budget["max_parallel"] = update.budget.max_parallel
        study.budget = budget
        if n_trials < int(budget["max_trials"]):
            machine.reopen_after_budget(study)


def enqueue_configuration(db: Database, study_id: int, params: dict[str, Any]) -> Trial:
    """Queues a configuration of the user's choice, evaluated before any new suggestion.

    It counts in the budget: raises Conflict when the study already has `budget.max_trials`
    trials, InvalidRequest when `params` is not a configuration of the space.
    """
    with db.write() as session:
        study = repo.get_study(session, study_id, lock=True)
        n_trials = sum(repo.trial_counts(session, [study.id])[study.id].values())
        if n_trials >= int(study.budget["max_trials"]):
            raise Conflict(
                f"study {study_id} already has {n_trials} trials, its whole budget "
                "(budget.max_trials); raise the budget to enqueue more"
            )
        (trial,) = enqueue(session, study, [params])
        return trial


def act_on_study(db: Database, study_id: int, action: StudyAction) -> Study:
    """pause: no new trials, running ones go on; resume: back to running; stop: like pause,
    but final until resumed, with the reason recorded. Raises Conflict when the study's state
    does not allow it (a done study resumes only by raising its budget)."""
    with db.write() as session:
        study = repo.get_study(session, study_id, lock=True)
        _ACTIONS[action](study)
        return study


def delete_study(db: Database, study_id: int, files: ArtifactFiles) -> None:
    """Deletes the study, its trials (running ones too: their workers' next call is a 404),
    attempts, values, artifact rows and then artifact files. Raises NotFound."""
    with db.write() as session:
        study = repo.get_study(session, study_id, lock=True)
        trial_ids = repo.delete_study(session, study)
    files.remove_trials(trial_ids)
