"""Trainer plumbing that needs no TensorFlow: arguments, monitor rules, data, Frechet distance."""

from __future__ import annotations

import gzip
import importlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from objectives.base import TrialDiverged, TrialPruned
from objectives.common import TrainerArgs, TrialMonitor, merge_params
from objectives.data import load_images, load_segmentation, split
from objectives.densenet import DENSENET
from objectives.gan.frechet import frechet_distance
from objectives.softmax import SOFTMAX
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


def test_fallback_images_and_seeded_split() -> None:
    data = load_images("mnist", path=None, size=28)
    assert data.x.shape[1:] == (28, 28, 1) and data.x.min() >= 0.0 and data.x.max() <= 1.0
    a = split(data, seed=3, validation_fraction=0.2, train_size=50)
    b = split(data, seed=3, validation_fraction=0.2, train_size=50)
    c = split(data, seed=4, validation_fraction=0.2, train_size=50)
    assert len(a.x_train) == 50 and len(a.x_val) == round(len(data.x) * 0.2)
    assert np.array_equal(a.y_val, b.y_val) and not np.array_equal(a.y_val, c.y_val)


def test_fallback_segmentation_labels_digits_against_background() -> None:
    data = load_segmentation(path=None, size=16)
    assert data.y.shape == (len(data.x), 16, 16) and data.num_classes == 11
    for mask, digit in zip(
        data.y[:20], load_images("mnist", path=None, size=8).y[:20], strict=True
    ):
        assert set(np.unique(mask)) <= {0, int(digit) + 1}


def test_npz_and_idx_paths_load(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    y = np.arange(20) % 10
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    data = load_images("mnist", path=str(tmp_path / "d.npz"), size=28)
    assert np.allclose(data.x[..., 0], x / 255.0) and list(data.y) == list(y)
    idx = tmp_path / "idx"
    idx.mkdir()
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in x.shape)
    (idx / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + x.tobytes()))
    header = bytes([0, 0, 8, 1]) + len(y).to_bytes(4, "big")
    (idx / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(header + y.astype(np.uint8).tobytes())
    )
    assert np.array_equal(load_images("fashion_mnist", path=str(idx), size=28).y, y)
    with pytest.raises(FileNotFoundError):
        load_images("mnist", path=str(tmp_path / "missing.npz"), size=28)


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
def test_space_and_defaults_name_the_same_parameters(module: str) -> None:
    mod = importlib.import_module(f"objectives.{module}")
    obj = getattr(mod, module.upper())
    assert obj.name == module and issubclass(obj.args_model, TrainerArgs)
    assert set(obj.space) == set(mod.DEFAULTS)
    for name, spec in obj.space.items():
        value = mod.DEFAULTS[name]
        if spec["type"] == "categorical":
            assert value in spec["choices"], name
        else:
            assert spec["low"] <= value <= spec["high"], name
