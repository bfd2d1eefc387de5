"""Keras plumbing shared by the built-in trainers; imported only inside trainer modules.

`setup` must run at the start of every trial, before any model is built:
- thread limits from `ctx.threads` (TensorFlow fixes them when its runtime starts, so a
  long-lived worker keeps the first trial's limits; a different later value is logged);
- GPU memory growth on the GPU(s) this worker sees (the worker pins one through
  CUDA_VISIBLE_DEVICES before TensorFlow is imported; if several are visible, `ctx.device`
  picks one); on JAX, no preallocation;
- a fresh Keras session, `keras.utils.set_random_seed(ctx.seed)`, optional deterministic
  kernels, and the mixed-precision policy (float16 on GPU, bfloat16 on CPU).

`EpochCallback` applies `objectives.common.TrialMonitor` to `model.fit`: it checks every
batch's loss, stops at the time limit, reports each epoch, and stops when pruned.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX: grow GPU memory

import keras
import numpy as np
from keras import ops

from objectives.base import TrialContext
from objectives.common import TrainerArgs, TrialMonitor, check_finite

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "rmsprop", "sgd")


def setup(ctx: TrialContext, args: TrainerArgs) -> None:
    """Prepares the process for one trial; see the module docstring."""
    gpu = False
    if keras.backend.backend() == "tensorflow":
        gpu = _setup_tensorflow(ctx, deterministic=args.deterministic)
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
        log.warning("trial %s sees %d GPUs; using only %s", ctx.trial_id, len(gpus), chosen.name)
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


class SummaryWriter:
    """TensorBoard event files under `log_dir` (no-op without TensorFlow and TensorBoard).

    Use as a context manager; scalars and images are written per epoch.
    """

    def __init__(self, log_dir: Path, *, enabled: bool = True) -> None:
        self._writer: Any = None
        if enabled and keras.backend.backend() == "tensorflow":
            if importlib.util.find_spec("tensorboard") is None:
                log.warning("tensorboard is not installed; no TensorBoard logs in %s", log_dir)
                return
            import tensorflow as tf

            self._tf = tf
            self._writer = tf.summary.create_file_writer(str(log_dir))

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        if self._writer is None:
            return
        with self._writer.as_default(step=step):
            for name, value in values.items():
                self._tf.summary.scalar(name, value)

    def images(self, name: str, step: int, images: np.ndarray, max_outputs: int = 16) -> None:
        """`images` (n, h, w, c) in [0, 1]."""
        if self._writer is None:
            return
        with self._writer.as_default(step=step):
            self._tf.summary.image(name, np.clip(images, 0, 1), max_outputs=max_outputs)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


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
