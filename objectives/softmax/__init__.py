"""Softmax regression on MNIST (the source documents' multinomial logistic regression).

Dense(10, softmax) on 784 pixels, trained with a cross-entropy that clips probabilities to
[1e-10, 1] before the log, as the source recommends after a run collapsed on log(0).
Metric: validation accuracy (maximize). The cheapest real objective: an epoch over the
offline digits takes a few hundredths of a second.
"""

from __future__ import annotations

from pydantic import Field

from objectives.base import Objective
from objectives.common import TrainerArgs
from objectives.data import ImageDataset

DEFAULTS = {"learning_rate": 0.1, "batch_size": 100, "optimizer": "sgd"}


class SoftmaxArgs(TrainerArgs):
    dataset: ImageDataset = Field(
        default="mnist", description="mnist | fashion_mnist | digits (bundled, 8x8 resized)."
    )
    epochs: int = Field(default=10, ge=1, le=10_000)
    clip_probabilities: bool = Field(
        default=True,
        description="Clip probabilities to [1e-10, 1] before the log; off lets log(0) diverge.",
    )


SOFTMAX = Objective(
    name="softmax",
    description="Softmax regression (Dense 10) on MNIST (or Fashion-MNIST, or the bundled "
    "digits).",
    metric="val_accuracy",
    direction="maximize",
    space={
        "learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        "batch_size": {"type": "int", "low": 16, "high": 512, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "rmsprop"]},
    },
    defaults=DEFAULTS,
    train="objectives.softmax.trainer:train",
    args_model=SoftmaxArgs,
)
