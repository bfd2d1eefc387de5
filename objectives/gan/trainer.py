"""Keras code of the GAN objective (imports TensorFlow); see objectives.gan.

The loop follows the source: `train_on_batch` on the discriminator, then on the stacked
generator + frozen discriminator. Freezing toggles `discriminator.trainable` before each
call, which every Keras backend honours. Images are scaled to [-1, 1] for training.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from objectives.base import TrialContext
from objectives.common import TrialMonitor, batch_size, check_finite, merge_params, trial_data
from objectives.data import load_images
from objectives.gan import DEFAULTS, GANArgs
from objectives.gan.classifier import cache_dir, feature_extractor
from objectives.gan.frechet import frechet_distance
from objectives.images import save_grid
from objectives.keras_support import mean_binary_crossentropy, optimizer, setup
from objectives.summaries import SummaryWriter

SAMPLES = 25
METRIC = "val_frechet_distance"


def build(p: dict[str, Any], shape: tuple[int, ...]) -> tuple[Any, Any, Any]:
    """(generator, discriminator, stacked model); both trainable models are compiled."""
    pixels = int(np.prod(shape))
    slope, drop = float(p["leaky_slope"]), float(p["dropout"])
    init = keras.initializers.RandomNormal(stddev=0.02)
    generator = keras.Sequential(name="generator")
    generator.add(keras.Input((int(p["noise_dim"]),)))
    for units in (256, 512, 1024):
        generator.add(layers.Dense(units, kernel_initializer=init))
        generator.add(layers.LeakyReLU(negative_slope=slope))
    generator.add(layers.Dense(pixels, activation="tanh", dtype="float32"))
    generator.add(layers.Reshape(shape, dtype="float32"))

    discriminator = keras.Sequential(name="discriminator")
    discriminator.add(keras.Input(shape))
    discriminator.add(layers.Flatten())
    for units in (1024, 512, 256):
        discriminator.add(layers.Dense(units, kernel_initializer=init))
        discriminator.add(layers.LeakyReLU(negative_slope=slope))
        discriminator.add(layers.Dropout(drop))
    discriminator.add(layers.Dense(1, activation="sigmoid", dtype="float32"))
    extra = {"beta_1": float(p["beta_1"])} if p["optimizer"] == "adam" else {}
    discriminator.compile(
        optimizer=optimizer(p["optimizer"], float(p["discriminator_lr"]), **extra),
        loss=mean_binary_crossentropy,
    )
    discriminator.trainable = False
    stacked = keras.Sequential([generator, discriminator], name="gan")
    stacked.compile(
        optimizer=optimizer(p["optimizer"], float(p["generator_lr"]), **extra),
        loss=mean_binary_crossentropy,
    )
    return generator, discriminator, stacked


def to_unit(images: Any) -> np.ndarray:
    """Generator output in [-1, 1] -> [0, 1]."""
    return (np.asarray(ops.convert_to_numpy(images), dtype=np.float32) + 1.0) / 2.0


def train(params: dict[str, Any], args: GANArgs, ctx: TrialContext) -> float:
    """Trains `args.epochs` epochs; returns the last epoch's Frechet distance."""
    p = merge_params(DEFAULTS, params)
    setup(ctx, args)
    images = load_images(args.dataset, args.data, size=args.image_size)
    features = feature_extractor(images, cache_dir(args.cache_dir), epochs=args.classifier_epochs)
    keras.utils.set_random_seed(ctx.seed)
    data = trial_data(images, args, ctx)
    rng = np.random.default_rng(ctx.seed)
    n_fd = min(args.frechet_samples, len(data.x_val))
    real_features = ops.convert_to_numpy(features.predict(data.x_val[:n_fd], verbose=0))
    fixed_noise = rng.standard_normal((max(n_fd, SAMPLES), int(p["noise_dim"]))).astype("float32")
    generator, discriminator, stacked = build(p, data.x_train.shape[1:])
    x_train = data.x_train * 2.0 - 1.0
    size = min(batch_size(p, args), len(x_train))
    monitor = TrialMonitor(ctx, metric=METRIC, time_limit=args.time_limit)
    try:
        with SummaryWriter(ctx.artifact_dir / "tensorboard") as writer:
            for epoch in range(1, args.epochs + 1):
                monitor.begin_epoch()
                d_loss, g_loss = run_epoch(
                    generator, discriminator, stacked, x_train, size, rng, epoch, monitor
                )
                fake = to_unit(generator.predict(fixed_noise[:n_fd], verbose=0, batch_size=256))
                fake_features = ops.convert_to_numpy(features.predict(fake, verbose=0))
                logs = {"d_loss": d_loss, "g_loss": g_loss,
                        METRIC: frechet_distance(real_features, fake_features)}
                stop = monitor.end_epoch(epoch, logs)
                writer.scalars(epoch, logs)
                if args.images and (epoch % args.samples_every == 0 or stop):
                    save_grid(ctx.artifact_dir / f"samples_epoch_{epoch:03d}.png",
                              fake[:SAMPLES], cols=5)
                    writer.images("samples", epoch, fake[:SAMPLES])
                if stop:
                    break
    finally:
        monitor.save({"loss": ["d_loss", "g_loss"], "frechet_distance": [METRIC]},
                     images=args.images)
    return monitor.result()


def run_epoch(
    generator: Any, discriminator: Any, stacked: Any, x_train: np.ndarray, size: int,
    rng: np.random.Generator, epoch: int, monitor: TrialMonitor,
) -> tuple[float, float]:
    """One pass over the shuffled training images; returns mean (d_loss, g_loss).

    Stops early (after a whole batch) when the time limit has passed.
    """
    order = rng.permutation(len(x_train))
    noise_dim = generator.input_shape[-1]
    labels = np.concatenate([np.ones((size, 1)), np.zeros((size, 1))]).astype("float32")
    ones = np.ones((size, 1), dtype="float32")
    d_losses, g_losses = [], []
    for b, start in enumerate(range(0, len(order) - size + 1, size)):
        real = x_train[order[start:start + size]]
        noise = rng.standard_normal((size, noise_dim)).astype("float32")
        fake = generator.predict_on_batch(noise)
        discriminator.trainable = True
        d_loss = float(np.mean(discriminator.train_on_batch(np.concatenate([real, fake]), labels)))
        discriminator.trainable = False
        noise = rng.standard_normal((size, noise_dim)).astype("float32")
        g_loss = float(np.mean(stacked.train_on_batch(noise, ones)))
        check_finite(f"epoch {epoch} batch {b + 1}", {"d_loss": d_loss, "g_loss": g_loss})
        d_losses.append(d_loss)
        g_losses.append(g_loss)
        if monitor.out_of_time():
            break
    return float(np.mean(d_losses)), float(np.mean(g_losses))
