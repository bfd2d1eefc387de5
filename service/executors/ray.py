"""The Ray executor: the worker loop in Ray actors, one per GPU (num_gpus=1) or CPU slot.

Each actor runs `service.worker.Worker` in a thread of its own process. Before the loop
starts it sets CUDA_VISIBLE_DEVICES to the GPU Ray assigned it (`ray.get_gpu_ids()`), or to
"" for a CPU actor, so a trainer sees only its own device.

Rules:
- `address` names an existing cluster (`ray.init(address=...)`); without one a local
  cluster is started and shut down again by `stop()`. With `gpus`, the local cluster
  declares that many GPUs and exposes exactly those indices (CUDA_VISIBLE_DEVICES).
- How many actors: `gpus` given -> one GPU actor per listed GPU; else `cpu_workers` given ->
  that many CPU actors (num_cpus=1); else one GPU actor per GPU in the cluster, or, on a
  cluster without GPUs, one CPU actor per two CPUs. In that last mode the executor follows
  the cluster: every `poll_seconds` it adds actors for GPUs (or CPUs) that joined.
- GPU actors reserve num_cpus=0 (the GPU is the scarce resource); CPU actors one CPU and one
  trainer thread.
- An actor whose process or node dies is restarted by Ray (max_restarts=-1) and its loop
  resumes; a loop that ends on its own (`max_trials`, `idle_timeout`) is not restarted.
- The actors must reach the server: a server URL on 0.0.0.0 is advertised as this node's
  Ray IP address; a loopback URL only works when every actor runs on this machine.
- `stop()` asks every loop to end (the running trial is released), waits up to `timeout`
  seconds, then kills the actors that are still running.
- Ray is an optional dependency (`pip install 'tunesmith[ray]'`); it is imported on
  `start()`, which raises ExecutorUnavailable when it is missing.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from service.errors import TunesmithError
from service.worker import Worker, WorkerOptions, default_worker_id, quiet_framework_logs

log = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ANY_ADDRESS = {"0.0.0.0", "::", ""}


class ExecutorUnavailable(TunesmithError):
    """The executor cannot run here (a missing optional dependency)."""


@dataclass(frozen=True)
class ActorSpec:
    """One worker actor: its name (worker id slot) and the resources it reserves."""

    name: str
    num_gpus: float
    num_cpus: float


def plan_actors(
    *, gpus: list[str] | None, cpu_workers: int | None, cluster: dict[str, float]
) -> list[ActorSpec]:
    """--gpus wins, then --workers N (CPU), then one per cluster GPU, else one per two CPUs."""
    if gpus:
        return [ActorSpec(f"ray-gpu{i}", 1, 0) for i in range(len(gpus))]
    if cpu_workers is not None:
        return [ActorSpec(f"ray-cpu{i}", 0, 1) for i in range(cpu_workers)]
    gpu_count = int(cluster.get("GPU", 0))
    if gpu_count:
        return [ActorSpec(f"ray-gpu{i}", 1, 0) for i in range(gpu_count)]
    return [ActorSpec(f"ray-cpu{i}", 0, 1) for i in range(max(1, int(cluster.get("CPU", 2)) // 2))]


def advertised_url(server: str, node_ip: str, *, remote: bool) -> str:
    """The server URL as actors must use it: 0.0.0.0 becomes `node_ip`."""
    parts = urlsplit(server)
    host = parts.hostname or ""
    if host in ANY_ADDRESS:
        netloc = f"{node_ip}:{parts.port}" if parts.port else node_ip
        return urlunsplit(parts._replace(netloc=netloc))
    if remote and host in LOOPBACK:
        log.warning(
            "the server URL %s is loopback: actors on other nodes of the Ray cluster cannot "
            "reach it (serve with --host 0.0.0.0)",
            server,
        )
    return server


class WorkerActor:
    """The body of each Ray actor (wrapped with `ray.remote` on start). Thread-safe: `run`
    and `stop` are called concurrently (the actor has max_concurrency=2)."""

    def __init__(self, options: WorkerOptions, slot: str) -> None:
        quiet_framework_logs(os.environ)  # before this actor's trainers import a framework
        logging.basicConfig(
            level=os.environ.get("TUNESMITH_LOG_LEVEL", "INFO").upper(),
            format=f"%(asctime)s %(levelname)s worker[{slot}] %(name)s: %(message)s",
        )
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.slot = slot
        self.options = options
        self._lock = threading.Lock()
        self._worker: Worker | None = None
        self._stopped = False

    def run(self) -> int:
        """Pins the GPU Ray assigned, then runs the worker loop; returns the trials done."""
        import ray

        gpu_ids = [str(g) for g in ray.get_gpu_ids()]
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
        options = replace(
            self.options,
            worker_id=default_worker_id(self.slot),
            gpu=gpu_ids[0] if gpu_ids else None,
        )
        with self._lock:
            if self._stopped:
                return 0
            self._worker = Worker(options)
        log.info(
            "worker %s: CUDA_VISIBLE_DEVICES=%r",
            options.worker_id,
            os.environ["CUDA_VISIBLE_DEVICES"],
        )
        return self._worker.run()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._worker is not None:
                self._worker.request_stop()


@dataclass
class _Member:
    spec: ActorSpec
    actor: Any
    run_ref: Any


@dataclass
class RayExecutor:
    server: str
    token: str | None
    address: str | None = None
    gpus: list[str] | None = None
    cpu_workers: int | None = None
    artifact_root: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "tunesmith-worker-artifacts"
    )
    max_trials: int | None = None
    idle_timeout: float | None = None
    objectives: list[str] | None = None
    poll_seconds: float = 15.0
    _members: list[_Member] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _started_cluster: bool = False
    _actor_class: Any = None
    _url: str = ""
    _watcher: threading.Thread | None = None

    @property
    def follows_cluster(self) -> bool:
        """True when the actor count follows the cluster's resources (no --gpus, --workers)."""
        return not self.gpus and self.cpu_workers is None

    def start(self) -> None:
        """Connects to (or starts) the Ray cluster and starts the actors."""
        try:
            import ray
        except ImportError:
            raise ExecutorUnavailable(
                "the Ray executor needs Ray: pip install 'tunesmith[ray]'"
            ) from None
        if not ray.is_initialized():
            self._init_ray(ray)
        self._url = advertised_url(
            self.server, ray.util.get_node_ip_address(), remote=self.address is not None
        )
        self._actor_class = ray.remote(WorkerActor)
        self._scale(ray)
        if self.follows_cluster:
            self._watcher = threading.Thread(target=self._follow, name="ray-scaler", daemon=True)
            self._watcher.start()

    def _init_ray(self, ray: Any) -> None:
        if self.address:
            ray.init(address=self.address, include_dashboard=False)
            log.info("connected to the Ray cluster at %s", self.address)
            return
        if self.gpus:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus)
        ray.init(
            num_cpus=max(os.cpu_count() or 1, self.cpu_workers or 0),
            num_gpus=len(self.gpus) if self.gpus else None,
            include_dashboard=False,
        )
        self._started_cluster = True
        log.info("started a local Ray cluster: %s", ray.cluster_resources())

    def _scale(self, ray: Any) -> None:
        """Starts the actors the plan has and the executor does not have yet."""
        plan = plan_actors(
            gpus=self.gpus, cpu_workers=self.cpu_workers, cluster=ray.cluster_resources()
        )
        have = {m.spec.name for m in self._members}
        for spec in plan:
            if spec.name in have or self._stopping.is_set():
                continue
            options = WorkerOptions(
                server=self._url,
                token=self.token,
                worker_id=spec.name,
                threads=1 if spec.num_cpus else None,
                artifact_root=self.artifact_root,
                max_trials=self.max_trials,
                idle_timeout=self.idle_timeout,
                objectives=self.objectives,
            )
            actor = self._actor_class.options(
                num_gpus=spec.num_gpus,
                num_cpus=spec.num_cpus,
                max_concurrency=2,
                max_restarts=-1,
                max_task_retries=-1,
            ).remote(options, spec.name)
            self._members.append(_Member(spec, actor, actor.run.remote()))
            log.info(
                "started Ray worker actor %s (num_gpus=%s, num_cpus=%s) for %s",
                spec.name,
                spec.num_gpus,
                spec.num_cpus,
                self._url,
            )

    def _follow(self) -> None:
        import ray

        while not self._stopping.wait(self.poll_seconds):
            try:
                self._scale(ray)
            except Exception:
                log.exception("could not follow the Ray cluster's resources; will retry")

    def wait(self) -> int:
        """Blocks until every actor's loop has ended; returns the trials they did."""
        import ray

        return sum(ray.get([m.run_ref for m in self._members]))

    def stop(self, timeout: float = 5.0) -> None:
        """Ends every loop (see the module rules); shuts down a cluster this executor started.

        The wait is short: `tunesmith serve` stops its executor after the server has gone, when
        a loop blocked in a retried request cannot see the stop request anyway; a trial of a
        killed actor is re-queued when its lease expires."""
        self._stopping.set()
        if self._actor_class is None:
            return
        import ray

        for member in self._members:
            member.actor.stop.remote()
        refs = [m.run_ref for m in self._members]
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout) if refs else ([], [])
        for member in self._members:
            if member.run_ref in pending:
                log.warning(
                    "Ray worker actor %s did not stop in %s s; killing it",
                    member.spec.name,
                    timeout,
                )
            ray.kill(member.actor, no_restart=True)
        self._members.clear()
        if self._started_cluster:
            ray.shutdown()
