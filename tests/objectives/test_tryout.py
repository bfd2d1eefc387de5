"""`tunesmith objectives try`: the recipe's defaults (or a sample), the dataset line, the result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from objectives.tryout import run_recipe

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUNESMITH_OFFLINE": "1", "KERAS_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "service.cli", "objectives", "try", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
@pytest.mark.tf
def test_try_runs_the_recipe_and_prints_the_dataset(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    done = cli("softmax", "--epochs", "1", "--args", '{"train_size": 64, "images": false}',
               "--artifact-dir", str(tmp_path / "artifacts"), home=tmp_path / "keras")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == ("training softmax with {'learning_rate': 0.1, 'batch_size': 100, "
                        "'optimizer': 'sgd'} (the recipe's defaults)")
    assert lines[1].startswith("dataset: digits (fallback, 64 train / 359 val, sha256 ")
    assert "fallback for mnist: TUNESMITH_OFFLINE is set" in lines[1]
    assert lines[2].startswith("  epoch 1: val_accuracy = ")
    assert lines[3].startswith("val_accuracy = ") and str(tmp_path / "artifacts") in lines[3]


def test_try_samples_on_request_and_refuses_unknown_names(tmp_path: Path) -> None:
    done = cli("synthetic", "--sample", "--seed", "3", "--artifact-dir", str(tmp_path),
               home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith("(sampled with seed 3)")
    missing = cli("nonesuch", home=tmp_path)
    assert missing.returncode == 1 and "unknown objective 'nonesuch'" in missing.stderr


def test_run_recipe_without_a_recipe_needs_every_parameter(tmp_path: Path) -> None:
    printed: list[str] = []
    with pytest.raises(ValueError, match=r"branin has no recipe defaults; give \['x2'\]"):
        run_recipe("branin", params={"x1": 1.0}, artifact_dir=tmp_path, out=printed.append)
    value = run_recipe("branin", params={"x1": 9.42478, "x2": 2.475}, artifact_dir=tmp_path,
                       out=printed.append)
    assert value == pytest.approx(0.397887, abs=1e-5)
    assert printed[0] == ("training branin with {'x1': 9.42478, 'x2': 2.475} "
                          "(the given parameters)")

    def sampler(space: Any, seed: int) -> dict[str, Any]:
        return {name: spec["low"] for name, spec in space.items()}

    run_recipe("branin", params={"x2": 1.0}, sampler=sampler, seed=5, artifact_dir=tmp_path,
               out=printed.append)
    assert printed[-3] == "training branin with {'x1': -5.0, 'x2': 1.0} (sampled with seed 5)"
