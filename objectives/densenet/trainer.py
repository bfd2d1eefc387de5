"""Keras code of the FC-DenseNet objective (imports TensorFlow); see objectives.densenet."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from objectives.base import TrialContext
from objectives.common import TrialMonitor, merge_params, trial_split
from objectives.data import load_segmentation
from objectives.densenet import DEFAULTS, DenseNetArgs
from objectives.images import overlay, save_grid
from objectives.keras_support import EpochCallback, SummaryWriter, setup

OVERLAYS = 8


class _Blocks:
    """Layer factories sharing the trial's growth rate, dropout and L2 regularizer."""

    def __init__(self, p: dict[str, Any]) -> None:
        self.growth = int(p["growth_rate"])
        self.layers = int(p["layers_per_block"])
        self.dropout = float(p["dropout"])
        self.reg = keras.regularizers.L2(float(p["l2_scale"]))

    def conv(self, x: Any, filters: int, size: int, strides: int = 1) -> Any:
        return layers.Conv2D(filters, size, strides=strides, padding="same",
                             kernel_initializer="he_uniform", kernel_regularizer=self.reg)(x)

    def dense_block(self, x: Any) -> tuple[Any, Any]:
        """Returns (input + new maps, new maps only)."""
        new = []
        for _ in range(self.layers):
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
                                    kernel_initializer="he_uniform",
                                    kernel_regularizer=self.reg)(new)
        return layers.Concatenate()([up, skip])


def build(p: dict[str, Any], args: DenseNetArgs, shape: tuple[int, ...], classes: int) -> Any:
    blocks = _Blocks(p)
    inputs = keras.Input(shape)
    x = blocks.conv(inputs, args.first_filters, 3)
    skips = []
    for _ in range(args.down_blocks):
        x, _new = blocks.dense_block(x)
        skips.append(x)
        x = blocks.transition_down(x)
    _x, new = blocks.dense_block(x)
    for i, skip in enumerate(reversed(skips)):
        x, new = blocks.dense_block(blocks.transition_up(new, skip))
        if i == len(skips) - 1:
            new = x
    logits = layers.Conv2D(classes, 1, kernel_initializer="he_uniform",
                           kernel_regularizer=blocks.reg)(new)
    outputs = layers.Activation("softmax", dtype="float32")(logits)
    return keras.Model(inputs, outputs, name="fc_densenet")


def compile_model(model: Any, p: dict[str, Any], classes: int, ignore: int | None) -> None:
    schedule = keras.optimizers.schedules.InverseTimeDecay(
        float(p["learning_rate"]), decay_steps=1, decay_rate=float(p["rmsprop_decay"])
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=ignore),
        metrics=[
            keras.metrics.MeanIoU(num_classes=classes, sparse_y_pred=False,
                                  ignore_class=ignore, name="mean_iou"),
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        ],
    )


def train(params: dict[str, Any], args: DenseNetArgs, ctx: TrialContext) -> float:
    """Trains `args.epochs` epochs; returns the last validation mean IoU."""
    p = merge_params(DEFAULTS, params)
    setup(ctx, args)
    data = trial_split(load_segmentation(path=args.data_path, size=args.image_size), args, ctx)
    model = build(p, args, data.x_train.shape[1:], data.num_classes)
    compile_model(model, p, data.num_classes, data.ignore_class)
    monitor = TrialMonitor(ctx, metric="val_mean_iou", time_limit=args.time_limit)
    size = args.batch_size if args.max_batch_size is None else min(args.batch_size,
                                                                   args.max_batch_size)
    try:
        with SummaryWriter(ctx.artifact_dir / "tensorboard") as writer:
            model.fit(
                data.x_train, data.y_train,
                validation_data=(data.x_val, data.y_val),
                batch_size=size,
                epochs=args.epochs,
                shuffle=True,
                verbose=0,
                callbacks=[EpochCallback(monitor, writer)],
            )
            if args.images and monitor.history:
                grid = overlays(model, data.x_val[:OVERLAYS], data.y_val[:OVERLAYS],
                                data.num_classes)
                save_grid(ctx.artifact_dir / "segmentation.png", grid, cols=OVERLAYS)
                writer.images("segmentation", len(monitor.history), grid, max_outputs=len(grid))
    finally:
        monitor.save(
            {"loss": ["loss", "val_loss"], "mean_iou": ["mean_iou", "val_mean_iou"]},
            images=args.images,
        )
    return monitor.result()


def overlays(model: Any, x: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    """Rows: the images, the true labels over them, the predicted labels over them."""
    predicted = np.argmax(ops.convert_to_numpy(model(x, training=False)), axis=-1)
    return np.concatenate([
        np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x,
        overlay(x, y, classes),
        overlay(x, predicted, classes),
    ])
