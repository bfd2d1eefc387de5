"""The integrations package loads no host library until one integration is imported."""

from __future__ import annotations

import subprocess
import sys

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
