"""What the Keras backend of this process can compute on, for `tunesmith doctor` and workers.

`backend_report()` imports Keras (and so its backend framework) only when called, and never
raises: anything that goes wrong ends up in `reason`. A GPU counts as usable only when a
small computation on it succeeded, so a driver or CUDA mismatch reads as unusable with the
framework's error. The probe keeps GPU memory small: TensorFlow's memory growth is switched
on first, JAX is told not to preallocate, and torch allocates a few bytes.

Report keys: keras_backend, keras_version, framework_version, cuda_visible_devices (the
environment variable, or None), devices (a list of {name, kind: "gpu" | "cpu",
memory_bytes: int or None}), gpu_usable (bool), reason (str or None; None exactly when a
GPU is usable).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

Device = dict[str, Any]


def backend_report() -> dict[str, Any]:
    report: dict[str, Any] = {
        "keras_backend": os.environ.get("KERAS_BACKEND"),
        "keras_version": None,
        "framework_version": None,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "devices": [],
        "gpu_usable": False,
        "reason": None,
    }
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        import keras

        report["keras_version"] = keras.__version__
        report["keras_backend"] = keras.backend.backend()
    except Exception as exc:
        report["reason"] = f"keras failed to import: {type(exc).__name__}: {exc}"
        return report
    probe = PROBES.get(report["keras_backend"])
    if probe is None:
        report["reason"] = f"Keras backend {report['keras_backend']!r} cannot train on a GPU"
        return report
    try:
        version, devices, trouble = probe()
    except Exception as exc:
        report["reason"] = f"{report['keras_backend']} failed: {type(exc).__name__}: {exc}"
        return report
    report["framework_version"] = version
    report["devices"] = devices
    report["gpu_usable"] = trouble is None
    report["reason"] = trouble
    return report


def _tensorflow() -> tuple[str, list[Device], str | None]:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):  # fixed once TensorFlow has used the GPU
            tf.config.experimental.set_memory_growth(gpu, True)
    devices = [{"name": d.name, "kind": "gpu" if d.device_type == "GPU" else "cpu",
                "memory_bytes": None} for d in tf.config.list_physical_devices()]
    if not gpus:
        built = tf.sysconfig.get_build_info().get("is_cuda_build", False)
        why = ("TensorFlow sees no GPU" if built else
               "this TensorFlow is built without CUDA (tensorflow-cpu?)")
        return tf.__version__, devices, why

    def compute() -> None:
        with tf.device("/GPU:0"):
            float(tf.reduce_sum(tf.ones((2, 2))))

    return tf.__version__, devices, _try(compute)


def _jax() -> tuple[str, list[Device], str | None]:
    import jax

    devices = []
    gpus = []
    for d in jax.devices():
        kind = "gpu" if d.platform == "gpu" else "cpu"
        stats = d.memory_stats() if kind == "gpu" else None
        devices.append({"name": str(d), "kind": kind,
                        "memory_bytes": (stats or {}).get("bytes_limit")})
        if kind == "gpu":
            gpus.append(d)
    if not gpus:
        return jax.__version__, devices, (
            f"JAX's default backend is {jax.default_backend()!r}: no GPU (a CUDA build of "
            f"jaxlib is needed)")

    def compute() -> None:
        float(jax.device_put(jax.numpy.ones((2, 2)), gpus[0]).sum())

    return jax.__version__, devices, _try(compute)


def _torch() -> tuple[str, list[Device], str | None]:
    import torch

    devices: list[Device] = [{"name": "cpu", "kind": "cpu", "memory_bytes": None}]
    if not torch.cuda.is_available():
        why = ("this torch is built without CUDA" if torch.version.cuda is None else
               f"torch (CUDA {torch.version.cuda}) sees no usable GPU")
        return torch.__version__, devices, why
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        devices.insert(i, {"name": f"cuda:{i} {props.name}", "kind": "gpu",
                           "memory_bytes": int(props.total_memory)})

    def compute() -> None:
        float(torch.ones(2, 2, device="cuda").sum())

    return torch.__version__, devices, _try(compute)


def _try(compute: Callable[[], None]) -> str | None:
    try:
        compute()
    except Exception as exc:
        return f"a computation on the GPU failed: {type(exc).__name__}: {exc}"
    return None


PROBES: dict[str, Callable[[], tuple[str, list[Device], str | None]]] = {
    "tensorflow": _tensorflow,
    "jax": _jax,
    "torch": _torch,
}
