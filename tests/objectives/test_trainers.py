"""The built-in Keras trainers on the offline data, at tiny sizes (1-2 epochs each).

Each trainer: reports a finite metric per epoch and writes its artifacts; stops at once
when pruned; fails as diverged under a huge learning rate. TensorFlow is imported once
per process (the first test pays for it).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from objectives.base import Objective, TrialDiverged, TrialPruned
from objectives.densenet import DENSENET
from objectives.gan import GAN
from objectives.softmax import SOFTMAX
from objectives.vae import VAE
from tests.objectives.conftest import MakeCtx, requires_tf

pytestmark = [pytest.mark.tf, pytest.mark.slow, requires_tf]


def tiny(obj: Objective, tmp: Path) -> dict[str, Any]:
    """Smallest sensible arguments per trainer."""
    common: dict[str, Any] = {"train_size": 128, "validation_fraction": 0.1}
    if obj is GAN:
        return {
            **common,
            "frechet_samples": 100,
            "classifier_epochs": 1,
            "cache_dir": str(tmp / "cache"),
        }
    if obj is DENSENET:
        return {
            **common,
            "train_size": 64,
            "image_size": 16,
            "down_blocks": 1,
            "first_filters": 8,
            "batch_size": 16,
        }
    return common


SMALL_PARAMS: dict[str, dict[str, Any]] = {
    "softmax": {},
    "vae": {"hidden_units": 64, "latent_dim": 2},
    "vae-conv": {"filters": 8, "latent_dim": 2},
    "gan": {"noise_dim": 16, "batch_size": 64},
    "densenet": {"growth_rate": 4, "layers_per_block": 1},
}
CASES = [
    pytest.param(SOFTMAX, {}, SMALL_PARAMS["softmax"], ["loss.png", "weights.png"], id="softmax"),
    pytest.param(
        VAE, {}, SMALL_PARAMS["vae"], ["reconstructions.png", "latent_grid.png"], id="vae-dense"
    ),
    pytest.param(
        VAE,
        {"architecture": "conv"},
        SMALL_PARAMS["vae-conv"],
        ["reconstructions.png", "latent_grid.png"],
        id="vae-conv",
    ),
    pytest.param(
        GAN, {}, SMALL_PARAMS["gan"], ["samples_epoch_001.png", "samples_epoch_002.png"], id="gan"
    ),
    pytest.param(DENSENET, {}, SMALL_PARAMS["densenet"], ["segmentation.png"], id="densenet"),
]


@pytest.mark.parametrize(("obj", "extra_args", "params", "images"), CASES)
def test_trains_two_epochs_with_a_finite_report_each(
    obj: Objective,
    extra_args: dict[str, Any],
    params: dict[str, Any],
    images: list[str],
    make_ctx: MakeCtx,
    shared_cache: Path,
) -> None:
    ctx, reports = make_ctx()
    value = obj.run(params, {**tiny(obj, shared_cache), **extra_args, "epochs": 2}, ctx)
    assert [step for step, _ in reports.calls] == [1, 2]
    assert all(math.isfinite(v) for _, v in reports.calls)
    assert value == reports.calls[-1][1]
    files = {p.name for p in ctx.artifact_dir.iterdir()}
    assert {"metrics.csv", "summary.json", "tensorboard", *images} <= files
    assert any((ctx.artifact_dir / "tensorboard").iterdir())


PRUNE = [
    pytest.param(SOFTMAX, SMALL_PARAMS["softmax"], id="softmax"),
    pytest.param(VAE, SMALL_PARAMS["vae"], id="vae"),
    pytest.param(GAN, SMALL_PARAMS["gan"], id="gan"),
    pytest.param(DENSENET, SMALL_PARAMS["densenet"], id="densenet"),
]


@pytest.mark.parametrize(("obj", "params"), PRUNE)
def test_prune_at_epoch_one_stops_training(
    obj: Objective, params: dict[str, Any], make_ctx: MakeCtx, shared_cache: Path
) -> None:
    ctx, reports = make_ctx(prune_at=1)
    with pytest.raises(TrialPruned):
        obj.run(params, {**tiny(obj, shared_cache), "epochs": 5, "images": False}, ctx)
    assert [step for step, _ in reports.calls] == [1]


DIVERGE = [
    pytest.param(
        SOFTMAX,
        {"learning_rate": 1.0, "optimizer": "adam"},
        {"clip_probabilities": False},
        id="softmax-unclipped-log",
    ),
    pytest.param(VAE, {**SMALL_PARAMS["vae"], "learning_rate": 100.0}, {}, id="vae"),
    pytest.param(
        GAN, {**SMALL_PARAMS["gan"], "generator_lr": 1e30, "discriminator_lr": 1e30}, {}, id="gan"
    ),
    pytest.param(DENSENET, {**SMALL_PARAMS["densenet"], "learning_rate": 1e30}, {}, id="densenet"),
]


@pytest.mark.parametrize(("obj", "params", "extra_args"), DIVERGE)
def test_huge_learning_rate_diverges(
    obj: Objective,
    params: dict[str, Any],
    extra_args: dict[str, Any],
    make_ctx: MakeCtx,
    shared_cache: Path,
) -> None:
    ctx, reports = make_ctx()
    with pytest.raises(TrialDiverged, match=r"nan|inf"):
        args = {**tiny(obj, shared_cache), **extra_args, "epochs": 2, "images": False}
        obj.run(params, args, ctx)
    assert all(math.isfinite(v) for _, v in reports.calls)


def test_same_seed_same_result_other_seed_other_split(
    make_ctx: MakeCtx, shared_cache: Path
) -> None:
    args = {**tiny(SOFTMAX, shared_cache), "epochs": 2, "images": False}
    curves = []
    for seed in (5, 5, 6):
        ctx, _ = make_ctx(seed=seed)
        SOFTMAX.run({}, args, ctx)
        rows = (ctx.artifact_dir / "metrics.csv").read_text().splitlines()
        columns = rows[0].split(",")
        keep = [i for i, c in enumerate(columns) if c != "seconds"]
        curves.append([[row.split(",")[i] for i in keep] for row in rows[1:]])
    assert curves[0] == curves[1]
    assert curves[0] != curves[2]


def test_time_limit_returns_the_last_value(make_ctx: MakeCtx, shared_cache: Path) -> None:
    ctx, reports = make_ctx()
    start = time.monotonic()
    value = SOFTMAX.run(
        {"batch_size": 16},
        {**tiny(SOFTMAX, shared_cache), "epochs": 1000, "time_limit": 0.5, "images": False},
        ctx,
    )
    assert 1 <= len(reports.calls) < 1000 and value == reports.calls[-1][1]
    assert time.monotonic() - start < 30


def test_gan_step_trains_only_the_intended_network() -> None:
    """The stacked step must leave the discriminator's weights unchanged, and vice versa."""
    import keras

    from objectives.gan import DEFAULTS
    from objectives.gan.trainer import build

    keras.utils.set_random_seed(0)
    generator, discriminator, stacked = build({**DEFAULTS, "noise_dim": 8}, (8, 8, 1))
    noise = np.random.default_rng(0).standard_normal((16, 8)).astype("float32")
    ones = np.ones((16, 1), dtype="float32")

    def snapshot(model: keras.Model) -> list[np.ndarray]:
        return [np.array(w) for w in model.get_weights()]

    def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
        return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))

    g0, d0 = snapshot(generator), snapshot(discriminator)
    discriminator.trainable = False
    stacked.train_on_batch(noise, ones)
    g1, d1 = snapshot(generator), snapshot(discriminator)
    assert same(d0, d1) and not same(g0, g1)
    discriminator.trainable = True
    fake = generator.predict_on_batch(noise)
    discriminator.train_on_batch(fake, np.zeros((16, 1), dtype="float32"))
    assert same(g1, snapshot(generator)) and not same(d1, snapshot(discriminator))
