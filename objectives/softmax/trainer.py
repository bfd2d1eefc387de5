"""Keras code of the softmax objective (imports TensorFlow); see objectives.softmax."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from objectives.base import TrialContext
from objectives.common import TrialMonitor, batch_size, merge_params, trial_data
from objectives.data import load_images
from objectives.images import save_grid
from objectives.keras_support import EpochCallback, optimizer, setup
from objectives.softmax import DEFAULTS, SoftmaxArgs
from objectives.summaries import SummaryWriter

EPS = 1e-10
CLASSES = 10
SIZE = 28


def cross_entropy(*, clip: bool) -> Any:
    """-sum(y log p) over classes with integer labels; `clip` bounds p to [EPS, 1] first."""

    def loss(y_true: Any, y_pred: Any) -> Any:
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), CLASSES)
        probs = ops.cast(y_pred, "float32")
        if clip:
            probs = ops.clip(probs, EPS, 1.0)
        return -ops.sum(labels * ops.log(probs), axis=-1)

    return loss


def build(params: dict[str, Any], *, clip: bool) -> keras.Model:
    inputs = keras.Input((SIZE * SIZE,))
    logits = keras.layers.Dense(CLASSES, name="logits")(inputs)
    outputs = keras.layers.Activation("softmax", dtype="float32")(logits)
    model = keras.Model(inputs, outputs, name="softmax_regression")
    model.compile(
        optimizer=optimizer(params["optimizer"], float(params["learning_rate"])),
        loss=cross_entropy(clip=clip),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def train(params: dict[str, Any], args: SoftmaxArgs, ctx: TrialContext) -> float:
    """Trains `args.epochs` epochs; returns the validation accuracy of the last epoch."""
    p = merge_params(DEFAULTS, params)
    setup(ctx, args)
    data = trial_data(load_images(args.dataset, args.data, size=SIZE), args, ctx)
    flat = (data.x_train.reshape(len(data.x_train), -1), data.x_val.reshape(len(data.x_val), -1))
    model = build(p, clip=args.clip_probabilities)
    monitor = TrialMonitor(ctx, metric="val_accuracy", time_limit=args.time_limit)
    try:
        with SummaryWriter(ctx.artifact_dir / "tensorboard") as writer:
            model.fit(
                flat[0], data.y_train,
                validation_data=(flat[1], data.y_val),
                batch_size=batch_size(p, args),
                epochs=args.epochs,
                shuffle=True,
                verbose=0,
                callbacks=[EpochCallback(monitor, writer)],
            )
    finally:
        monitor.save(
            {"loss": ["loss", "val_loss"], "accuracy": ["accuracy", "val_accuracy"]},
            images=args.images,
        )
    if args.images:
        weights = np.asarray(model.get_layer("logits").kernel).T.reshape(CLASSES, SIZE, SIZE)
        span = np.abs(weights).max() or 1.0
        save_grid(ctx.artifact_dir / "weights.png", 0.5 + 0.5 * weights / span, cols=5, scale=4)
    return monitor.result()
