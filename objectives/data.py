"""Datasets for the built-in trainers, loaded offline; nothing here downloads.

Where images come from, first match wins:
1. `path` given by the study: a Keras-style `.npz` (x_train, y_train[, x_test, y_test]) or a
   folder of IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]); for
   segmentation a CamVid folder in the SegNet layout (train/, trainannot/, val/, valannot/).
   A path that does not hold such data is an error, never a silent fallback.
2. The Keras cache ($KERAS_HOME or ~/.keras, then datasets/): mnist.npz, fashion-mnist/,
   camvid/.
3. scikit-learn's digits (1,797 8x8 images), resized; logged as a fallback. For segmentation
   each pixel is labelled background (0) or 1 + the digit's class where the digit is drawn.

Shapes: images (n, h, w, c) float32 in [0, 1]; labels (n,) int64; masks (n, h, w) int64.
Only the training part of a dataset is used; `split` draws the validation part from it with
a seeded permutation, so a seed fixes the split.
"""

from __future__ import annotations

import gzip
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

ImageDataset = Literal["mnist", "fashion_mnist"]
DIGIT_THRESHOLD = 0.5
CAMVID_CLASSES = 12
CAMVID_VOID = 11


@dataclass(frozen=True)
class Images:
    """Labelled images; for segmentation `y` is a mask per image."""

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    source: str
    ignore_class: int | None = None


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    source: str
    ignore_class: int | None = None


def keras_cache() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def load_images(name: ImageDataset, *, path: str | None, size: int) -> Images:
    """`name`'s training images resized to size x size (see the module docstring)."""
    return _load_images(name, path, size)


def load_segmentation(*, path: str | None, size: int) -> Images:
    """CamVid (or digit masks) resized to size x size; `y` holds (n, h, w) class masks."""
    return _load_segmentation(path, size)


def split(
    data: Images, *, seed: int, validation_fraction: float, train_size: int | None = None
) -> Split:
    """Seeded train/validation split; `train_size` caps the training part only."""
    n = len(data.x)
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * validation_fraction))
    val, train = order[:n_val], order[n_val:]
    if train_size is not None:
        train = train[:train_size]
    return Split(
        x_train=data.x[train], y_train=data.y[train], x_val=data.x[val], y_val=data.y[val],
        num_classes=data.num_classes, source=data.source, ignore_class=data.ignore_class,
    )


@lru_cache(maxsize=4)
def _load_images(name: ImageDataset, path: str | None, size: int) -> Images:
    if path is not None:
        x, y = _read_arrays(Path(path).expanduser())
        return _freeze(Images(_resize(x, size), y, 10, f"{name} from {path}"))
    cached = keras_cache() / ("mnist.npz" if name == "mnist" else "fashion-mnist")
    if cached.exists() and (cached.is_file() or any(cached.iterdir())):
        x, y = _read_arrays(cached)
        return _freeze(Images(_resize(x, size), y, 10, f"{name} from {cached}"))
    log.warning("no %s at %s; falling back to scikit-learn digits resized to %dx%d",
                name, cached, size, size)
    x, y = _digits(size)
    return _freeze(Images(x, y, 10, f"scikit-learn digits {size}x{size} (fallback for {name})"))


@lru_cache(maxsize=2)
def _load_segmentation(path: str | None, size: int) -> Images:
    folder = Path(path).expanduser() if path is not None else keras_cache() / "camvid"
    if path is not None or (folder / "train").is_dir():
        x, masks = _read_camvid(folder, size)
        return _freeze(Images(x, masks, CAMVID_CLASSES, f"CamVid from {folder}", CAMVID_VOID))
    log.warning("no CamVid at %s; falling back to digit masks (scikit-learn digits %dx%d)",
                folder, size, size)
    x, digit = _digits(size)
    masks = np.where(x[..., 0] > DIGIT_THRESHOLD, digit[:, None, None] + 1, 0).astype(np.int64)
    return _freeze(Images(x, masks, 11, f"scikit-learn digit masks {size}x{size} (fallback)"))


def _freeze(data: Images) -> Images:
    data.x.setflags(write=False)
    data.y.setflags(write=False)
    return data


def _digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = _resize(digits.images.astype(np.float32) / 16.0, size)
    return x, digits.target.astype(np.int64)


def _read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Training images and labels from an .npz file or a folder of IDX files."""
    if path.is_file():
        with np.load(path) as f:
            if "x_train" not in f or "y_train" not in f:
                raise ValueError(f"{path} has no x_train/y_train arrays (keys: {list(f)})")
            return f["x_train"], f["y_train"].astype(np.int64)
    if path.is_dir():
        return _read_idx(path, "train-images-idx3-ubyte"), _read_idx(
            path, "train-labels-idx1-ubyte"
        ).astype(np.int64)
    raise FileNotFoundError(f"dataset path {path} does not exist")


def _read_idx(folder: Path, stem: str) -> np.ndarray:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            opener = gzip.open if candidate.suffix == ".gz" else open
            with opener(candidate, "rb") as f:
                raw = f.read()
            ndim = raw[3]
            shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
    raise FileNotFoundError(f"{folder} has no {stem}[.gz]")


def _resize(images: np.ndarray, size: int) -> np.ndarray:
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


def _read_camvid(folder: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    images, masks = [], []
    for part in ("train", "val"):
        for img_path in sorted((folder / part).glob("*.png")):
            ann = folder / f"{part}annot" / img_path.name
            if not ann.exists():
                raise FileNotFoundError(f"CamVid label {ann} missing for {img_path}")
            with Image.open(img_path) as img:
                rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            with Image.open(ann) as lab:
                mask = lab.resize((size, size), Image.Resampling.NEAREST)
            images.append(np.asarray(rgb, dtype=np.float32) / 255.0)
            masks.append(np.minimum(np.asarray(mask, dtype=np.int64), CAMVID_VOID))
    if not images:
        raise FileNotFoundError(f"no CamVid images under {folder}/train or {folder}/val")
    return np.stack(images), np.stack(masks)
