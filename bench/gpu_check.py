"""GPU check: one short trial of each built-in trainer on each installed Keras backend, each run
by a real `tunesmith worker` pinned to one GPU, with nvidia-smi sampling the GPU meanwhile.

    python bench/gpu_check.py [--epochs 3] [--backends tensorflow jax torch] [--output FILE.md]

For every (backend, trainer): a fresh worker process (`tunesmith worker --gpus GPU
--max-trials 1`, KERAS_BACKEND=backend) against a local `tunesmith serve --workers 0`
(SQLite), a one-trial study of the trainer at its default parameters (enqueued) with
`epochs` epochs. The table gives the first epoch (tracing included) and the median of the
later ones (from the trial's metrics.csv), the peak GPU memory in use while the worker ran
(nvidia-smi's memory.used minus what was in use before it started), and the GPU utilization
sampled every 250 ms while the trial ran (mean and max). The GPU is the first one
`tunesmith worker` would use (CUDA_VISIBLE_DEVICES respected), or --gpu.

Without nvidia-smi, or with no GPU to pin, it says so and exits 1. A backend whose worker
finds no usable GPU is skipped with the worker's reason (it would lease nothing); exit 1 when
no backend ran.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.servers import running_server
from objectives.densenet import DEFAULTS as DENSENET_DEFAULTS
from objectives.gan import DEFAULTS as GAN_DEFAULTS
from objectives.softmax import DEFAULTS as SOFTMAX_DEFAULTS
from objectives.vae import DEFAULTS as VAE_DEFAULTS
from service.client import Client
from service.executors.gpus import GpuError, Pin, choose_pins, query_gpus, visible_devices

TOKEN = "gpu-check-token"
BACKENDS = ("tensorflow", "jax", "torch")
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("softmax", "softmax", {}, SOFTMAX_DEFAULTS),
    ("vae (dense)", "vae", {"architecture": "dense"}, VAE_DEFAULTS),
    ("vae (conv)", "vae", {"architecture": "conv"}, VAE_DEFAULTS),
    ("gan", "gan", {}, GAN_DEFAULTS),
    ("densenet", "densenet", {}, DENSENET_DEFAULTS),
]
TRIAL_TIMEOUT_S = 900.0
NO_PARENS = str.maketrans("", "", "()")


class Unavailable(Exception):
    """The worker registered without a usable GPU: the backend cannot be measured."""


@dataclass
class Sampler:
    """`nvidia-smi -lms 250` on one GPU in the background: (time, utilization %, MiB used)."""

    gpu: str
    samples: list[tuple[float, float | None, float]] = field(default_factory=list)
    _proc: subprocess.Popen[str] | None = None

    def start(self) -> Sampler:
        self._proc = subprocess.Popen(
            [
                "nvidia-smi",
                "--query-gpu=utilization.gpu,memory.used",
                "--format=csv,noheader,nounits",
                "-i",
                self.gpu,
                "-lms",
                "250",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            util, _, used = (cell.strip() for cell in line.partition(","))
            with contextlib.suppress(ValueError):  # "[N/A]" (MIG instances have no utilization)
                self.samples.append((time.monotonic(), _number(util), float(used)))

    def window(self, start: float, end: float) -> list[tuple[float, float | None, float]]:
        return [s for s in list(self.samples) if start <= s[0] <= end]

    def memory_now(self) -> float:
        time.sleep(0.6)
        return self.samples[-1][2] if self.samples else 0.0

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def pick_gpu(wanted: str | None) -> Pin:
    """The GPU to measure on (see the module doc); SystemExit with the reason when none."""
    gpus = query_gpus()
    if gpus is None:
        raise SystemExit(
            "gpu_check: nvidia-smi is not installed or fails: this check needs an NVIDIA GPU and "
            "its driver (`tunesmith doctor` shows what this machine has)"
        )
    try:
        pins = choose_pins(
            [wanted] if wanted else None, visible=visible_devices(os.environ), gpus=gpus
        )
    except GpuError as exc:
        raise SystemExit(f"gpu_check: {exc}") from None
    if not pins:
        raise SystemExit(
            "gpu_check: no GPU to pin (nvidia-smi lists none, or CUDA_VISIBLE_DEVICES hides them)"
        )
    return pins[0]


@contextlib.contextmanager
def worker(
    url: str, pin: Pin, backend: str, objective: str, workdir: Path, *, allow_cpu: bool
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `tunesmith worker` on the pinned GPU, one trial, KERAS_BACKEND=backend."""
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TUNESMITH_TOKEN": TOKEN,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    log = (workdir / f"worker-{backend}-{objective}.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "worker",
            "--server",
            url,
            "--gpus",
            pin.visible,
            "--max-trials",
            "1",
            "--objective",
            objective,
            "--artifact-root",
            str(workdir / "artifacts"),
            *(["--allow-cpu"] if allow_cpu else []),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run_case(
    client: Client,
    url: str,
    pin: Pin,
    sampler: Sampler,
    backend: str,
    case: tuple[str, str, dict[str, Any], dict[str, Any]],
    epochs: int,
    workdir: Path,
    *,
    allow_cpu: bool,
) -> dict[str, Any]:
    """One trial; returns the table row's numbers. Raises Unavailable (see the class)."""
    label, objective, args, defaults = case
    study = client.create_study(
        {
            "name": f"gpu-check {backend} {label} {time.time_ns()}".translate(NO_PARENS),
            "objective": objective,
            "objective_args": {**args, "epochs": epochs, "images": False},
            "strategy": {"name": "random"},
            "budget": {"max_trials": 1, "max_parallel": 1},
            "enqueue": [defaults],
        }
    )
    baseline = sampler.memory_now()
    started = time.monotonic()
    running_since: float | None = None
    with worker(url, pin, backend, objective, workdir, allow_cpu=allow_cpu):
        while True:
            trials = client.trials(study.id)
            if trials and trials[0].state in ("complete", "failed", "pruned"):
                break
            if trials and trials[0].state == "running" and running_since is None:
                running_since = time.monotonic()
            mine = [
                w
                for w in client.workers().data
                if w.pid
                and w.gpu == pin.visible
                and w.backend == backend
                and w.last_seen_at.timestamp() > time.time() - 5
            ]
            if any(w.unavailable for w in mine):
                raise Unavailable(next(w.unavailable for w in mine if w.unavailable) or "")
            if time.monotonic() - started > TRIAL_TIMEOUT_S:
                return {"error": f"no result after {TRIAL_TIMEOUT_S:.0f} s"}
            time.sleep(0.5)
    ended = time.monotonic()
    trial = trials[0]
    if trial.state != "complete":
        return {"error": f"{trial.state}: {trial.error}"}
    csv = client.request("GET", f"/trials/{trial.id}/artifacts/metrics.csv").text.splitlines()
    column = csv[0].split(",").index("seconds")
    seconds = [float(row.split(",")[column]) for row in csv[1:]]
    during = sampler.window(running_since or started, ended)
    utils = [u for _, u, _ in during if u is not None]
    memory = [m for _, _, m in sampler.window(started, ended)]
    return {
        "first": seconds[0],
        "later": statistics.median(seconds[1:] or seconds),
        "peak_mib": max(memory) - baseline if memory else None,
        "util_mean": statistics.mean(utils) if utils else None,
        "util_max": max(utils) if utils else None,
        "value": trial.value,
    }


def row(backend: str, label: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"| {backend} | {label} | {r['error']} | | | | | |"
    peak, util, util_max = (_or_na(r[k]) for k in ("peak_mib", "util_mean", "util_max"))
    return (
        f"| {backend} | {label} | {r['first']:.2f} | {r['later']:.3f} | {peak} | {util} | "
        f"{util_max} | {r['value']:.4g} |"
    )


def _or_na(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--only", nargs="*", help="trainer labels, e.g. softmax 'vae (conv)'")
    parser.add_argument("--gpu", help="index or UUID (default: the first GPU a worker would use)")
    parser.add_argument("--output", type=Path)
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help="let the workers train where the backend sees no GPU (a smoke test of this script)",
    )
    opts = parser.parse_args()
    pin = pick_gpu(opts.gpu)
    backends = [b for b in opts.backends if importlib.util.find_spec(b) is not None]
    if not backends:
        raise SystemExit(
            f"gpu_check: none of {', '.join(opts.backends)} is installed "
            "(pip install 'tunesmith[gpu]')"
        )
    lines = [
        f"GPU {pin.visible}: {pin.name} ({(pin.memory_bytes or 0) / 2**30:.0f} GiB); "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{opts.epochs} epochs per trial at the trainer's default parameters; "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        "| backend | trainer | first epoch s | median later epoch s | peak GPU memory MiB | "
        "GPU util mean % | GPU util max % | final |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ran = 0
    with (
        tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp,
        running_server(f"sqlite:///{tmp}/gpu-check.db", Path(tmp), TOKEN) as url,
    ):
        sampler = Sampler(pin.visible).start()
        client = Client(url, TOKEN)
        try:
            for backend in backends:
                for case in CASES:
                    if opts.only and case[0] not in opts.only:
                        continue
                    try:
                        result = run_case(
                            client,
                            url,
                            pin,
                            sampler,
                            backend,
                            case,
                            opts.epochs,
                            Path(tmp),
                            allow_cpu=opts.allow_cpu,
                        )
                    except Unavailable as exc:
                        lines.append(f"| {backend} | all | skipped: {exc} | | | | | |")
                        print(lines[-1], flush=True)
                        break
                    lines.append(row(backend, case[0], result))
                    ran += "error" not in result
                    print(lines[-1], flush=True)
        finally:
            client.close()
            sampler.stop()
    table = "\n".join(lines) + "\n"
    print(table)
    if opts.output:
        opts.output.write_text(table)
    return 0 if ran else 1


if __name__ == "__main__":
    sys.exit(main())
