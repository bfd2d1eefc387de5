"""Keras code of the FC-DenseNet objective (imports Keras); see objectives.densenet."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers

from objectives.base import TrialContext
from objectives.common import TrialMonitor, merge_params, trial_data
from objectives.data import load_segmentation
from objectives.densenet import DEFAULTS, DenseNetArgs
from objectives.densenet.architecture import Architecture, fixed_params, resolve
from objectives.densenet.segmentation import (
    Crops,
    crops_frames,
    crossentropy,
    mean_iou,
    pad_to_multiple,
    pixel_accuracy,
)
from objectives.images import overlay, save_grid
from objectives.keras_support import EpochCallback, HeUniform, setup
from objectives.summaries import SummaryWriter

OVERLAYS = 8


class _Blocks:
    """Layer factories sharing the trial's growth rate, dropout and L2 regularizer."""

    def __init__(self, growth: int, dropout: float, l2: float, seed: int) -> None:
        self.growth = growth
        self.dropout = dropout
        self.reg = keras.regularizers.L2(l2)
        self.init = HeUniform(seed)

    def conv(self, x: Any, filters: int, size: int, strides: int = 1) -> Any:
        return layers.Conv2D(filters, size, strides=strides, padding="same",
                             kernel_initializer=self.init, kernel_regularizer=self.reg)(x)

    def dense_block(self, x: Any, n_layers: int) -> tuple[Any, Any]:
        """Returns (input + new maps, new maps only)."""
        new = []
        for _ in range(n_layers):
            h = layers.ReLU()(layers.BatchNormalization()(x))
            h = layers.Dropout(self.dropout)(self.conv(h, self.growth, 3))
            new.append(h)
            x = layers.Concatenate()([x, h])
        return x, (layers.Concatenate()(new) if len(new) > 1 else new[0])

    def transition_down(self, x: Any) -> Any:
        h = layers.ReLU()(layers.BatchNormalization()(x))
        return layers.Dropout(self.dropout)(self.conv(h, int(x.shape[-1]), 1, strides=2))

    def transition_up(self, new: Any, skip: Any) -> Any:
        up = layers.Conv2DTranspose(int(new.shape[-1]), 3, strides=2, padding="same",
                                    kernel_initializer=self.init,
                                    kernel_regularizer=self.reg)(new)
        return layers.Concatenate()([up, skip])


def build(arch: Architecture, p: dict[str, Any], channels: int, classes: int, *,
          seed: int) -> keras.Model:
    """The model for frames of any size divisible by 2**len(arch.blocks); `seed` fixes the
    initial weights."""
    blocks = _Blocks(arch.growth_rate, float(p["dropout"]), float(p["l2_scale"]), seed)
    inputs = keras.Input((None, None, channels))
    x = blocks.conv(inputs, arch.first_filters, 3)
    skips = []
    for n_layers in arch.blocks:
        x, _new = blocks.dense_block(x, n_layers)
        skips.append(x)
        x = blocks.transition_down(x)
    _x, new = blocks.dense_block(x, arch.bottleneck)
    for i, (skip, n_layers) in enumerate(zip(reversed(skips), reversed(arch.blocks),
                                             strict=True)):
        x, new = blocks.dense_block(blocks.transition_up(new, skip), n_layers)
        if i == len(skips) - 1:
            new = x
    logits = layers.Conv2D(classes, 1, kernel_initializer=blocks.init,
                           kernel_regularizer=blocks.reg)(new)
    outputs = layers.Activation("softmax", dtype="float32")(logits)
    return keras.Model(inputs, outputs, name="fc_densenet")


def compile_model(model: keras.Model, p: dict[str, Any], classes: int,
                  ignore: int | None) -> None:
    schedule = keras.optimizers.schedules.InverseTimeDecay(
        float(p["learning_rate"]), decay_steps=1, decay_rate=float(p["rmsprop_decay"])
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=schedule),
        loss=crossentropy(classes, ignore),
        metrics=[mean_iou(classes, ignore), pixel_accuracy(ignore)],
    )


def train(params: dict[str, Any], args: DenseNetArgs, ctx: TrialContext) -> float:
    """Trains `args.epochs` epochs; returns the last validation mean IoU."""
    p = merge_params(DEFAULTS, params, unused=fixed_params(args),
                     because="with these objective_args (a preset or layers_per_block fixes "
                     "them)")
    arch = resolve(args, p)
    setup(ctx, args)
    data = trial_data(load_segmentation(args.dataset, args.data, size=args.image_size),
                      args, ctx)
    model = build(arch, p, data.x_train.shape[-1], data.num_classes, seed=ctx.seed)
    compile_model(model, p, data.num_classes, data.ignore_class)
    size = args.batch_size if args.max_batch_size is None else min(args.batch_size,
                                                                   args.max_batch_size)
    multiple = 2 ** len(arch.blocks)
    x_train, y_train = data.x_train, data.y_train
    if not crops_frames(x_train.shape[1:3], args.crop_size):
        x_train, y_train = pad_to_multiple(x_train, y_train, multiple, data.ignore_class)
    batches = Crops(x_train, y_train, batch_size=size, crop=args.crop_size, flip=args.flip,
                    seed=ctx.seed)
    x_val, y_val = pad_to_multiple(data.x_val, data.y_val, multiple, data.ignore_class)
    monitor = TrialMonitor(ctx, metric="val_mean_iou", time_limit=args.time_limit)
    try:
        with SummaryWriter(ctx.artifact_dir / "tensorboard") as writer:
            model.fit(
                batches,
                validation_data=(x_val, y_val.astype(np.int32)),
                validation_batch_size=size,
                epochs=args.epochs,
                verbose=0,
                callbacks=[EpochCallback(monitor, writer)],
            )
            if args.images and monitor.history:
                grid = overlays(model, data.x_val[:OVERLAYS], data.y_val[:OVERLAYS],
                                data.num_classes, multiple, data.ignore_class)
                save_grid(ctx.artifact_dir / "segmentation.png", grid, cols=OVERLAYS)
                writer.images("segmentation", len(monitor.history), grid, max_outputs=len(grid))
    finally:
        monitor.save(
            {"loss": ["loss", "val_loss"], "mean_iou": ["mean_iou", "val_mean_iou"]},
            images=args.images,
        )
    return monitor.result()


def overlays(model: keras.Model, x: np.ndarray, y: np.ndarray, classes: int, multiple: int,
             ignore: int | None) -> np.ndarray:
    """Rows: the images, the true labels over them, the predicted labels over them."""
    padded, _ = pad_to_multiple(x, y, multiple, ignore)
    probs = model.predict(padded, verbose=0)
    predicted = np.argmax(probs[:, : x.shape[1], : x.shape[2]], axis=-1)
    truth = np.where(y == ignore, 0, y) if ignore is not None else y
    return np.concatenate([
        np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x,
        overlay(x, truth, classes),
        overlay(x, predicted, classes),
    ])
