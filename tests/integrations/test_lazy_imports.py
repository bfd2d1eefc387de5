"""The integrations package loads no host library until one integration is imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

HOSTS = ("optuna", "keras_tuner", "ray", "keras", "tensorflow")


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys\n{statement}\nprint(','.join(m for m in {HOSTS!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return [m for m in out.stdout.strip().split(",") if m]


def test_the_package_and_its_shared_modules_import_no_host_library() -> None:
    assert _loaded_after("import service.integrations") == []
    assert _loaded_after("import service.integrations.remote, service.integrations.grid") == []


def test_an_integration_imports_only_its_own_host_library() -> None:
    assert _loaded_after("import service.integrations.optuna") == ["optuna"]


def test_the_ray_searcher_imports_ray_only() -> None:
    pytest.importorskip("ray.tune")
    assert _loaded_after("import service.integrations.ray_tune") == ["ray"]


@pytest.mark.tf
def test_the_keras_oracle_imports_keras_tuner_and_its_backend_only() -> None:
    pytest.importorskip("keras_tuner")
    loaded = _loaded_after("import service.integrations.keras_tuner")
    assert "optuna" not in loaded and "ray" not in loaded and "keras_tuner" in loaded
