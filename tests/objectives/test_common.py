"""Trainer plumbing that needs no TensorFlow: arguments, monitor rules, data, Frechet distance."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from objectives.base import (
    Objective,
    ParameterMismatch,
    TrialContext,
    TrialDiverged,
    TrialPruned,
)
from objectives.common import TrainerArgs, TrialMonitor, merge_params, trial_data
from objectives.data import DataOptions, load_images, load_segmentation, split
from objectives.densenet import DEFAULTS as DENSENET_DEFAULTS
from objectives.densenet import DENSENET
from objectives.densenet.architecture import resolve
from objectives.gan.frechet import frechet_distance
from objectives.softmax import SOFTMAX
from objectives.vae import DEFAULTS as VAE_DEFAULTS
from objectives.vae import VAE
from tests.objectives.conftest import MakeCtx


def test_merge_params_rejects_unknown_names() -> None:
    assert merge_params({"a": 1, "b": 2}, {"b": 3}) == {"a": 1, "b": 3}
    with pytest.raises(ValueError, match="unknown parameters \\['c'\\]"):
        merge_params({"a": 1}, {"c": 0})


def test_args_are_validated_with_the_bad_field_named() -> None:
    with pytest.raises(ValidationError, match="nonsense"):
        SOFTMAX.parse_args({"nonsense": 1})
    with pytest.raises(ValidationError, match="multiple of 2\\*\\*down_blocks"):
        DENSENET.parse_args({"image_size": 36, "down_blocks": 3})


def test_monitor_prunes_when_report_says_stop(make_ctx: MakeCtx) -> None:
    ctx, reports = make_ctx(prune_at=1)
    monitor = TrialMonitor(ctx, metric="val", time_limit=None)
    assert monitor.end_epoch(1, {"loss": 1.0, "val": 0.5}) is True
    with pytest.raises(TrialPruned):
        monitor.result()
    assert reports.calls == [(1, 0.5)]


def test_monitor_returns_last_value_at_time_limit(make_ctx: MakeCtx) -> None:
    ctx, _ = make_ctx(deadline=time.monotonic() - 1.0)
    monitor = TrialMonitor(ctx, metric="val", time_limit=None)
    assert monitor.end_epoch(1, {"val": 0.25}) is True
    assert monitor.timed_out and not monitor.pruned
    assert monitor.result() == 0.25


def test_monitor_raises_diverged_on_nan(make_ctx: MakeCtx) -> None:
    ctx, reports = make_ctx()
    monitor = TrialMonitor(ctx, metric="val", time_limit=None)
    with pytest.raises(TrialDiverged, match="loss is nan at epoch 2"):
        monitor.end_epoch(2, {"loss": math.nan, "val": 0.1})
    assert reports.calls == []


def test_monitor_writes_metrics_and_curves(make_ctx: MakeCtx) -> None:
    ctx, _ = make_ctx()
    monitor = TrialMonitor(ctx, metric="val", time_limit=None)
    for epoch in (1, 2):
        monitor.begin_epoch()
        monitor.end_epoch(epoch, {"loss": 1.0 / epoch, "val": 0.1 * epoch})
    monitor.save({"loss": ["loss", "val"]})
    lines = (ctx.artifact_dir / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,seconds,val" and len(lines) == 3
    summary = json.loads((ctx.artifact_dir / "summary.json").read_text())
    assert summary["value"] == pytest.approx(0.2) and summary["epochs"] == 2
    assert (ctx.artifact_dir / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_seeded_split_of_the_bundled_digits() -> None:
    data = load_images("digits", DataOptions(), size=28)
    assert data.x.shape[1:] == (28, 28, 1) and data.x.min() >= 0.0 and data.x.max() <= 1.0
    a = split(data, seed=3, validation_fraction=0.2, train_size=50)
    b = split(data, seed=3, validation_fraction=0.2, train_size=50)
    c = split(data, seed=4, validation_fraction=0.2, train_size=50)
    assert len(a.x_train) == 50 and len(a.x_val) == round(len(data.x) * 0.2)
    assert (a.record.n_train, a.record.n_val) == (50, len(a.x_val))
    assert np.array_equal(a.y_val, b.y_val) and not np.array_equal(a.y_val, c.y_val)


def test_digit_masks_label_digits_against_background() -> None:
    data = load_segmentation("camvid", DataOptions(), size=16)  # offline: the fallback
    assert data.record.fallback_for == "camvid"
    assert data.y.shape == (len(data.x), 16, 16) and data.num_classes == 11
    digits = load_images("digits", DataOptions(), size=8).y[:20]
    for mask, digit in zip(data.y[:20], digits, strict=True):
        assert set(np.unique(mask)) <= {0, int(digit) + 1}


def test_note_dataset_reaches_the_worker_and_summary_json(make_ctx: MakeCtx) -> None:
    ctx, reports = make_ctx()
    parts = trial_data(load_images("mnist", DataOptions(), size=28),
                       TrainerArgs(train_size=100), ctx)
    assert reports.datasets == [parts.record.as_dict()] and ctx.dataset == reports.datasets[0]
    assert parts.record.n_train == 100 and reports.datasets[0]["source"] == "fallback"
    monitor = TrialMonitor(ctx, metric="val", time_limit=None)
    monitor.end_epoch(1, {"val": 0.5})
    monitor.save({}, images=False)
    summary = json.loads((ctx.artifact_dir / "summary.json").read_text())
    assert summary["dataset"] == reports.datasets[0]


def test_merge_params_refuses_a_parameter_the_configuration_ignores() -> None:
    with pytest.raises(ValueError, match=r"\['filters'\] are not used by the dense"):
        merge_params({"filters": 1, "lr": 2}, {"filters": 3}, unused={"filters"},
                     because="by the dense architecture")


def test_each_vae_architecture_searches_only_what_it_uses() -> None:
    dense, conv = VAE.space_for({"architecture": "dense"}), VAE.space_for({"architecture": "conv"})
    assert "hidden_units" in dense and "filters" not in dense
    assert "filters" in conv and "hidden_units" not in conv
    assert set(dense) - {"hidden_units"} == set(conv) - {"filters"}
    assert "architecture" not in dense and not any("condition" in p for p in conv.values())
    assert VAE.recipe_for({"architecture": "conv"}) == {
        k: v for k, v in VAE_DEFAULTS.items() if k not in ("hidden_units", "architecture")}


def test_the_default_vae_space_searches_the_architecture_with_conditions() -> None:
    """Without the argument the architecture is a parameter: `hidden_units` is active only
    for dense, `filters` (multiples of 8) only for conv; the recipe is the dense one."""
    from service.space import SearchSpace

    space = SearchSpace.from_spec(VAE.space_for({}))
    assert VAE.space == VAE.space_for({})
    assert space.params["architecture"].choices == ["dense", "conv"]  # type: ignore[union-attr]
    recipe = VAE.recipe_for({})
    assert recipe is not None and recipe["architecture"] == "dense"
    assert "filters" not in recipe and space.validate(recipe) == recipe
    conv = {**recipe, "architecture": "conv", "filters": 24}
    del conv["hidden_units"]
    assert space.validate(conv) == conv
    assert space.active_names(conv) == [n for n in VAE.space if n != "hidden_units"]


def test_the_default_gan_space_conditions_beta_1_on_adam() -> None:
    from objectives.gan import GAN
    from service.space import SearchSpace

    space = SearchSpace.from_spec(GAN.space)
    recipe = GAN.recipe_for({})
    assert recipe is not None and space.validate(recipe) == recipe and "beta_1" in recipe
    rms = {k: v for k, v in recipe.items() if k != "beta_1"} | {"optimizer": "rmsprop"}
    assert space.validate({**rms, "beta_1": 0.5}) == rms


@pytest.mark.parametrize(
    ("preset", "blocks", "bottleneck", "growth", "layers"),
    [("fc-densenet56", (4,) * 5, 4, 12, 56), ("fc-densenet67", (5,) * 5, 5, 16, 67),
     ("fc-densenet103", (4, 5, 7, 10, 12), 15, 16, 103)],
)
def test_densenet_presets_are_the_papers(
    preset: str, blocks: tuple[int, ...], bottleneck: int, growth: int, layers: int
) -> None:
    args = DENSENET.parse_args({"preset": preset})
    arch = resolve(args, DENSENET_DEFAULTS)
    assert (arch.first_filters, arch.blocks, arch.bottleneck, arch.growth_rate) == (
        48, blocks, bottleneck, growth)
    assert arch.conv_layers == layers
    assert set(DENSENET.space_for({"preset": preset})) == set(DENSENET.space) - {
        "growth_rate", "layers_per_block"}


def test_densenet_layer_lists_and_their_checks() -> None:
    args = DENSENET.parse_args({"layers_per_block": [2, 3], "bottleneck_layers": 4,
                                "crop_size": 64})
    arch = resolve(args, {**DENSENET_DEFAULTS, "growth_rate": 6})
    assert (arch.blocks, arch.bottleneck, arch.growth_rate, arch.first_filters) == (
        (2, 3), 4, 6, 16)
    assert "layers_per_block" not in DENSENET.space_for({"layers_per_block": 3})
    assert resolve(DENSENET.parse_args({}), DENSENET_DEFAULTS).blocks == (4, 4)
    with pytest.raises(ValidationError, match="contradicts"):
        DENSENET.parse_args({"preset": "fc-densenet103", "down_blocks": 3})
    with pytest.raises(ValidationError, match="crop_size 224 must be a multiple of 2"):
        DENSENET.parse_args({"layers_per_block": [1] * 6, "image_size": 64})
    with pytest.raises(ValueError, match="are not used"):
        DENSENET.run({"growth_rate": 8}, {"preset": "fc-densenet56"}, make_plain_ctx())


def make_plain_ctx() -> TrialContext:
    return TrialContext(trial_id=1, study_id=1, seed=0, artifact_dir=Path("unused"))


def test_frechet_distance() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shifted = frechet_distance(a, a + 2.0)
    assert shifted == pytest.approx(6 * 4.0, rel=1e-6)
    dead = np.concatenate([a, np.zeros((400, 3))], axis=1)
    assert math.isfinite(frechet_distance(dead, dead + 0.1))
    assert math.isnan(frechet_distance(a, np.full_like(a, np.nan)))


def test_objective_modules_do_not_import_tensorflow() -> None:
    code = (
        "import sys, objectives.softmax, objectives.vae, objectives.gan, objectives.densenet\n"
        "objs = [objectives.softmax.SOFTMAX, objectives.vae.VAE, objectives.gan.GAN,"
        " objectives.densenet.DENSENET]\n"
        "[o.describe() for o in objs]\n"
        "heavy = {'tensorflow', 'keras', 'PIL'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("module", ["softmax", "vae", "gan", "densenet"])
def test_recipe_defaults_cover_every_default_space(module: str) -> None:
    mod = importlib.import_module(f"objectives.{module}")
    obj = getattr(mod, module.upper())
    assert obj.name == module and issubclass(obj.args_model, TrainerArgs)
    assert obj.defaults is mod.DEFAULTS and obj.space == obj.space_for({})
    assert set(obj.space) <= set(mod.DEFAULTS)
    for name, spec in obj.space.items():
        value = mod.DEFAULTS[name]
        if spec["type"] == "categorical":
            assert value in spec["choices"], name
        else:
            assert spec["low"] <= value <= spec["high"], name


def test_a_conditional_parameter_left_out_is_active_only_with_its_parent() -> None:
    lr = {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    dense = VAE.complete_space(lr, None)
    assert dense["architecture"] == {"type": "fixed", "value": "dense"}
    assert dense["hidden_units"] == {"type": "fixed", "value": 256}
    assert "filters" not in dense, "a dense VAE never gets filters"

    both = VAE.complete_space({"architecture": {"type": "categorical",
                                                "choices": ["dense", "conv"]}}, None)
    assert both["filters"]["condition"] == {"architecture": ["conv"]}
    assert both["hidden_units"]["condition"] == {"architecture": ["dense"]}

    named = VAE.complete_space(
        {"architecture": {"type": "categorical", "choices": ["dense", "conv"]},
         "filters": {"type": "int", "low": 8, "high": 64}}, None)
    assert named["filters"]["condition"] == {"architecture": ["conv"]}, "the declared condition"

    with pytest.raises(ParameterMismatch, match="search 'architecture' too"):
        VAE.complete_space({"filters": {"type": "int", "low": 8, "high": 64}}, None)


def test_defaults_reach_the_trainer_only_for_active_parameters(make_ctx: MakeCtx) -> None:
    seen: list[dict[str, Any]] = []
    space = {"kind": {"type": "categorical", "choices": ["a", "b"]},
             "a_only": {"type": "int", "low": 1, "high": 3, "condition": {"kind": ["a"]}},
             "b_only": {"type": "int", "low": 1, "high": 3, "condition": {"kind": ["b"]}}}
    obj = Objective(name="cond", description="", metric="m", direction="minimize",
                    space=space, defaults={"kind": "a", "a_only": 2, "b_only": 3},
                    train=lambda params, args, ctx: seen.append(params) or 0.0)
    obj.run({"kind": "b"}, None, make_ctx()[0])
    obj.run({}, None, make_ctx()[0])
    assert seen == [{"kind": "b", "b_only": 3}, {"kind": "a", "a_only": 2}]
