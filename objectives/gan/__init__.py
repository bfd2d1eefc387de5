"""Dense GAN on Fashion-MNIST (the sources' Keras GAN).

Generator: noise -> Dense 256 -> Dense 512 -> Dense 1024 (LeakyReLU each, RandomNormal(0.02)
initializer) -> Dense(pixels, tanh). Discriminator: Dense 1024 -> 512 -> 256 (LeakyReLU and
Dropout each) -> Dense(1, sigmoid). Per batch: the discriminator learns real (1) against
generated (0) images, then the generator learns through the frozen discriminator (label 1).
Metric: Frechet distance between held-out real and generated images in the feature space
of a small classifier trained once per dataset and cached on disk (minimize).

Both networks use the trial's `optimizer`: Adam (the sources' choice) with its `beta_1`, or
RMSprop, which has no beta_1: the space conditions `beta_1` on `optimizer: adam`, so an
RMSprop trial neither gets nor searches it.
"""

from __future__ import annotations

from pydantic import Field

from objectives.base import Objective
from objectives.common import TrainerArgs
from objectives.data import ImageDataset

DEFAULTS = {
    "optimizer": "adam",
    "generator_lr": 2e-4,
    "discriminator_lr": 2e-4,
    "beta_1": 0.5,
    "noise_dim": 100,
    "leaky_slope": 0.2,
    "dropout": 0.3,
    "batch_size": 128,
}


class GANArgs(TrainerArgs):
    dataset: ImageDataset = Field(
        default="fashion_mnist",
        description="fashion_mnist | mnist | digits (bundled, 8x8 resized).",
    )
    image_size: int = Field(default=28, ge=8, le=128)
    epochs: int = Field(default=20, ge=1, le=10_000)
    frechet_samples: int = Field(
        default=1000, ge=16, le=20_000,
        description="Held-out and generated images compared per epoch (capped by the split).",
    )
    samples_every: int = Field(default=1, ge=1, description="Write a sample grid every N epochs.")
    classifier_epochs: int = Field(default=5, ge=1, le=100)
    cache_dir: str | None = Field(
        default=None,
        description="Where the feature classifier is cached; default $TUNESMITH_CACHE_DIR "
        "or ~/.cache/tunesmith.",
    )


GAN = Objective(
    name="gan",
    description="Dense GAN on Fashion-MNIST; metric: Frechet distance in a cached classifier's "
    "feature space.",
    metric="val_frechet_distance",
    direction="minimize",
    space={
        "generator_lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "discriminator_lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "optimizer": {"type": "categorical", "choices": ["adam", "rmsprop"]},
        "beta_1": {"type": "float", "low": 0.0, "high": 0.9, "condition": {"optimizer": ["adam"]}},
        "noise_dim": {"type": "int", "low": 16, "high": 128},
        "leaky_slope": {"type": "float", "low": 0.01, "high": 0.4},
        "dropout": {"type": "float", "low": 0.0, "high": 0.6},
        "batch_size": {"type": "int", "low": 32, "high": 256, "log": True},
    },
    defaults=DEFAULTS,
    train="objectives.gan.trainer:train",
    args_model=GANArgs,
)
