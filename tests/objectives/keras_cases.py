"""The built-in Keras trainers on the offline data, at tiny sizes (1-2 epochs each), on the
Keras backend of this process.

Not collected by a plain `pytest` run (no test_ prefix): tests/objectives/test_backends.py
runs this file once per backend in a child process with KERAS_BACKEND set, because the
backend is fixed when keras is first imported. To run one backend directly:
`KERAS_BACKEND=jax pytest tests/objectives/keras_cases.py`.

Each trainer: notes its dataset once before its first report (offline: the recorded
fallback), reports a finite metric per epoch, writes its artifacts and readable TensorBoard
curves; stops at once when pruned; fails as diverged under a huge learning rate.
"""

from __future__ import annotations

import json
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
from tests.objectives.test_data import segnet_folder

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


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in `log_dir`'s event files, read by TensorBoard's own loader."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util

    acc = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    acc.Reload()
    return {
        tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
              for e in acc.Tensors(tag)]
        for tag in acc.Tags()["tensors"]
        if tensor_util.make_ndarray(acc.Tensors(tag)[0].tensor_proto).ndim == 0
    }


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
    args = {**tiny(obj, shared_cache), **extra_args, "epochs": 2}
    value = obj.run(params, args, ctx)
    assert [step for step, _ in reports.calls] == [1, 2]
    assert all(math.isfinite(v) for _, v in reports.calls)
    assert value == reports.calls[-1][1]
    assert reports.events == ["dataset", "report", "report"]
    record = reports.datasets[0]
    expected = obj.parse_args(args).dataset  # type: ignore[attr-defined]
    assert (record["source"], record["fallback_for"]) == ("fallback", expected)
    files = {p.name for p in ctx.artifact_dir.iterdir()}
    assert {"metrics.csv", "summary.json", "tensorboard", *images} <= files
    assert json.loads((ctx.artifact_dir / "summary.json").read_text())["dataset"] == record
    curves = tensorboard_scalars(ctx.artifact_dir / "tensorboard")
    assert [(step, pytest.approx(v)) for step, v in curves[obj.metric]] == reports.calls


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


def test_mean_iou_ignores_void_over_the_classes_seen() -> None:
    """Hand-computed: 3 classes, void 3. Pixels (truth -> prediction): 0->0, 0->1, 1->1,
    void->2. Class 0: TP 1, FN 1 -> 1/2; class 1: TP 1, FP 1 -> 1/2; class 2 occurs only
    on the void pixel, which counts nowhere: mean IoU 1/2 (1/3 if void were counted)."""
    from keras import ops

    from objectives.densenet.segmentation import crossentropy, mean_iou

    truth = np.array([[[0, 0], [1, 3]]])
    predicted = np.eye(3, dtype="float32")[np.array([[[0, 1], [1, 2]]])]
    metric = mean_iou(3, 3)
    metric.update_state(truth, predicted)
    assert float(metric.result()) == pytest.approx(0.5)
    metric.update_state(np.array([[[2, 2], [3, 3]]]), np.eye(3, dtype="float32")[
        np.array([[[2, 2], [0, 0]]])])  # class 2 now right twice: IoU 1
    assert float(metric.result()) == pytest.approx((0.5 + 0.5 + 1.0) / 3)

    probs = np.full((1, 1, 2, 3), 0.25, dtype="float32")
    probs[0, 0, 0] = [0.5, 0.25, 0.25]
    loss = crossentropy(3, 3)(np.array([[[0, 3]]]), probs)
    assert float(ops.convert_to_numpy(loss)[0]) == pytest.approx(-math.log(0.5), rel=1e-6)


def test_fc_densenet103_has_the_papers_103_layers() -> None:
    """Counted as the paper counts: every convolution and transposed convolution."""
    import keras

    from objectives.densenet import DEFAULTS
    from objectives.densenet.architecture import resolve
    from objectives.densenet.trainer import build

    arch = resolve(DENSENET.parse_args({"preset": "fc-densenet103"}), DEFAULTS)
    model = build(arch, DEFAULTS, channels=3, classes=11, seed=0)
    convs = [layer for layer in model.layers
             if isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose)]
    assert len(convs) == arch.conv_layers == 103
    assert 9.2e6 < model.count_params() < 9.6e6  # the paper's 9.4M parameters
    assert tuple(model.output_shape) == (None, None, None, 11)


def test_crops_flips_and_void_padding() -> None:
    from objectives.densenet.segmentation import Crops, pad_to_multiple

    x = np.arange(2 * 6 * 8 * 1, dtype="float32").reshape(2, 6, 8, 1)
    y = np.arange(2 * 6 * 8, dtype="uint8").reshape(2, 6, 8)
    batches = Crops(x, y, batch_size=2, crop=4, flip=True, seed=0)
    frames, masks = batches[0]
    assert frames.shape == (2, 4, 4, 1) and masks.shape == (2, 4, 4) and masks.dtype == np.int32
    assert np.array_equal(frames[..., 0], masks)  # crops and flips move frames and masks alike
    whole, _ = Crops(x, y, batch_size=2, crop=8, flip=False, seed=0)[0]
    assert whole.shape == (2, 6, 8, 1)
    padded_x, padded_y = pad_to_multiple(x, y, 4, ignore_class=11)
    assert padded_x.shape == (2, 8, 8, 1) and (padded_y[:, 6:] == 11).all()
    with pytest.raises(ValueError, match="no void class"):
        pad_to_multiple(x, y, 4, ignore_class=None)


def test_densenet_trains_on_camvid_crops_and_validates_on_full_frames(
    make_ctx: MakeCtx, tmp_path: Path
) -> None:
    """SegNet-layout frames of 22x30 (not divisible by 4): 16x16 training crops, validation
    on full frames padded with void."""
    folder = segnet_folder(tmp_path / "CamVid", size=(22, 30), train=4, val=2)
    ctx, reports = make_ctx()
    DENSENET.run(
        {"growth_rate": 4, "layers_per_block": 1},
        {"data": {"path": str(folder), "require_real": True}, "down_blocks": 2,
         "first_filters": 8, "crop_size": 16, "batch_size": 2, "epochs": 1, "image_size": 16},
        ctx,
    )
    assert reports.datasets[0]["source"] == "path" and reports.datasets[0]["n_val"] == 2
    assert len(reports.calls) == 1 and 0.0 <= reports.calls[0][1] <= 1.0
