"""Mirrors finished Optuna trials into an external study on a tunesmith server.

A finished trial is written with the existing ask/tell API: enqueue its configuration
(`POST /studies/{id}/trials`), claim it (`POST /studies/{id}/suggestions`: queued trials come
first), report its intermediate values, then complete it, or fail it with the reason.

Rules:
- The tunesmith study is named after the Optuna study (characters a study name cannot hold
  become "-") unless a name is given, and is got or created by name, so several Optuna
  processes on one storage share it. Its space comes from the first complete or pruned
  trial (`optuna_space.mirror_param`: the values as Optuna has them); trials with other
  parameters, or values outside it, are not mirrored (one warning per study).
- Only the owner claims a queued trial: a process claims when its own trial is the first
  queued one, and waits otherwise. Whatever a claim returns that is not its own is handed
  back: another process's queued trial is released to the queue; one queued for longer than
  `orphan_seconds` (its process died between enqueue and claim) and a fresh suggestion the
  server made because the queue was empty are failed with a reason saying so. So a
  tunesmith trial's value always belongs to its own configuration.
- Pruned trials end FAILED with the reason "pruned by Optuna at step N" (the API has no way
  to end a trial PRUNED from outside a pruning rule); their curve is kept.
- Mirroring never breaks the Optuna study: every error is logged as a warning and the
  trial is skipped; when the server cannot be reached, mirroring pauses for
  `pause_seconds` rather than slowing every trial down.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from service.client import Client, ServerUnavailable
from service.errors import InvalidConfiguration
from service.integrations.optuna_space import mirror_param, mirror_params
from service.integrations.remote import MAX_TRIALS, RemoteStudy, study_spec
from service.schemas import TrialLeased, TrialPublic
from service.space import SearchSpace

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.05


class MirrorError(Exception):
    """A trial could not be mirrored (the study goes on)."""


@dataclass
class _Binding:
    study_id: int
    space: SearchSpace
    warned_misfit: bool = False


def mirror_name(study_name: str) -> str:
    """A tunesmith study name for an Optuna study name."""
    name = re.sub(r"[^A-Za-z0-9._ -]", "-", study_name)[:200]
    return name if re.match(r"[A-Za-z0-9]", name) else f"optuna-{name}"[:200]


class OptunaMirror:
    """Writes finished Optuna trials to a tunesmith server (see the module's rules)."""

    def __init__(
        self,
        client: Client,
        *,
        acquisition: str = "auto",
        name: str | None = None,
        orphan_seconds: float = 30.0,
        pause_seconds: float = 60.0,
    ) -> None:
        self.client = client
        self.acquisition = acquisition
        self.name = name
        self.orphan_seconds = orphan_seconds
        self.pause_seconds = pause_seconds
        self._bindings: dict[tuple[int, int], _Binding] = {}
        self._lock = threading.Lock()
        self._paused_until = 0.0

    def record(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Mirrors one finished trial; never raises."""
        if time.monotonic() < self._paused_until:
            return
        try:
            self._record(study, trial, state, values)
        except ServerUnavailable as exc:
            self._paused_until = time.monotonic() + self.pause_seconds
            logger.warning(
                "tunesmith mirror of study %r paused for %.0f s: %s",
                study.study_name,
                self.pause_seconds,
                exc,
            )
        except Exception as exc:
            logger.warning(
                "tunesmith mirror: trial %d of study %r not mirrored: %s: %s",
                trial.number,
                study.study_name,
                type(exc).__name__,
                exc,
            )

    def _record(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        binding = self._binding(study, trial, state)
        if binding is None:
            return
        try:
            params = binding.space.validate(mirror_params(trial.params))
        except InvalidConfiguration as exc:
            if not binding.warned_misfit:
                binding.warned_misfit = True
                logger.warning(
                    "tunesmith mirror of study %r: trial %d does not fit study %d's space "
                    "(%s); such trials are not mirrored",
                    study.study_name,
                    trial.number,
                    binding.study_id,
                    exc,
                )
            return
        queued = self.client.enqueue(binding.study_id, params)
        leased = self._claim(binding.study_id, queued)
        for step, value in sorted(trial.intermediate_values.items()):
            if math.isfinite(value) and self.client.report(leased, step, value):
                return  # the study has its own pruning rule, which ended the trial
        if state == TrialState.COMPLETE and values and math.isfinite(values[0]):
            self.client.complete(leased, float(values[0]))
        elif state == TrialState.PRUNED:
            last = max(trial.intermediate_values, default=None)
            self.client.fail(leased, f"pruned by Optuna at step {last}")
        else:
            self.client.fail(leased, f"failed in Optuna (trial {trial.number})")

    def _binding(self, study: Study, trial: FrozenTrial, state: TrialState) -> _Binding | None:
        key = (id(study._storage), study._study_id)
        with self._lock:
            binding = self._bindings.get(key)
            if binding is not None or state not in (TrialState.COMPLETE, TrialState.PRUNED):
                return binding
            space = SearchSpace({n: mirror_param(d) for n, d in trial.distributions.items()})
            maximize = study.direction == StudyDirection.MAXIMIZE
            spec = study_spec(
                self.name or mirror_name(study.study_name),
                space.to_spec(),
                direction="maximize" if maximize else "minimize",
                metric=(study.metric_names or ["value"])[0],
                strategy={"name": "gp", "acquisition": self.acquisition},
                max_trials=MAX_TRIALS,
            )
            remote = RemoteStudy.open(self.client, spec)
            binding = self._bindings[key] = _Binding(remote.id, space)
            logger.info(
                "mirroring Optuna study %r to tunesmith study %d at %s",
                study.study_name,
                remote.id,
                self.client.url,
            )
            return binding

    def _claim(self, study_id: int, mine: TrialPublic) -> TrialLeased:
        """Claims `mine` (queued); hands back anything else a claim returns."""
        deadline = time.monotonic() + self.orphan_seconds
        while time.monotonic() < deadline + self.orphan_seconds:
            queued = self.client.trials(study_id, state="queued")
            if not any(t.id == mine.id for t in queued):
                raise MirrorError(f"trial {mine.id} was claimed by someone else")
            overdue = time.monotonic() >= deadline
            if queued[0].id != mine.id and not overdue:
                time.sleep(_POLL_SECONDS)
                continue
            batch = self.client.suggest(study_id, 1)
            if not batch:
                raise MirrorError(f"study {study_id} gave no trial")
            if batch[0].id == mine.id:
                return batch[0]
            self._hand_back(batch[0], orphan=overdue)
        raise MirrorError(f"trial {mine.id} could not be claimed")

    def _hand_back(self, trial: TrialLeased, *, orphan: bool) -> None:
        if trial.source != "enqueued":
            self.client.fail(
                trial, "tunesmith mirror: a server suggestion, not an Optuna trial (unused)"
            )
        elif orphan:
            self.client.fail(trial, "tunesmith mirror: enqueued by a process that never claimed it")
        else:
            self.client.release(trial)
