"""`TunesmithOracle`: a KerasTuner oracle whose trials come from a study on a tunesmith server.

    import keras_tuner
    from service.integrations.keras_tuner import TunesmithOracle

    oracle = TunesmithOracle(objective="val_loss", max_trials=20, server="http://host:8000")
    tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=build_model, directory="kt")
    tuner.search(x, y, validation_data=(xv, yv), callbacks=[oracle.pruning_callback()])

Rules:
- The study is an external (ask/tell) study named `study_name` (default: the tuner's
  `project_name`), got or created by name on the server (`RemoteStudy`), with the tuner's
  search space (`KerasSpace`), the objective's name as its metric and its direction, and
  `max_trials` as its budget. Several tuner processes that use one name share the study
  (each then needs its own `directory` or `project_name`, as KerasTuner keeps trials on
  disk by trial id); in KerasTuner's distributed mode the chief's oracle is this one and
  the workers reach it through KerasTuner.
- `populate_space` asks the server: queued trials first, then the study's strategy (the GP
  by default). No trial because the study is paused: IDLE, after `idle_seconds`, so tuners
  do not spin; no trial for good (budget used, study done or stopped): STOPPED.
- `end_trial` tells the server: COMPLETED with KerasTuner's score (the best value of the
  objective over the epochs) completes the trial, FAILED fails it with the error's last
  line; an INVALID trial that KerasTuner will retry keeps its lease (heartbeats go on), so
  the retry reports to the same server trial.
- Pruning: `pruning` (the study's rule, e.g. {"rule": "median"}) decides on each epoch's
  report, which `pruning_callback()` sends (step = epoch + 1); a pruned trial stops
  training, ends PRUNED on the server, and KerasTuner scores it as usual. The callback
  reports for the trial this oracle started in the callback's thread, so it works where the
  oracle runs in the tuner's process (one process, or plain processes sharing a study); in
  KerasTuner's distributed mode the workers' epochs are not reported.
- Single-objective only: a list of objectives raises ValueError. The space must be known
  when the first trial starts (a hypermodel declares it; a tuner without one passes
  `hyperparameters`), else ValueError.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import keras
import keras_tuner
from keras_tuner.engine.trial import Trial, TrialStatus

from service.client import Client
from service.integrations.keras_space import KerasSpace
from service.integrations.remote import MAX_TRIALS, RemoteStudy, study_spec

logger = logging.getLogger(__name__)


class TunesmithOracle(keras_tuner.Oracle):
    """A KerasTuner oracle backed by a tunesmith study (see the module's rules).

    `server` and `token` default to TUNESMITH_URL and TUNESMITH_TOKEN (then
    ~/.tunesmith/token). `acquisition`, `n_initial` and `seed` go to the study's `gp`
    strategy; `pruning` is the study's pruning rule. The other arguments are
    `keras_tuner.Oracle`'s.
    """

    def __init__(
        self,
        objective: Any = None,
        max_trials: int | None = 10,
        *,
        study_name: str | None = None,
        server: str | None = None,
        token: str | None = None,
        acquisition: str = "auto",
        n_initial: int | None = None,
        seed: int | None = None,
        pruning: dict[str, Any] | None = None,
        idle_seconds: float = 1.0,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
    ) -> None:
        if isinstance(objective, list | tuple):
            raise ValueError("TunesmithOracle optimizes one objective; got a list")
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        self.study_name = study_name
        self.client = Client(server, token)
        self.strategy = {
            "name": "gp",
            "acquisition": acquisition,
            **({"n_initial": n_initial} if n_initial is not None else {}),
            **({"seed": seed} if seed is not None else {}),
        }
        self.pruning = pruning
        self.idle_seconds = idle_seconds
        self._study: RemoteStudy | None = None
        self._space: KerasSpace | None = None
        self._server_ids: dict[str, int] = {}
        self._running: dict[int, str] = {}

    # ---- KerasTuner's seam -------------------------------------------------------------

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        study, space = self._open()
        trial = study.ask()
        if trial is None:
            if study.done:
                return {"status": TrialStatus.STOPPED, "values": None}
            time.sleep(self.idle_seconds)
            return {"status": TrialStatus.IDLE, "values": None}
        self._server_ids[trial_id] = trial.id
        values = space.host_values(trial.params, self.hyperparameters)
        logger.info("KerasTuner trial %s is tunesmith trial %s: %s", trial_id, trial.id, values)
        return {"status": TrialStatus.RUNNING, "values": values}

    @keras_tuner.synchronized
    def create_trial(self, tuner_id: str) -> Trial:
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.RUNNING:
            self._running[threading.get_ident()] = trial.trial_id
        return trial

    @keras_tuner.synchronized
    def end_trial(self, trial: Trial) -> None:
        try:
            super().end_trial(trial)
        finally:
            self._tell(self.trials[trial.trial_id])

    # ---- pruning -----------------------------------------------------------------------

    def pruning_callback(self) -> keras.callbacks.Callback:
        """A Keras callback for `tuner.search(..., callbacks=[...])`: reports the objective
        after each epoch and stops training when the server prunes the trial."""
        return _ReportEpochs(self)

    def report_epoch(self, step: int, logs: dict[str, Any]) -> bool:
        """Reports this thread's running trial's objective at `step`; True: pruned."""
        trial_id = self._running.get(threading.get_ident())
        server_id = self._server_ids.get(trial_id) if trial_id is not None else None
        if server_id is None or self._study is None or not self.objective.has_value(logs):
            return False
        value = float(self.objective.get_value(logs))
        if not math.isfinite(value):
            return False
        return self._study.report(server_id, step, value)

    # ---- the server --------------------------------------------------------------------

    def _open(self) -> tuple[RemoteStudy, KerasSpace]:
        if self._study is None or self._space is None:
            if not self.hyperparameters.space:
                raise ValueError(
                    "the search space is empty when the first trial starts: a tuner without "
                    "a hypermodel must declare its hyperparameters (the oracle's "
                    "`hyperparameters` argument)"
                )
            space = KerasSpace(self.hyperparameters)
            spec = study_spec(
                self.study_name or self._project_name,
                space.space.to_spec(),
                direction="maximize" if self.objective.direction == "max" else "minimize",
                metric=self.objective.name,
                strategy=self.strategy,
                max_trials=self.max_trials or MAX_TRIALS,
                pruning=self.pruning,
            )
            self._study, self._space = RemoteStudy.open(self.client, spec), space
        return self._study, self._space

    def _tell(self, trial: Trial) -> None:
        server_id = self._server_ids.get(trial.trial_id)
        if self._study is None or server_id is None or trial.status == TrialStatus.INVALID:
            return
        del self._server_ids[trial.trial_id]
        score = trial.score
        if trial.status == TrialStatus.COMPLETED and score is not None and math.isfinite(score):
            self._study.complete(server_id, float(score))
        else:
            lines = (trial.message or "").strip().splitlines()
            self._study.fail(server_id, lines[-1] if lines else f"KerasTuner: {trial.status}")


class _ReportEpochs(keras.callbacks.Callback):
    """Bound to one oracle; a deep copy (KerasTuner copies callbacks per trial) stays bound
    to the same oracle."""

    def __init__(self, oracle: TunesmithOracle) -> None:
        super().__init__()
        self.oracle = oracle

    def __deepcopy__(self, memo: dict[int, Any]) -> _ReportEpochs:
        return _ReportEpochs(self.oracle)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.oracle.report_epoch(epoch + 1, logs or {}):
            self.model.stop_training = True
