"""TensorBoard event files written the same way on every Keras backend.

Summaries are built with the `tensorboard` package's own protobufs (the TensorBoard 2 form
`tf.summary` writes: scalars as float32 rank-0 tensors with the scalars plugin's metadata,
images as [width, height, PNG...] string tensors with the images plugin's metadata) and
framed by its record writer into `events.out.tfevents.*` with plain file IO. TensorFlow is
never imported: on the JAX or torch backend it would start a second framework on the same
GPU, claiming memory beside the one that trains. Without the `tensorboard` package the
writer writes nothing and says so once.

Use as a context manager; a closed writer ignores further calls.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import logging
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

log = logging.getLogger(__name__)

_serial = itertools.count()
_warned = False


class SummaryWriter:
    def __init__(self, log_dir: Path, *, enabled: bool = True) -> None:
        self._file: IO[bytes] | None = None
        self._records: Any = None
        if not enabled:
            return
        if importlib.util.find_spec("tensorboard") is None:
            _warn_once(log_dir)
            return
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        log_dir.mkdir(parents=True, exist_ok=True)
        name = (f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_serial)}")
        self._file = (log_dir / name).open("wb")
        self._records = RecordWriter(self._file)
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        if self._records is None:
            return
        from tensorboard.plugins.scalar.summary_v2 import scalar_pb

        for name, value in values.items():
            self._summary(step, scalar_pb(name, np.float32(value)))

    def images(self, name: str, step: int, images: np.ndarray, max_outputs: int = 16) -> None:
        """`images` (n, h, w, c) with c in {1, 3}, values in [0, 1]; the first `max_outputs`."""
        if self._records is None:
            return
        from PIL import Image
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.plugins.image.metadata import create_summary_metadata
        from tensorboard.util import tensor_util

        batch = (np.clip(np.asarray(images[:max_outputs], dtype=np.float32), 0.0, 1.0) * 255.0
                 + 0.5).astype(np.uint8)
        height, width = batch.shape[1:3]
        encoded = []
        for img in batch:
            buffer = io.BytesIO()
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buffer, "PNG")
            encoded.append(buffer.getvalue())
        tensor = tensor_util.make_tensor_proto(
            np.array([str(width).encode(), str(height).encode(), *encoded], dtype=object)
        )
        summary = summary_pb2.Summary()
        summary.value.add(tag=name, tensor=tensor,
                          metadata=create_summary_metadata(display_name=name, description=""))
        self._summary(step, summary)

    def _summary(self, step: int, summary: Any) -> None:
        from tensorboard.compat.proto import event_pb2

        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def _write(self, event: Any) -> None:
        self._records.write(event.SerializeToString())

    def close(self) -> None:
        if self._records is not None:
            self._records.flush()
            self._records.close()
            self._records = None
            self._file = None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _warn_once(log_dir: Path) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning("the tensorboard package is not installed; no TensorBoard logs (first: %s)",
                    log_dir)
