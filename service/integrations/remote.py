"""One external (ask/tell) study on a tunesmith server, as the integrations ask and tell it.

Rules:
- `RemoteStudy.open` gets the study by name or creates it (`Client.get_or_create_study`), so
  several processes that open the same name share one study. An existing study must have the
  same space and direction, else ValueError: two programs that disagree about a study would
  mix their trials.
- `ask` hands out one RUNNING trial (queued ones first, as the server does) and heartbeats
  its lease in a background thread until `complete` or `fail`. It returns None when
  the server has no trial to give now; `done` then says whether it never will (budget used,
  study done or stopped) or the study is only paused.
- `report` returns True when the server pruned the trial: the trial is then finished there,
  and `complete` or `fail` for it do nothing.
- A tell whose lease the server no longer honours (HTTP 409: the lease expired and the trial
  went back to the queue) is logged and dropped; anything else the server answers is raised.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from service.client import ApiError, Client
from service.schemas import StudyPublic, TrialLeased
from service.space import SearchSpace

logger = logging.getLogger(__name__)

DEFAULT_BEAT_SECONDS = 15.0
MAX_TRIALS = 100_000  # the largest budget a study accepts (`schemas.Budget`)


def study_spec(
    name: str,
    space: Mapping[str, Any],
    *,
    direction: str,
    metric: str,
    strategy: Mapping[str, Any],
    max_trials: int,
    pruning: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The specification of an external study (`StudyCreate`'s JSON form)."""
    spec: dict[str, Any] = {
        "name": name,
        "objective": "external",
        "metric": metric,
        "direction": direction,
        "space": dict(space),
        "strategy": dict(strategy),
        "budget": {"max_trials": max_trials},
    }
    if pruning is not None:
        spec["pruning"] = dict(pruning)
    return spec


def _beat_seconds(trial: TrialLeased) -> float:
    """A quarter of the trial's lease, as the worker heartbeats."""
    if trial.started_at is None or trial.lease_expires_at is None:
        return DEFAULT_BEAT_SECONDS
    lease = (trial.lease_expires_at - trial.started_at).total_seconds()
    return max(lease / 4, 0.05)


@dataclass
class _Open:
    trial: TrialLeased
    keep_alive: ExitStack = field(default_factory=ExitStack)


class RemoteStudy:
    """Ask/tell on one study; thread-safe."""

    def __init__(self, client: Client, study: StudyPublic) -> None:
        self.client = client
        self.study = study
        self.done = False
        self._open: dict[int, _Open] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, client: Client, spec: Mapping[str, Any]) -> RemoteStudy:
        study = client.get_or_create_study(spec)
        wanted = SearchSpace.from_spec(spec["space"])
        if SearchSpace.from_spec(study.space) != wanted or study.direction != spec["direction"]:
            raise ValueError(
                f"study {study.name!r} (id {study.id}) on {client.url} already exists with "
                f"space {study.space} and direction {study.direction!r}; this search wants "
                f"space {wanted.to_spec()} and direction {spec['direction']!r}: use another "
                "study name"
            )
        logger.info("tunesmith study %s (%r) on %s", study.id, study.name, client.url)
        return cls(client, study)

    @property
    def id(self) -> int:
        return self.study.id

    def ask(self) -> TrialLeased | None:
        try:
            batch = self.client.suggest(self.id, 1)
        except ApiError as exc:
            if exc.status != 409:
                raise
            state = self.client.get_study(self.id).state
            self.done = state != "paused"
            logger.info("study %s gives no trial: %s", self.id, exc.detail)
            return None
        if not batch:
            self.done = True
            return None
        trial = batch[0]
        entry = _Open(trial)
        entry.keep_alive.enter_context(self.client.keep_alive(trial, _beat_seconds(trial)))
        with self._lock:
            self._open[trial.id] = entry
        return trial

    def report(self, trial_id: int, step: int, value: float) -> bool:
        with self._lock:
            entry = self._open.get(trial_id)
        if entry is None:
            return False
        try:
            pruned = self.client.report(entry.trial, step, value)
        except ApiError as exc:
            self._forget(trial_id)
            self._refused(exc, trial_id, "report")
            return False
        if pruned:
            logger.info("study %s trial %s pruned at step %s", self.id, trial_id, step)
            self._forget(trial_id)
        return pruned

    def complete(self, trial_id: int, value: float) -> None:
        entry = self._forget(trial_id)
        if entry is None:
            return
        try:
            self.client.complete(entry.trial, value)
        except ApiError as exc:
            self._refused(exc, trial_id, "complete")

    def fail(self, trial_id: int, reason: str) -> None:
        entry = self._forget(trial_id)
        if entry is None:
            return
        try:
            self.client.fail(entry.trial, reason or "failed")
        except ApiError as exc:
            self._refused(exc, trial_id, "fail")

    def _forget(self, trial_id: int) -> _Open | None:
        """Stops the trial's heartbeats; None when it was not open (told, or pruned)."""
        with self._lock:
            entry = self._open.pop(trial_id, None)
        if entry is not None:
            entry.keep_alive.close()
        return entry

    def _refused(self, exc: ApiError, trial_id: int, what: str) -> None:
        """A 409 (the lease went back to the queue) is logged; any other answer raised."""
        if exc.status != 409:
            raise exc
        logger.warning("study %s trial %s: %s refused (%s)", self.id, trial_id, what, exc.detail)
