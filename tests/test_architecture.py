"""The seams the codebase relies on, checked on the code itself.

- The client side is light: importing the client or the worker, or `tunesmith --help`,
  loads nothing of the server's stack (a remote worker machine needs httpx, pydantic and its
  trainers). Checked in a fresh interpreter, since this one has imported everything.
- Only the state machine (service/core/machine.py) assigns a trial's or a study's state.
- States are enums compared as enums: no `TrialState.X.value` outside the store.
- `Direction` is defined once.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "service"
MACHINE = SERVICE / "core" / "machine.py"
SERVER_STACK = ("sqlalchemy", "scipy", "fastapi", "starlette", "service.optimizer", "sklearn")


def _modules_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    modules: list[str] = json.loads(out.strip().splitlines()[-1])
    return modules


def _server_modules(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in SERVER_STACK or m.startswith(SERVER_STACK)]


@pytest.mark.parametrize(
    "code",
    [
        "import service.client",
        "import service.worker",
        "import service.schemas",
        "from service.cli import build_parser; build_parser().format_help()",
    ],
    ids=["client", "worker", "schemas", "cli-help"],
)
def test_the_client_side_loads_no_server_stack(code: str) -> None:
    assert _server_modules(_modules_after(code)) == []


def test_tunesmith_help_runs_without_the_server_stack() -> None:
    probe = (
        "import sys\nfrom service.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "import json\nprint(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert "usage: tunesmith" in out
    assert _server_modules(json.loads(out.strip().splitlines()[-1])) == []


def _python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "migrations" not in p.parts)


def _state_assignments(path: Path) -> list[str]:
    """`x.state = ...` and `Trial(..., state=...)` / `Study(..., state=...)` in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr == "state":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("Trial", "Study")
            and any(k.arg == "state" for k in node.keywords)
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_only_the_state_machine_assigns_states() -> None:
    assert _state_assignments(MACHINE), "the check must see the machine's own assignments"
    outside = [
        hit
        for path in _python_files(SERVICE)
        if path != MACHINE
        for hit in _state_assignments(path)
    ]
    assert outside == []


def test_states_are_compared_as_enums_outside_the_store() -> None:
    pattern = re.compile(
        r"\b(TrialState|StudyState|AttemptOutcome|Role|Direction)\.[A-Z_]+\.value\b"
    )
    hits = [
        f"{path.relative_to(ROOT)}:{i}"
        for path in _python_files(SERVICE)
        if "store" not in path.relative_to(SERVICE).parts
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


def test_direction_is_defined_once() -> None:
    definitions = [
        f"{path.relative_to(ROOT)}"
        for folder in (SERVICE, ROOT / "objectives")
        for path in _python_files(folder)
        if re.search(r"^(class Direction\b|Direction\s*=)", path.read_text(), re.MULTILINE)
    ]
    assert definitions == ["service/domain.py"]
