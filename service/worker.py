"""The worker loop: lease -> train -> stream each step's value -> complete or fail -> repeat.

A final value rides on the next lease request (`Client.lease(complete=...)`): one round
trip between two trials instead of two. It is sent on its own when no lease follows (the
last trial, shutdown) or when that request fails.

One loop runs per GPU (or CPU slot), in its own process with CUDA_VISIBLE_DEVICES set
before any framework is imported. Every executor runs this same loop: local worker
processes, `tunesmith worker` on a remote machine, Ray actors.

Rules:
- A trainer that raises, returns NaN/inf or runs out of memory fails its trial with the
  reason; the worker goes on with the next trial. Out of memory is sent as infeasible (the
  optimizer learns to avoid the region instead of counting a bad value); a trainer may
  return named metrics instead of one value (service/trial_result.py).
- When the server answers a report with "prune", the trial is already PRUNED on the server;
  the trainer is told to stop and nothing more is sent for it.
- If the lease is lost (a heartbeat or report gets 409, or 404 when the study was deleted),
  the trainer is told to stop and its result is dropped: the trial belongs to someone else
  now, or to no one.
- SIGTERM: the running trial is released back to the queue and the loop ends; repeating it
  changes nothing (a supervisor and a process group may both send one). A second SIGINT
  (Ctrl-C twice) exits at once.
- Server away: requests are retried with backoff (`retry_seconds`); leasing keeps trying
  until the server returns.
- Each trial's objective is looked up when it is leased (`objectives.registry.get`), so a
  plugin installed or upgraded while the worker runs is used from its next trial on.
- Every lease request carries the worker's backend and device (`WorkerOptions.device`). A
  worker whose device says `unavailable` (a GPU slot without a usable GPU) keeps asking, so
  the server lists it with the reason, and the server never gives it a trial.
"""

from __future__ import annotations

import logging
import math
import mimetypes
import os
import random
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from objectives import registry
from objectives.base import TrialContext, TrialDiverged, TrialPruned
from service.client import LEASE_LOST, ApiError, Client, ServerUnavailable
from service.device import WorkerDevice
from service.domain import trial_label
from service.schemas import LeasePublic, TrialLeased
from service.trial_result import complete_fields, is_out_of_memory

log = logging.getLogger(__name__)

MAX_REASON = 4000
EXIT_REFUSED = 78  # EX_CONFIG: the supervisor does not restart a worker that exits with it


@dataclass
class WorkerOptions:
    server: str
    token: str | None
    worker_id: str
    gpu: str | None = None
    threads: int | None = None
    artifact_root: Path = field(default_factory=lambda: Path("tunesmith-worker-artifacts"))
    max_trials: int | None = None
    idle_timeout: float | None = None
    retry_seconds: float = 300.0
    objectives: list[str] | None = None
    max_idle_backoff: float = 2.0
    device: WorkerDevice | None = None


FRAMEWORK_LOG_DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "3"}
"""Set in every worker process unless the user set them. TensorFlow's C++ logging otherwise
prints lines of up to ~1,000 characters at each start and trial, its ERROR level included
(cuInit without a GPU, a tf.data attribute mismatch); a trainer's real errors reach the
worker as Python exceptions and fail the trial with their message. Set TF_CPP_MIN_LOG_LEVEL=0
to see everything. Lines TensorFlow writes before its logging starts (oneDNN, "Could not
find cuda drivers") ignore the variable."""


def quiet_framework_logs(environ: MutableMapping[str, str]) -> None:
    for name, value in FRAMEWORK_LOG_DEFAULTS.items():
        environ.setdefault(name, value)


def _label(trial: TrialLeased) -> str:
    return trial_label(trial.number, trial.id, trial.study_id)


def default_worker_id(slot: str) -> str:
    host = socket.gethostname().replace(" ", "-")
    return f"{host}-{slot}-{os.getpid()}"


class WorkerRefused(Exception):
    """The server rejects this worker's token (401/403): retrying cannot help."""


class _Stop(Exception):
    """Raised inside a trainer's report when the trial must stop (lease lost or shutdown)."""


class Worker:
    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self.client = Client(options.server, options.token, retry_seconds=options.retry_seconds)
        self.trials_done = 0
        self._stopping = False

    # ---- signals ------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stopping and signum == signal.SIGINT:
            log.warning("worker %s: second interrupt; exiting now", self.options.worker_id)
            os._exit(128 + signum)
        log.info(
            "worker %s: signal %s; releasing the current trial", self.options.worker_id, signum
        )
        self._stopping = True

    def request_stop(self) -> None:
        """Ends the loop as SIGTERM does, from any thread: the running trial is released at
        its next report and no new trial is leased."""
        self._stopping = True

    # ---- loop ---------------------------------------------------------------------------

    def run(self) -> int:
        """Runs until stopped, `max_trials` done or idle for `idle_timeout`; returns trials done."""
        opts = self.options
        idle_since = time.monotonic()
        backoff = 0.1
        done: tuple[TrialLeased, dict[str, Any]] | None = None
        while not self._stopping:
            if opts.max_trials is not None and self.trials_done >= opts.max_trials:
                break
            lease, done = self._lease(done)
            if lease is None:
                if (
                    opts.idle_timeout is not None
                    and time.monotonic() - idle_since > opts.idle_timeout
                ):
                    log.info(
                        "worker %s: idle for %.0f s; exiting", opts.worker_id, opts.idle_timeout
                    )
                    break
                time.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, opts.max_idle_backoff)
                continue
            backoff = 0.1
            more = opts.max_trials is None or self.trials_done + 1 < opts.max_trials
            fields = self.run_trial(lease, defer_complete=more)
            if fields is not None:
                done = (lease.trial, fields)
            self.trials_done += 1
            idle_since = time.monotonic()
        if done is not None:
            self._complete(*done)
        self.client.close()
        return self.trials_done

    def _lease(
        self, done: tuple[TrialLeased, dict[str, Any]] | None
    ) -> tuple[LeasePublic | None, tuple[TrialLeased, dict[str, Any]] | None]:
        """(the next trial or None, a finished trial whose value is still to be sent)."""
        info: dict[str, Any] = {
            "host": socket.gethostname(),
            "gpu": self.options.gpu,
            "pid": os.getpid(),
        }
        if self.options.objectives is not None:
            info["objectives"] = self.options.objectives
        if self.options.device is not None:
            info.update(self.options.device.lease_fields())
        try:
            return self.client.lease(self.options.worker_id, info, complete=done), None
        except ServerUnavailable as exc:
            log.warning("worker %s: server unavailable (%s); retrying", self.options.worker_id, exc)
            return None, done
        except ApiError as exc:
            if exc.status in (401, 403):
                raise WorkerRefused(f"the server refuses this worker's token: {exc}") from None
            if done is not None:
                # On its own, the result gets its own answer (e.g. 409: the lease was lost).
                self._complete(*done)
                return None, None
            log.warning("worker %s: lease failed (%s); retrying", self.options.worker_id, exc)
            return None, None

    def _complete(self, trial: TrialLeased, fields: dict[str, Any]) -> None:
        self._send(_label(trial), lambda: self.client.complete(trial, **fields))

    def _send(self, tag: str, call: Callable[[], object]) -> bool:
        """Sends a trial's end (or its dataset record); a failure is logged, not raised:
        without a result the lease expires and the trial runs again, so nothing is lost. True
        when it arrived."""
        try:
            call()
            return True
        except (ApiError, ServerUnavailable) as exc:
            log.warning(
                "worker %s: %s: the result did not reach the server: %s",
                self.options.worker_id,
                tag,
                exc,
            )
            return False

    def run_trial(
        self, lease: LeasePublic, *, defer_complete: bool = False
    ) -> dict[str, Any] | None:
        """Runs one trial and sends how it ended. With `defer_complete`, the fields of its
        complete (`value` or `values`, `metrics`) are returned instead of sent, for the next
        lease request to carry."""
        trial = lease.trial
        tag = _label(trial)
        log.info("worker %s: starting %s with %s", self.options.worker_id, tag, trial.params)
        artifact_dir = self._fresh_artifact_dir(trial)
        lost = False
        pruned = False
        last: list[float] = []

        def report(step: int, value: float) -> bool:
            nonlocal lost, pruned
            if self._stopping or lost:
                raise _Stop()
            if not math.isfinite(value):
                raise TrialDiverged(f"reported value is {value} at step {step}")
            try:
                pruned = self.client.report(trial, step, value)
            except ApiError as exc:
                if exc.status in LEASE_LOST:
                    lost = True
                    raise _Stop() from None
                raise
            last.append(value)
            return pruned

        def note_dataset(record: dict[str, Any]) -> None:
            self._send(f"{tag} dataset", lambda: self.client.record_dataset(trial, record))

        ctx = TrialContext(
            trial_id=trial.id,
            study_id=trial.study_id,
            trial_number=trial.number,
            seed=trial.seed,
            artifact_dir=artifact_dir,
            report_fn=report,
            dataset_fn=note_dataset,
            device=self.options.gpu,
            threads=self.options.threads,
        )
        beat_every = max(lease.lease_seconds / 4, 0.05)
        try:
            with self.client.keep_alive(trial, beat_every) as lease_lost:
                kind, payload = self._train(lease, ctx)
                lost = lost or lease_lost.is_set()
            if lost:
                log.warning(
                    "worker %s: lost the lease on %s; dropping its result",
                    self.options.worker_id,
                    tag,
                )
                return None
            self._upload_artifacts(trial, artifact_dir)
        finally:
            shutil.rmtree(artifact_dir, ignore_errors=True)
        if pruned:
            log.info("worker %s: %s pruned", self.options.worker_id, tag)
            return None
        if kind == "stopped" and not self._stopping:
            # The trainer stopped on its own time limit: its last reported value stands.
            kind, payload = (
                ("value", last[-1]) if last else ("fail", "time limit reached before any report")
            )
        if kind == "value":
            fields = complete_fields(payload, lease)  # type: ignore[arg-type]
            if isinstance(fields, str):
                kind, payload = "fail", fields
        if kind == "stopped":
            if self._send(tag, lambda: self.client.release(trial)):
                log.info("worker %s: released %s", self.options.worker_id, tag)
        elif kind == "value":
            assert isinstance(fields, dict)
            if defer_complete:
                log.info("worker %s: %s complete: %s", self.options.worker_id, tag, fields)
                return fields
            if self._send(tag, lambda: self.client.complete(trial, **fields)):
                log.info("worker %s: %s complete: %s", self.options.worker_id, tag, fields)
        else:
            reason = str(payload)[:MAX_REASON]
            infeasible = kind == "infeasible"
            if self._send(tag, lambda: self.client.fail(trial, reason, infeasible=infeasible)):
                log.info("worker %s: %s failed: %s", self.options.worker_id, tag, payload)
        return None

    def _train(
        self, lease: LeasePublic, ctx: TrialContext
    ) -> tuple[str, float | dict[str, float] | str]:
        """Runs the trainer; returns ("value", its value or metrics), ("fail", reason),
        ("infeasible", reason) when memory ran out, or ("stopped", "")."""
        try:
            objective = registry.get(lease.objective)
        except KeyError as exc:
            return "fail", f"objective unavailable on this worker: {exc.args[0]}"
        try:
            value = objective.run_metrics(dict(lease.trial.params), lease.objective_args, ctx)
        except (_Stop, TrialPruned):
            return "stopped", ""
        except TrialDiverged as exc:
            return "fail", f"diverged: {exc}"
        except Exception as exc:
            name = type(exc).__name__
            if is_out_of_memory(exc):
                return "infeasible", f"out of memory: {name}: {str(exc)[:500]}"
            log.exception("trainer raised")
            return "fail", f"{name}: {exc}"
        return "value", value

    def _fresh_artifact_dir(self, trial: TrialLeased) -> Path:
        """An empty folder of this run alone: workers of other servers (or of another database
        on this one) share the artifact root and reuse study and trial numbers, so a fixed
        `root/study/trial` path let one worker delete or upload another's files."""
        root = self.options.artifact_root
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"study-{trial.study_id}-trial-{trial.id}-", dir=root))

    def _upload_artifacts(self, trial: TrialLeased, folder: Path) -> None:
        """Uploads what the trainer wrote, under the trial's lease (before it is completed)."""
        if not folder.is_dir():
            return
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = path.relative_to(folder).as_posix()
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            try:
                self.client.upload_artifact(
                    trial.id, name, path, content_type, lease_token=trial.lease_token
                )
            except (ApiError, ServerUnavailable) as exc:
                log.warning("%s: artifact %s not uploaded: %s", _label(trial), name, exc)
