"""Keras plumbing shared by the built-in trainers; imported only inside trainer modules.

Works on the TensorFlow, JAX and torch backends of Keras 3 (the backend is fixed when
`keras` is first imported: KERAS_BACKEND or ~/.keras/keras.json).

`setup` must run at the start of every trial, before any model is built:
- thread limits from `ctx.threads`: TensorFlow's intra/inter-op pools (fixed when its
  runtime starts, so a long-lived worker keeps the first trial's limits; a different later
  value is logged); torch's `set_num_threads`; on JAX, one thread means XLA's Eigen pool is
  switched off (`--xla_cpu_multi_thread_eigen=false`, which must be set before JAX's first
  computation in the process), and XLA has no cap for more threads than one (the worker's
  CPU affinity, if any, is what bounds it);
- GPU use: TensorFlow grows GPU memory instead of claiming it all and, when several GPUs
  are visible, uses `ctx.device` (the worker normally pins one through
  CUDA_VISIBLE_DEVICES before any framework is imported); JAX does not preallocate
  (XLA_PYTHON_CLIENT_PREALLOCATE=false, set on import of this module);
- a fresh Keras session, `keras.utils.set_random_seed(ctx.seed)` (Python, NumPy and the
  backend's generator), optional deterministic kernels (TensorFlow op determinism; torch
  deterministic algorithms; XLA's deterministic GPU ops on JAX, set before its first
  computation), and the mixed-precision policy (float16 on GPU, bfloat16 on CPU).

`EpochCallback` applies `objectives.common.TrialMonitor` to `model.fit`: it checks every
batch's loss, stops at the time limit, reports each epoch, and stops when pruned.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX: grow GPU memory

import keras
import numpy as np
from keras import ops

from objectives.base import TrialContext
from objectives.common import TrainerArgs, TrialMonitor, check_finite
from objectives.summaries import SummaryWriter

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "rmsprop", "sgd")


def setup(ctx: TrialContext, args: TrainerArgs) -> None:
    """Prepares the process for one trial; see the module docstring."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        gpu = _setup_tensorflow(ctx, deterministic=args.deterministic)
    elif backend == "jax":
        gpu = _setup_jax(ctx, deterministic=args.deterministic)
    elif backend == "torch":
        gpu = _setup_torch(ctx, deterministic=args.deterministic)
    else:
        raise RuntimeError(f"Keras backend {backend!r} cannot train these models; use "
                           f"tensorflow, jax or torch (KERAS_BACKEND)")
    keras.backend.clear_session()
    keras.utils.set_random_seed(ctx.seed)
    policy = ("mixed_float16" if gpu else "mixed_bfloat16") if args.mixed_precision else "float32"
    keras.mixed_precision.set_global_policy(policy)
    ctx.artifact_dir.mkdir(parents=True, exist_ok=True)


def _setup_tensorflow(ctx: TrialContext, *, deterministic: bool) -> bool:
    """Threads, GPU visibility and memory growth, determinism; returns whether a GPU is used."""
    import tensorflow as tf

    if ctx.threads:
        _set_threads(tf, ctx.threads)
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        index = int(ctx.device) if ctx.device and ctx.device.isdigit() else 0
        chosen = gpus[index] if index < len(gpus) else gpus[0]
        log.warning("%s sees %d GPUs; using only %s", ctx.label, len(gpus), chosen.name)
        try:
            tf.config.set_visible_devices([chosen], "GPU")
        except RuntimeError:
            log.warning("GPU visibility is fixed once TensorFlow has started; unchanged")
        gpus = [chosen]
    for g in gpus:
        # An earlier trial in this process already initialized the GPU: growth is kept.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(g, True)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return bool(gpus)


def _setup_jax(ctx: TrialContext, *, deterministic: bool) -> bool:
    """XLA flags (before JAX's first computation only); returns whether a GPU is used."""
    import jax
    from jax._src import xla_bridge  # the one place that knows whether XLA has started

    wanted = []
    if ctx.threads == 1:
        wanted.append("--xla_cpu_multi_thread_eigen=false")
    if deterministic:
        wanted.append("--xla_gpu_deterministic_ops=true")
    current = os.environ.get("XLA_FLAGS", "")
    missing = [flag for flag in wanted if flag.split("=")[0] not in current]
    if missing and xla_bridge.backends_are_initialized():
        log.info("XLA has started in this process; %s not applied to %s",
                 " ".join(missing), ctx.label)
    elif missing:
        os.environ["XLA_FLAGS"] = " ".join([current, *missing]).strip()
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if len(gpus) > 1:
        log.warning("%s sees %d GPUs; JAX computes on %s", ctx.label, len(gpus), gpus[0])
    return bool(gpus)


def _setup_torch(ctx: TrialContext, *, deterministic: bool) -> bool:
    """Threads and deterministic algorithms; returns whether a GPU is used."""
    import torch

    if ctx.threads:
        torch.set_num_threads(ctx.threads)
        with contextlib.suppress(RuntimeError):  # fixed once torch has run parallel work
            torch.set_num_interop_threads(max(1, min(2, ctx.threads)))
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    gpu = torch.cuda.is_available()
    if gpu and torch.cuda.device_count() > 1:
        log.warning("%s sees %d GPUs; torch computes on cuda:%d", ctx.label,
                    torch.cuda.device_count(), torch.cuda.current_device())
    return gpu


def _set_threads(tf: Any, threads: int) -> None:
    inter = max(1, min(2, threads))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        current = tf.config.threading.get_intra_op_parallelism_threads()
        log.warning("TensorFlow already runs with %s intra-op threads; asked for %d",
                    current, threads)


def optimizer(name: str, learning_rate: Any, **kwargs: Any) -> keras.optimizers.Optimizer:
    """adam | rmsprop | sgd with `learning_rate` (a float or a schedule)."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, **kwargs)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate, **kwargs)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, **kwargs)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {OPTIMIZERS}")


class HeUniform(keras.initializers.Initializer):
    """He-uniform weights (uniform in +-sqrt(6 / fan_in), fan_in as Keras computes it) drawn
    with NumPy from a generator seeded once: the same weights on every backend for a seed.

    Keras's own random initializers run the backend's random kernels; JAX compiles one per
    weight shape, which took minutes on a CPU for FC-DenseNet's hundreds of shapes.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> np.ndarray:
        receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
        fan_in = max(1, (shape[-2] if len(shape) > 1 else shape[-1]) * receptive)
        limit = math.sqrt(6.0 / fan_in)
        values = self._rng.uniform(-limit, limit, size=tuple(shape))
        return values.astype(keras.backend.standardize_dtype(dtype or "float32"))

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


def binary_crossentropy(target: Any, output: Any) -> Any:
    """Element-wise binary cross-entropy of probabilities, clipped to [eps, 1 - eps].

    Written with plain ops so a NaN output stays a NaN loss (reported as diverged) on every
    backend: the PyTorch backend's fused CUDA kernel asserts on NaN input instead, which
    poisons the worker's CUDA context.
    """
    eps = keras.config.epsilon()
    p = ops.clip(ops.cast(output, "float32"), eps, 1.0 - eps)
    t = ops.cast(target, "float32")
    return -(t * ops.log(p) + (1.0 - t) * ops.log(1.0 - p))


def mean_binary_crossentropy(y_true: Any, y_pred: Any) -> Any:
    """A Keras loss: `binary_crossentropy` averaged over the last axis."""
    return ops.mean(binary_crossentropy(y_true, y_pred), axis=-1)


class EpochCallback(keras.callbacks.Callback):
    """Feeds `model.fit` epochs into a TrialMonitor and a SummaryWriter.

    `extra(epoch) -> dict` may add values (e.g. a metric computed outside Keras) to each
    epoch's logs before the report.
    """

    def __init__(
        self,
        monitor: TrialMonitor,
        writer: SummaryWriter,
        extra: Any = None,
    ) -> None:
        super().__init__()
        self.monitor = monitor
        self.writer = writer
        self.extra = extra
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._epoch = epoch + 1
        self.monitor.begin_epoch()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if logs and "loss" in logs:
            check_finite(f"epoch {self._epoch} batch {batch + 1}", {"loss": logs["loss"]})
        if self.monitor.out_of_time():
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        values = {k: float(v) for k, v in (logs or {}).items()}
        if self.extra is not None:
            values.update(self.extra(epoch + 1))
        stop = self.monitor.end_epoch(epoch + 1, values)
        self.writer.scalars(epoch + 1, values)
        if stop:
            self.model.stop_training = True
