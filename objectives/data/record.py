"""What a trial trained on: the dataset record, and the error raised when real data is missing.

Rules:
- Every load produces one `DatasetRecord`. `source` says where the arrays came from:
  `downloaded` (fetched by this process just now), `cache` (the Keras cache, or this
  process's memory after an earlier load), `path` (the study's `data.path`), `bundled` (the
  study asked for a dataset that ships with a dependency, e.g. `digits`) or `fallback` (the
  real dataset was unavailable; `fallback_for` names it and `reason` says why).
- `sha256` is the SHA-256 of the arrays the trainer was given (shapes, dtypes and bytes of
  images and labels, validation arrays included), so two trials with the same hash trained
  on the same data whatever the source.
- `n_train` and `n_val` are the sizes of the trial's training and validation parts (after
  the split and any `train_size` cap); a loaded dataset before its split gives its own
  sizes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Source = Literal["downloaded", "cache", "path", "bundled", "fallback"]
SOURCES: tuple[Source, ...] = ("downloaded", "cache", "path", "bundled", "fallback")


class DataUnavailable(RuntimeError):
    """The study requires real data (`data.require_real`) and this worker has none.

    The message says what was looked for, where, and how to provide it.
    """


@dataclass(frozen=True)
class DatasetRecord:
    name: str
    source: Source
    location: str
    n_train: int
    n_val: int
    sha256: str
    fallback_for: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r} is not one of {SOURCES}")
        if (self.source == "fallback") != (self.fallback_for is not None):
            raise ValueError("fallback_for is set exactly when source is 'fallback'")

    def with_sizes(self, n_train: int, n_val: int) -> DatasetRecord:
        return dataclasses.replace(self, n_train=int(n_train), n_val=int(n_val))

    def with_source(self, source: Source) -> DatasetRecord:
        return dataclasses.replace(self, source=source)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: str, int and None values only."""
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line for logs and the CLI, e.g. `mnist (cache, 48000 train / 12000 val,
        sha256 1a2b3c4d5e6f)`; a fallback adds what it stands in for and why."""
        line = (
            f"{self.name} ({self.source}, {self.n_train} train / {self.n_val} val, "
            f"sha256 {self.sha256[:12]}) from {self.location}"
        )
        if self.fallback_for is not None:
            line += f"; fallback for {self.fallback_for}: {self.reason}"
        return line


def content_sha256(*arrays: np.ndarray | None) -> str:
    """SHA-256 over each array's dtype, shape and C-order bytes (None counts as absent)."""
    digest = hashlib.sha256()
    for arr in arrays:
        if arr is None:
            digest.update(b"none;")
            continue
        a = np.ascontiguousarray(arr)
        digest.update(f"{a.dtype.str}{a.shape};".encode())
        digest.update(a.data.cast("B"))
    return digest.hexdigest()
