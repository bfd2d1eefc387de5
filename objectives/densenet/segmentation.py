"""Segmentation pieces of the FC-DenseNet trainer, in `keras.ops` so every backend runs them.

Shapes: frames (n, h, w, c) float32 in [0, 1]; masks (n, h, w) of class indices, where
`ignore_class` (CamVid's void, 11) marks unlabelled pixels; predictions (n, h, w, classes)
probabilities.

- `crossentropy`: per image, the mean over labelled pixels of -log p(true class), with p
  clipped to [1e-7, 1] (a NaN prediction stays a NaN loss). Written with one-hot products
  rather than the backend's fused sparse kernel, whose torch gradient fails on the
  permuted (non-contiguous) input Keras gives it ("grad_input must be contiguous").
- `pixel_accuracy`: per image, the share of labelled pixels predicted right.
- `mean_iou`: intersection over union per class from the confusion matrix of all labelled
  pixels seen in an epoch, averaged over the classes that occur in the truth or the
  prediction; ignored pixels count nowhere.
- `Crops`: training batches of random crops and horizontal flips; `crops_frames` tells
  whether frames of a size get cropped.
- `pad_to_multiple`: full frames padded (bottom, right) so the down path divides them.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

EPS = 1e-7


def _labels_and_weights(y_true: Any, y_pred: Any, ignore_class: int | None) -> tuple[Any, Any]:
    labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(y_pred)[:-1])
    if ignore_class is None:
        return labels, ops.ones_like(labels, dtype="float32")
    valid = ops.not_equal(labels, ignore_class)
    return ops.where(valid, labels, 0), ops.cast(valid, "float32")


def crossentropy(num_classes: int, ignore_class: int | None) -> Any:
    def loss(y_true: Any, y_pred: Any) -> Any:
        labels, weights = _labels_and_weights(y_true, y_pred, ignore_class)
        log_p = ops.log(ops.clip(ops.cast(y_pred, "float32"), EPS, 1.0))
        per_pixel = -ops.sum(ops.one_hot(labels, num_classes) * log_p, axis=-1) * weights
        return ops.sum(per_pixel, axis=(1, 2)) / ops.maximum(ops.sum(weights, axis=(1, 2)), 1.0)

    return loss


def pixel_accuracy(ignore_class: int | None) -> keras.metrics.Metric:
    def accuracy(y_true: Any, y_pred: Any) -> Any:
        labels, weights = _labels_and_weights(y_true, y_pred, ignore_class)
        hits = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), labels),
                        "float32") * weights
        return ops.sum(hits, axis=(1, 2)) / ops.maximum(ops.sum(weights, axis=(1, 2)), 1.0)

    return keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")


def mean_iou(num_classes: int, ignore_class: int | None) -> keras.metrics.Metric:
    return keras.metrics.MeanIoU(num_classes=num_classes, sparse_y_pred=False,
                                 ignore_class=ignore_class, name="mean_iou")


class Crops(keras.utils.PyDataset):
    """Shuffled batches; frames larger than `crop` on both sides are cut to a random
    crop x crop window each, other frames are used whole; with `flip` each frame is
    mirrored left-right with probability 1/2. One seeded generator drives order, crops and
    flips, so a seed replays the same batches."""

    def __init__(self, x: np.ndarray, y: np.ndarray, *, batch_size: int, crop: int,
                 flip: bool, seed: int) -> None:
        super().__init__()
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.crop = crop if crops_frames(x.shape[1:3], crop) else None
        self.flip = flip
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        frames, masks = self.x[rows], self.y[rows]
        if self.crop is not None:
            frames, masks = self._cut(frames, masks, self.crop)
        else:
            frames, masks = frames.copy(), masks.copy()
        if self.flip:
            mirror = self.rng.random(len(rows)) < 0.5
            frames[mirror] = frames[mirror, :, ::-1]
            masks[mirror] = masks[mirror, :, ::-1]
        return frames, masks.astype(np.int32)

    def _cut(self, frames: np.ndarray, masks: np.ndarray,
             crop: int) -> tuple[np.ndarray, np.ndarray]:
        height, width = frames.shape[1:3]
        tops = self.rng.integers(0, height - crop + 1, size=len(frames))
        lefts = self.rng.integers(0, width - crop + 1, size=len(frames))
        cut_x = np.stack([f[t:t + crop, s:s + crop] for f, t, s in zip(frames, tops, lefts,
                                                                        strict=True)])
        cut_y = np.stack([m[t:t + crop, s:s + crop] for m, t, s in zip(masks, tops, lefts,
                                                                       strict=True)])
        return cut_x, cut_y

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.x))


def crops_frames(frame: tuple[int, ...], crop: int) -> bool:
    """Whether `Crops` cuts frames of `frame` = (height, width) to `crop`."""
    return frame[0] > crop and frame[1] > crop


def pad_to_multiple(
    x: np.ndarray, y: np.ndarray, multiple: int, ignore_class: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Pads frames with 0 and masks with `ignore_class` to sides divisible by `multiple`.

    Raises ValueError when padding is needed and there is no class to ignore.
    """
    height, width = x.shape[1:3]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return x, y
    if ignore_class is None:
        raise ValueError(f"frames of {height}x{width} are not divisible by {multiple} and "
                         f"there is no void class to pad the labels with")
    frames = np.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    masks = np.pad(y, ((0, 0), (0, pad_h), (0, pad_w)), constant_values=ignore_class)
    return frames, masks
