"""`TunesmithSearch`: a Ray Tune searcher whose trials come from a study on a tunesmith server.

    from ray import tune
    from service.integrations.ray_tune import TunesmithSearch

    search = TunesmithSearch(study_name="mlp", server="http://host:8000")
    tuner = tune.Tuner(
        train_fn,
        param_space={"lr": tune.loguniform(1e-4, 1e-1), "units": tune.qrandint(32, 256, 32)},
        tune_config=tune.TuneConfig(metric="loss", mode="min", search_alg=search,
                                    num_samples=20),
        run_config=tune.RunConfig(stop=search.stopper()),
    )
    tuner.fit()

Rules:
- The study is an external (ask/tell) study named `study_name`, got or created by name
  (`RemoteStudy`) on the first suggestion, with the search space converted from the
  `param_space` (`RaySpace`) or given to the constructor, the Tune metric and mode, and
  `max_trials` as its budget (Ray's `num_samples` is what normally ends the run).
- `suggest` asks the server (queued trials first, then the study's strategy): Ray gets the
  configuration nested again; no trial because the study is paused: None (Tune asks again
  later; the server is asked at most every `idle_seconds`); no trial for good (budget used,
  study done or stopped): `Searcher.FINISHED`.
- Each result that has the metric is reported once, with step = `training_iteration`; the
  server's pruning rule (`pruning`) may prune the trial, and `stopper()` stops it in Tune at
  that result.
- `on_trial_complete` completes the trial with the metric's last reported value; an error,
  or a last result without a finite metric, fails it.
- A pickled or saved searcher (Tune keeps both with the experiment) holds no token and no
  connection: unpickled, it reads the token from TUNESMITH_TOKEN or ~/.tunesmith/token;
  `restore` keeps the token of the searcher it restores into. Trials that were running when
  the experiment stopped go back to the study's queue when their lease expires, and the
  server hands them out first.
"""

from __future__ import annotations

import logging
import math
import numbers
import pickle
import time
from collections.abc import Mapping
from typing import Any

from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from service.client import Client
from service.integrations.ray_space import RaySpace
from service.integrations.remote import MAX_TRIALS, RemoteStudy, study_spec

logger = logging.getLogger(__name__)


class TunesmithSearch(Searcher):
    """A Ray Tune searcher backed by a tunesmith study (see the module's rules).

    `server` and `token` default to TUNESMITH_URL and TUNESMITH_TOKEN (then
    ~/.tunesmith/token). `acquisition`, `n_initial` and `seed` go to the study's `gp`
    strategy; `pruning` is the study's pruning rule. Raises ValueError for a space tunesmith
    cannot search.
    """

    def __init__(
        self,
        space: Mapping[str, Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        *,
        study_name: str,
        server: str | None = None,
        token: str | None = None,
        acquisition: str = "auto",
        n_initial: int | None = None,
        seed: int | None = None,
        max_trials: int = MAX_TRIALS,
        pruning: dict[str, Any] | None = None,
        idle_seconds: float = 1.0,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.study_name = study_name
        self.server = server
        self.token = token
        self.strategy = {
            "name": "gp",
            "acquisition": acquisition,
            **({"n_initial": n_initial} if n_initial is not None else {}),
            **({"seed": seed} if seed is not None else {}),
        }
        self.max_trials = max_trials
        self.pruning = pruning
        self.idle_seconds = idle_seconds
        self._space = RaySpace(space) if space else None
        self._study: RemoteStudy | None = None
        self._server_ids: dict[str, int] = {}
        self._pruned: set[str] = set()
        self._reported: dict[str, int] = {}
        self._idle_until = 0.0

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        if self._space is not None:
            return False
        self._space = RaySpace(config)
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if time.monotonic() < self._idle_until:
            return None
        study, space = self._open()
        trial = study.ask()
        if trial is None:
            if study.done:
                return Searcher.FINISHED  # type: ignore[return-value]  # Ray's own sentinel
            self._idle_until = time.monotonic() + self.idle_seconds
            return None
        self._server_ids[trial_id] = trial.id
        return space.host_config(trial.params)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.observe(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        server_id = self._server_ids.pop(trial_id, None)
        self._pruned.discard(trial_id)
        self._reported.pop(trial_id, None)
        if self._study is None or server_id is None:
            return
        value = _finite((result or {}).get(self.metric))
        if error:
            self._study.fail(server_id, "the Ray Tune trial raised an error")
        elif value is None:
            self._study.fail(server_id, f"no finite {self.metric!r} in the last result")
        else:
            self._study.complete(server_id, value)

    def stopper(self) -> Stopper:
        """A Tune stopper (`RunConfig(stop=...)`) that stops the trials the server pruned."""
        return _PrunedStopper(self)

    def observe(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Reports `result` (once per training iteration, whether the searcher or the stopper
        sees it first); True when the server has pruned the trial."""
        server_id = self._server_ids.get(trial_id)
        value = _finite(result.get(self.metric))
        step = int(result.get("training_iteration", 0))
        if self._study is None or server_id is None or value is None:
            return False
        if step > self._reported.get(trial_id, -1):
            self._reported[trial_id] = step
            if self._study.report(server_id, step, value):
                self._pruned.add(trial_id)
        return trial_id in self._pruned

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(
            token=None, _study=None, _server_ids={}, _pruned=set(), _reported={}, _idle_until=0.0
        )
        return state

    def save(self, checkpoint_path: str) -> None:
        """Tune's experiment checkpoint: the settings and space (the trials live on the
        server; the token is not written)."""
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__getstate__(), fh)

    def restore(self, checkpoint_path: str) -> None:
        """Takes the saved settings and space, keeping this searcher's token."""
        with open(checkpoint_path, "rb") as fh:
            state = pickle.load(fh)
        self.__dict__.update({**state, "token": self.token})

    def _open(self) -> tuple[RemoteStudy, RaySpace]:
        if self._space is None or self.metric is None or self.mode is None:
            raise ValueError(
                "TunesmithSearch needs a search space, a metric and a mode: pass them to "
                "the constructor or through tune.TuneConfig and the Tuner's param_space"
            )
        if self._study is None:
            spec = study_spec(
                self.study_name,
                self._space.space.to_spec(),
                direction="maximize" if self.mode == "max" else "minimize",
                metric=self.metric,
                strategy=self.strategy,
                max_trials=self.max_trials,
                pruning=self.pruning,
            )
            self._study = RemoteStudy.open(Client(self.server, self.token), spec)
        return self._study, self._space


class _PrunedStopper(Stopper):
    def __init__(self, search: TunesmithSearch) -> None:
        self.search = search

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return self.search.observe(trial_id, result)

    def stop_all(self) -> bool:
        return False


def _finite(value: Any) -> float | None:
    """`value` as a float when it is a finite real number (numpy scalars included)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None
