"""GPU slots end to end, on a machine without a GPU: a fake `nvidia-smi` on PATH lists four
H100s (GPU 1 in MIG mode where a test says so), and real `tunesmith serve` / `tunesmith worker`
processes pin their workers. Each worker's environment is read from /proc/<pid>/environ.

The allocation tests set KERAS_BACKEND=numpy: a GPU worker's probe then ends in about 1.5 s
without importing TensorFlow (about 9 s and 660 MB per process on this machine), and says no
GPU is usable, which is all they need. The probe of the installed TensorFlow (no GPU here)
runs in the test of an unavailable worker and in `tunesmith doctor`'s.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from service.schemas import WorkerPublic
from tests.support import (
    ServerProcess,
    WorkerGroup,
    cli_command,
    fake_gpu_uuid,
    fake_mig_uuid,
    fake_nvidia_smi,
    wait_until,
)

pytestmark = pytest.mark.slow

UUID2 = fake_gpu_uuid(2)


@functools.cache
def no_gpu_reason() -> str:
    """What a worker must say on this CPU machine: which sentence depends on the installed
    TensorFlow (the `tensorflow` wheel is a CUDA build that finds no GPU; `tensorflow-cpu` has
    no CUDA at all). Asked of TensorFlow itself in a child process, not of our code."""
    probe = (
        "import tensorflow as tf; "
        "print(tf.sysconfig.get_build_info().get('is_cuda_build', False))"
    )
    child = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True,
    )
    if child.stdout.strip().splitlines()[-1] == "True":
        return "no usable GPU: TensorFlow sees no GPU"
    return "no usable GPU: this TensorFlow is built without CUDA (tensorflow-cpu?)"


@pytest.fixture(autouse=True)
def no_inherited_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def worker_children(parent: int) -> list[int]:
    """The worker processes (`python -m service.cli.worker`) whose parent is `parent`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"service.cli.worker" in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize(
    ("env", "args", "mig_gpu", "pinned"),
    [
        ({"CUDA_VISIBLE_DEVICES": "2,3"}, [], None, ["2", "3"]),
        ({"CUDA_VISIBLE_DEVICES": "2,3"}, ["--workers-per-gpu", "2"], None, ["2", "2", "3", "3"]),
        ({}, ["--gpus", UUID2], None, [UUID2]),
        ({}, ["--gpus", "all"], 1, ["0", fake_mig_uuid(1, 0), fake_mig_uuid(1, 1), "2", "3"]),
    ],
    ids=["cuda-visible-devices", "two-per-gpu", "uuid", "all-with-mig"],
)
def test_serve_pins_one_worker_per_allowed_gpu(
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
    env: dict[str, str],
    args: list[str],
    mig_gpu: int | None,
    pinned: list[str],
) -> None:
    fake = fake_nvidia_smi(tmp_path / "bin", mig_gpu=mig_gpu)
    server = start_server(
        api_only=False, extra_args=args, extra_env={**fake, **env, "KERAS_BACKEND": "numpy"}
    )
    with server.client() as client:
        wait_until(
            lambda: client.workers().count == len(pinned),
            timeout=90,
            what=f"{len(pinned)} GPU workers",
            detail=server.log_tail,
        )
        workers = client.workers().data
    assert sorted(w.gpu or "" for w in workers) == sorted(pinned)
    assert all((w.unavailable or "").startswith("no usable GPU: ") for w in workers)
    assert server.proc is not None
    assert sorted(worker_children(server.proc.pid)) == sorted(w.pid or 0 for w in workers)
    for w in workers:
        worker_env = environ_of(w.pid or 0)
        assert worker_env["CUDA_VISIBLE_DEVICES"] == w.gpu
        assert worker_env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def _seen(client_workers: list[WorkerPublic], slot: str) -> datetime | None:
    return next((w.last_seen_at for w in client_workers if f"-{slot}-" in w.id), None)


def test_a_gpu_worker_without_a_gpu_registers_but_leases_only_with_allow_cpu(
    start_server: Callable[..., ServerProcess], start_workers: Callable[..., WorkerGroup]
) -> None:
    server = start_server()
    client = server.client()
    study = client.create_study(
        {
            "name": "gpu-or-not",
            "objective": "synthetic",
            "objective_args": {"steps": 1},
            "strategy": {"name": "random"},
            "budget": {"max_trials": 3, "max_parallel": 1},
        }
    )
    start_workers(server, "--gpus", "0", "--objective", "synthetic")
    first = wait_until(
        lambda: _seen(client.workers().data, "gpu0"), timeout=90, what="the GPU worker"
    )
    (worker,) = client.workers().data
    assert (worker.gpu, worker.backend, worker.device) == ("0", "tensorflow", "cpu")
    assert worker.unavailable == no_gpu_reason()
    wait_until(
        lambda: (_seen(client.workers().data, "gpu0") or first) > first,
        timeout=30,
        what="the GPU worker asking again",
    )
    assert client.get_study(study.id).n_trials == 0, "it leased nothing"
    log = (server.workdir / "workers.log").read_text()
    assert f"{no_gpu_reason()}; leasing no trials (install a GPU build" in log

    start_workers(server, "--gpus", "0", "--allow-cpu", "--objective", "synthetic")
    done = client.wait(study.id, timeout=120, progress=False, poll=0.25)
    assert done.counts["complete"] == 3
    by_id = {w.id: w for w in client.workers().data}
    assert {by_id[t.worker_id or ""].unavailable for t in client.trials(study.id)} == {None}
    assert by_id[worker.id].trials_done == 0 and by_id[worker.id].unavailable == no_gpu_reason()
    assert "training on the CPU (--allow-cpu)" in (server.workdir / "workers.log").read_text()
    client.close()


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    return subprocess.run(cli_command(*args), env=full, capture_output=True, text=True, timeout=120)


def test_doctor_prints_backend_devices_slots_and_why_no_gpu(tmp_path: Path) -> None:
    env = {**fake_nvidia_smi(tmp_path / "bin"), "CUDA_VISIBLE_DEVICES": "2,3"}
    done = run_cli("doctor", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Keras backend:        tensorflow (Keras 3.")
    assert "CUDA_VISIBLE_DEVICES: '2,3'" in lines
    assert f"                      2: NVIDIA H100 80GB HBM3, 79.6 GiB, {UUID2}" in lines
    assert (
        "Worker slots:         gpu2: CUDA_VISIBLE_DEVICES=2 (NVIDIA H100 80GB HBM3, 79.6 GiB)"
        in lines
    )
    assert "Backend devices:      /physical_device:CPU:0 (cpu)" in lines
    assert f"GPU usable:           no ({no_gpu_reason().removeprefix('no usable GPU: ')})" in lines

    check = run_cli(
        "worker", "--check", "--workers-per-gpu", "2", env={**env, "KERAS_BACKEND": "numpy"}
    )
    assert check.returncode == 0, check.stderr
    assert (
        "                      gpu3-w1: CUDA_VISIBLE_DEVICES=3 (NVIDIA H100 80GB HBM3, 79.6 GiB)"
        in (check.stdout.splitlines())
    )


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["serve", "--gpus", "0,x"], {}, 2, "argument --gpus: 'x' is not a GPU index"),
        (
            ["worker", "--gpus", "0"],
            {"CUDA_VISIBLE_DEVICES": "2,3"},
            1,
            "GPU '0' is outside CUDA_VISIBLE_DEVICES='2,3'",
        ),
        (["serve", "--gpus", "9"], {}, 1, "--gpus: no GPU '9' on this machine"),
        (
            ["worker"],
            {"CUDA_VISIBLE_DEVICES": "two"},
            1,
            "CUDA_VISIBLE_DEVICES: 'two' is not a GPU",
        ),
        (
            ["serve", "--executor", "ray", "--workers-per-gpu", "2"],
            {},
            2,
            "--workers-per-gpu works with the local executor only",
        ),
        (
            ["worker", "--workers-per-gpu", "0"],
            {},
            2,
            "expected a whole number of at least 1; got '0'",
        ),
    ],
)
def test_gpu_flag_errors_are_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], code: int, message: str
) -> None:
    done = run_cli(*args, env={**fake_nvidia_smi(tmp_path / "bin"), **env})
    assert done.returncode == code
    assert message in done.stderr.splitlines()[-1] and "Traceback" not in done.stderr
