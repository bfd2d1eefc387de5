"""Loaded datasets as arrays, their seeded train/validation split, and array file readers.

Shapes: images (n, h, w, c) float32 in [0, 1]; class labels (n,) int64; segmentation masks
(n, h, w) uint8 holding class indices (and `ignore_class` for unlabelled pixels).

Split rule: a dataset that comes with its own validation part (CamVid's val/) keeps it,
and `validation_fraction` is not used; otherwise the validation part is drawn from the
training part with a permutation seeded by `seed`, so a seed fixes the split. `train_size`
caps the training part only (the first `train_size` of a seeded permutation).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from objectives.data.record import DatasetRecord


@dataclass(frozen=True)
class Images:
    """A loaded dataset; for segmentation `y` holds a mask per image."""

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    record: DatasetRecord
    ignore_class: int | None = None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    record: DatasetRecord
    ignore_class: int | None = None


def split(
    data: Images, *, seed: int, validation_fraction: float, train_size: int | None = None
) -> Split:
    """The trial's parts (see the module's split rule); the record gets the parts' sizes."""
    order = np.random.default_rng(seed).permutation(len(data.x))
    if data.x_val is not None and data.y_val is not None:
        train, x_val, y_val = order, data.x_val, data.y_val
    else:
        n_val = max(1, round(len(order) * validation_fraction))
        val, train = order[:n_val], order[n_val:]
        x_val, y_val = data.x[val], data.y[val]
    if train_size is not None:
        train = train[:train_size]
    return Split(
        x_train=data.x[train], y_train=data.y[train], x_val=x_val, y_val=y_val,
        num_classes=data.num_classes, ignore_class=data.ignore_class,
        record=data.record.with_sizes(len(train), len(x_val)),
    )


def freeze(*arrays: np.ndarray | None) -> None:
    """Makes loaded arrays read-only: they are shared by every trial of a process."""
    for a in arrays:
        if a is not None:
            a.setflags(write=False)


def read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Training images and labels from a Keras-style .npz file or a folder of IDX files.

    Raises FileNotFoundError for a missing path or file, ValueError for a file without
    the expected arrays.
    """
    if path.is_file():
        with np.load(path, allow_pickle=False) as f:
            if "x_train" not in f or "y_train" not in f:
                raise ValueError(f"{path} has no x_train/y_train arrays (keys: {list(f)})")
            return f["x_train"], f["y_train"].astype(np.int64)
    if path.is_dir():
        return read_idx(path, "train-images-idx3-ubyte"), read_idx(
            path, "train-labels-idx1-ubyte"
        ).astype(np.int64)
    raise FileNotFoundError(f"dataset path {path} does not exist")


def read_idx(folder: Path, stem: str) -> np.ndarray:
    """An IDX array (`stem`.gz or `stem`); raises ValueError when the header and size differ."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            opener = gzip.open if candidate.suffix == ".gz" else open
            with opener(candidate, "rb") as f:
                raw = f.read()
            if len(raw) < 4:
                raise ValueError(f"{candidate} is not an IDX file ({len(raw)} bytes)")
            ndim = raw[3]
            shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
            offset = 4 + 4 * ndim
            if len(raw) - offset != int(np.prod(shape)):
                raise ValueError(f"{candidate}: header says {shape}, body has "
                                 f"{len(raw) - offset} bytes")
            return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)
    raise FileNotFoundError(f"{folder} has no {stem}[.gz]")


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """(n, h, w[, c]) uint8 or float in [0, 1] -> (n, size, size, c) float32 in [0, 1]."""
    arr = np.asarray(images)
    scale = 255.0 if arr.dtype == np.uint8 else 1.0
    arr = arr.astype(np.float32) / scale
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.shape[1:3] == (size, size):
        return np.ascontiguousarray(arr)
    from PIL import Image

    out = np.empty((len(arr), size, size, arr.shape[-1]), dtype=np.float32)
    for i, img in enumerate(arr):
        for c in range(arr.shape[-1]):
            resized = Image.fromarray(np.ascontiguousarray(img[..., c])).resize(
                (size, size), Image.Resampling.BILINEAR
            )
            out[i, ..., c] = np.asarray(resized)
    return np.clip(out, 0.0, 1.0)
