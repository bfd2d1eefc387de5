"""A trainer that runs out of memory fails its trial with 'out of memory', sent as infeasible
(the optimizer learns the region instead of imputing a bad value); other errors are plain
failures; the worker goes on.

No built-in objective can exhaust memory on purpose, so a fake objective is put in the
registry that the worker reads (the same lookup a real worker does) and the worker's
trial path runs against a fake client that records what would be sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from objectives import registry
from service import worker as worker_module
from service.domain import TrialState
from service.schemas import LeasePublic, TrialLeased
from service.worker import Worker, WorkerOptions


class ResourceExhaustedError(Exception):
    """Named like TensorFlow's GPU out-of-memory error."""


class OutOfMemoryError(RuntimeError):
    """Named like PyTorch's torch.OutOfMemoryError (torch.cuda.OutOfMemoryError)."""


class _FakeObjective:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def run_metrics(self, params: dict[str, Any], args: dict[str, Any], ctx: Any) -> float:
        ctx.report(1, 0.5)
        raise self.exc


class _RecordingClient:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def report(self, trial: Any, step: int, value: float) -> bool:
        self.sent.append(("report", value))
        return False

    def complete(self, trial: Any, value: float) -> None:
        self.sent.append(("complete", value))

    def fail(self, trial: Any, reason: str, *, infeasible: bool = False) -> None:
        self.sent.append(("fail", (reason, infeasible)))

    def release(self, trial: Any) -> None:
        self.sent.append(("release", None))

    def heartbeat(self, trial: Any) -> None:
        pass

    def keep_alive(self, trial: Any, every: float) -> Any:
        from service.client import Client

        return Client.keep_alive(self, trial, every)  # type: ignore[arg-type]

    def close(self) -> None:
        pass


def _lease(objective: str) -> LeasePublic:
    now = datetime.now(UTC)
    trial = TrialLeased(
        id=1,
        study_id=1,
        number=0,
        state=TrialState.RUNNING,
        params={"x": 0.5},
        value=None,
        step=None,
        seed=1,
        attempt=1,
        source="test",
        suggestion={},
        worker_id="w",
        error=None,
        created_at=now,
        started_at=now,
        finished_at=None,
        lease_expires_at=now,
        lease_token="t" * 32,
    )
    return LeasePublic(
        trial=trial,
        study_name="oom",
        objective=objective,
        objective_args={},
        metric="loss",
        direction="minimize",
        lease_seconds=60,
    )


def _chained_oom() -> BaseException:
    try:
        try:
            raise MemoryError()
        except MemoryError as inner:
            raise ValueError("trainer step failed") from inner
    except ValueError as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "reason", "infeasible"),
    [
        (MemoryError(), "out of memory: MemoryError", True),
        (ResourceExhaustedError("OOM when allocating tensor"), "out of memory: Resource", True),
        (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "out of memory: Runt", True),
        (OutOfMemoryError("CUDA error"), "out of memory: OutOfMemoryError", True),
        (RuntimeError("RESOURCE_EXHAUSTED: XLA allocator"), "out of memory: RuntimeError", True),
        (_chained_oom(), "out of memory: ValueError", True),
        (RuntimeError("a bug"), "RuntimeError: a bug", False),
    ],
)
def test_out_of_memory_fails_the_trial_as_infeasible(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    exc: BaseException,
    reason: str,
    infeasible: bool,
) -> None:
    real_get = registry.get
    monkeypatch.setattr(
        worker_module.registry,
        "get",
        lambda name: _FakeObjective(exc) if name == "oom-test" else real_get(name),
    )
    worker = Worker(
        WorkerOptions(
            server="http://127.0.0.1:9", token=None, worker_id="w", artifact_root=tmp_path
        )
    )
    fake = _RecordingClient()
    worker.client = fake  # type: ignore[assignment]
    worker.run_trial(_lease("oom-test"))
    worker.run_trial(_lease("oom-test"))  # and again: the worker is still fine
    fails = [payload for kind, payload in fake.sent if kind == "fail"]
    assert len(fails) == 2, fake.sent
    assert all(r.startswith(reason) and i is infeasible for r, i in fails), fake.sent
    assert not [kind for kind, _ in fake.sent if kind == "complete"]
