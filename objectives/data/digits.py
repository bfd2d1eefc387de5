"""scikit-learn's digits (1,797 8x8 images, shipped with scikit-learn): the bundled dataset.

`digits(size)` gives the images resized to size x size with their class (0-9).
`digit_masks(size)` gives the same images with a per-pixel mask for segmentation: a pixel
brighter than `DIGIT_THRESHOLD` is labelled 1 + the digit's class, every other pixel is
background (0); 11 classes, no void.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from objectives.data.arrays import freeze, resize

DIGIT_THRESHOLD = 0.5
MASK_CLASSES = 11
LOCATION = "sklearn.datasets.load_digits"


@lru_cache(maxsize=4)
def digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, size, size, 1) float32, labels (n,) int64), read-only."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = resize(bunch.images.astype(np.float32) / 16.0, size)
    y = bunch.target.astype(np.int64)
    freeze(x, y)
    return x, y


@lru_cache(maxsize=4)
def digit_masks(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, size, size, 1) float32, masks (n, size, size) uint8), read-only."""
    x, label = digits(size)
    masks = np.where(x[..., 0] > DIGIT_THRESHOLD, label[:, None, None] + 1, 0).astype(np.uint8)
    freeze(masks)
    return x, masks
