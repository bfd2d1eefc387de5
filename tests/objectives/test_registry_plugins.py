"""Registration through the `tunesmith.objectives` entry-point group.

A separate package (tests/plugin_pkg) declares its objective in its own pyproject.toml. The
test makes the `*.dist-info` that installing it would make (METADATA and entry_points.txt,
written from that pyproject) and runs the registry in a subprocess with it on sys.path: as
an install would, without building a wheel or a virtual environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from objectives.base import Objective

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "tests" / "plugin_pkg"


def fake_install(project: Path, site: Path) -> str:
    """Writes `<name>-<version>.dist-info` for `project` into `site`; returns the name."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    name, version = meta["name"], meta["version"]
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, entries in meta.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return name


def test_plugin_objective_is_listed_and_runs(tmp_path: Path) -> None:
    fake_install(PLUGIN, tmp_path / "site")
    code = (
        "import json, pathlib\n"
        "from objectives.base import TrialContext\n"
        "from objectives.registry import available, get\n"
        "reports = []\n"
        "ctx = TrialContext(trial_id=1, study_id=1, seed=0, artifact_dir=pathlib.Path('.'),"
        " report_fn=lambda s, v: reports.append([s, v]) or False)\n"
        "value = get('demo_plugin').run({'width': 3.1622776601683795, 'depth': 3},"
        " {'epochs': 2}, ctx)\n"
        "print(json.dumps({'names': sorted(available()), 'value': value, 'reports': reports,"
        " 'describe': get('demo_plugin').describe()}))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(tmp_path / "site"), str(PLUGIN), str(REPO), os.environ.get("PYTHONPATH", "")]
        ),
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "demo_plugin" in result["names"]
    assert result["value"] == pytest.approx(0.5)
    assert [step for step, _ in result["reports"]] == [1, 2]
    assert result["describe"]["args_schema"]["properties"]["epochs"]["default"] == 3


@pytest.mark.parametrize("name", ["softmax", "vae", "gan", "densenet"])
def test_builtin_entry_points_name_their_objectives(name: str) -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    target = declared["tunesmith.objectives"][name]
    module, _, attr = target.partition(":")
    obj = getattr(__import__(module, fromlist=[attr]), attr)
    assert isinstance(obj, Objective) and obj.name == name
    assert isinstance(obj.train, str) and obj.train.startswith(f"{module}.trainer:")
