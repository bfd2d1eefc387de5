"""Keras code of the VAE objective (imports TensorFlow); see objectives.vae."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops
from scipy.stats import norm

from objectives.base import TrialContext
from objectives.common import TrialMonitor, batch_size, merge_params, trial_data
from objectives.data import load_images
from objectives.images import save_grid
from objectives.keras_support import EpochCallback, binary_crossentropy, optimizer, setup
from objectives.summaries import SummaryWriter
from objectives.vae import DEFAULTS, VAEArgs, architecture_of, unused_params

GRID = 15


class VariationalAutoencoder(keras.Model):
    """Encoder -> reparameterized sample -> decoder; the loss lives in `compute_loss`.

    `call` returns (reconstruction, z_mean, z_log_var); the tracked metrics are
    neg_elbo, reconstruction and kl, each a mean per image.
    """

    def __init__(
        self, encoder: keras.Model, decoder: keras.Model, *, kl_weight: float, seed: int
    ) -> None:
        super().__init__(name="vae")
        self.encoder = encoder
        self.decoder = decoder
        self.kl_weight = kl_weight
        self.noise = keras.random.SeedGenerator(seed)
        self.neg_elbo = keras.metrics.Mean(name="neg_elbo")
        self.reconstruction = keras.metrics.Mean(name="reconstruction")
        self.kl = keras.metrics.Mean(name="kl")
        self.pixels = int(np.prod(decoder.output_shape[1:]))

    def call(self, x: Any, training: bool = False) -> Any:
        z_mean, z_log_var = self.encoder(x, training=training)
        eps = keras.random.normal(ops.shape(z_mean), seed=self.noise)
        z = z_mean + ops.exp(0.5 * z_log_var) * eps
        return self.decoder(z, training=training), z_mean, z_log_var

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        recon, z_mean, z_log_var = (ops.cast(t, "float32") for t in y_pred)
        target = ops.reshape(ops.cast(x, "float32"), (-1, self.pixels))
        bce = binary_crossentropy(target, ops.reshape(recon, (-1, self.pixels)))
        rec = ops.sum(bce, axis=1)
        kl = -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
        self.neg_elbo.update_state(rec + kl)
        self.reconstruction.update_state(rec)
        self.kl.update_state(kl)
        return ops.mean(rec + self.kl_weight * kl)


def dense_parts(shape: tuple[int, int, int], latent: int, hidden: int) -> tuple[Any, Any]:
    pixels = int(np.prod(shape))
    x_in = keras.Input(shape)
    h = layers.Dense(hidden, activation="relu")(layers.Flatten()(x_in))
    encoder = keras.Model(
        x_in, [layers.Dense(latent, name="z_mean")(h), layers.Dense(latent, name="z_log_var")(h)],
        name="encoder",
    )
    z_in = keras.Input((latent,))
    h = layers.Dense(hidden, activation="relu")(z_in)
    out = layers.Dense(pixels, activation="sigmoid", dtype="float32")(h)
    decoder = keras.Model(z_in, layers.Reshape(shape, dtype="float32")(out), name="decoder")
    return encoder, decoder


def conv_parts(shape: tuple[int, int, int], latent: int, filters: int) -> tuple[Any, Any]:
    size, _, channels = shape
    x_in = keras.Input(shape)
    h = layers.Conv2D(filters, 3, padding="same", activation="relu")(x_in)
    h = layers.Conv2D(2 * filters, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2D(2 * filters, 3, padding="same", activation="relu")(h)
    h = layers.Conv2D(2 * filters, 3, padding="same", activation="relu")(h)
    h = layers.Dense(32, activation="relu")(layers.Flatten()(h))
    encoder = keras.Model(
        x_in, [layers.Dense(latent, name="z_mean")(h), layers.Dense(latent, name="z_log_var")(h)],
        name="encoder",
    )
    half = size // 2
    z_in = keras.Input((latent,))
    h = layers.Dense(half * half * 2 * filters, activation="relu")(z_in)
    h = layers.Reshape((half, half, 2 * filters))(h)
    h = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu")(h)
    out = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", dtype="float32")(h)
    return encoder, keras.Model(z_in, out, name="decoder")


def build(p: dict[str, Any], args: VAEArgs, shape: tuple[int, int, int], seed: int) -> Any:
    latent = int(p["latent_dim"])
    if architecture_of(p, args) == "dense":
        encoder, decoder = dense_parts(shape, latent, int(p["hidden_units"]))
    else:
        encoder, decoder = conv_parts(shape, latent, int(p["filters"]))
    model = VariationalAutoencoder(encoder, decoder, kl_weight=float(p["kl_weight"]), seed=seed)
    model.compile(optimizer=optimizer(p["optimizer"], float(p["learning_rate"])))
    return model


def latent_grid(decoder: keras.Model, latent: int, n: int = GRID) -> np.ndarray:
    """Decodes an n x n grid over the first two latent axes (normal quantiles 5%..95%)."""
    axis = norm.ppf(np.linspace(0.05, 0.95, n))
    z = np.zeros((n * n, latent), dtype=np.float32)
    z[:, 0] = np.repeat(axis[::-1], n)
    if latent > 1:
        z[:, 1] = np.tile(axis, n)
    return np.asarray(decoder.predict(z, verbose=0))


def train(params: dict[str, Any], args: VAEArgs, ctx: TrialContext) -> float:
    """Trains `args.epochs` epochs; returns the last validation negative ELBO per image."""
    architecture = architecture_of(params, args)
    p = merge_params(DEFAULTS, params, unused=unused_params(architecture),
                     because=f"by the {architecture} architecture")
    p["architecture"] = architecture
    setup(ctx, args)
    data = trial_data(load_images(args.dataset, args.data, size=args.image_size), args, ctx)
    model = build(p, args, data.x_train.shape[1:], ctx.seed)
    monitor = TrialMonitor(ctx, metric="val_neg_elbo", time_limit=args.time_limit)
    try:
        with SummaryWriter(ctx.artifact_dir / "tensorboard") as writer:
            model.fit(
                data.x_train, data.x_train,
                validation_data=(data.x_val, data.x_val),
                batch_size=batch_size(p, args),
                epochs=args.epochs,
                shuffle=True,
                verbose=0,
                callbacks=[EpochCallback(monitor, writer)],
            )
            if args.images and monitor.history:
                save_images(model, data.x_val, int(p["latent_dim"]), ctx, writer,
                            step=len(monitor.history))
    finally:
        monitor.save(
            {"loss": ["loss", "val_loss"], "neg_elbo": ["neg_elbo", "val_neg_elbo"],
             "kl": ["kl", "val_kl"]},
            images=args.images,
        )
    return monitor.result()


def save_images(
    model: VariationalAutoencoder, x_val: np.ndarray, latent: int, ctx: TrialContext,
    writer: SummaryWriter, *, step: int,
) -> None:
    """reconstructions.png (originals above reconstructions) and latent_grid.png."""
    originals = x_val[:8]
    recon = np.asarray(model.predict(originals, verbose=0)[0])
    save_grid(ctx.artifact_dir / "reconstructions.png", np.concatenate([originals, recon]), cols=8)
    grid = latent_grid(model.decoder, latent)
    save_grid(ctx.artifact_dir / "latent_grid.png", grid, cols=GRID, scale=1)
    writer.images("reconstructions", step, np.concatenate([originals, recon]))
