"""Data portability through the CLI: a study moves from a SQLite server to a PostgreSQL one.

`tunesmith study export ID > study.json` on the first server, `tunesmith study import -f
study.json` on the second (two live servers); every trial, value and attempt arrives, a
trial that was running arrives queued, and the imported study goes on where it stopped.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import ServerProcess, cli_command

pytestmark = pytest.mark.slow


def _cli(server: ServerProcess, *args: str) -> str:
    done = subprocess.run(
        cli_command(*args),
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_study_moves_from_sqlite_to_postgresql_by_cli(
    pg_url: str, start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    source = start_server(database_url=f"sqlite:///{tmp_path / 'source.db'}")
    target = start_server(database_url=pg_url)
    a = source.client()
    study = a.create_study(
        {
            "name": "moving",
            "objective": "external",
            "space": {
                "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
                "layers": {"type": "int", "low": 1, "high": 4},
                "act": {"type": "categorical", "choices": ["relu", "tanh"]},
            },
            "budget": {"max_trials": 6, "max_parallel": 4},
            "strategy": {"name": "random"},
        }
    )
    trials = a.suggest(study.id, 4)
    for i, trial in enumerate(trials[:2]):
        a.report(trial, 1, 1.0 + i)
        a.complete(trial, 0.5 + i)
    a.fail(trials[2], "diverged: test")
    # trials[3] stays running
    document_path = tmp_path / "study.json"
    document_path.write_text(_cli(source, "study", "export", str(study.id)))
    exported = json.loads(document_path.read_text())
    assert len(exported["trials"]) == 4

    out = _cli(target, "study", "import", "-f", str(document_path))
    assert "imported study" in out and "with 4 trials" in out
    b = target.client()
    moved = b.find_study("moving")
    assert moved is not None
    old = {t.number: a.trial(t.id) for t in a.trials(study.id)}
    new = {t.number: b.trial(t.id) for t in b.trials(moved.id)}
    assert sorted(old) == sorted(new) == [0, 1, 2, 3]
    for number, t in old.items():
        n = new[number]
        assert n.params == t.params and n.value == t.value and n.seed == t.seed
        assert [(v.step, v.value) for v in n.values] == [(v.step, v.value) for v in t.values]
        expected = "queued" if t.state.value == "running" else t.state.value
        assert n.state.value == expected, (number, n.state, t.state)
    assert moved.best is not None and moved.best.value == 0.5
    assert moved.space == study.space and moved.direction == study.direction

    # The moved study goes on on PostgreSQL: the queued trial first, then new ones.
    more = b.suggest(moved.id, 3)
    assert more[0].number == 3 and [t.number for t in more[1:]] == [4, 5]
    for leased in more:
        b.complete(leased, 2.0)
    final = b.get_study(moved.id)
    assert final.state.value == "done" and final.counts["complete"] == 5, final.counts
    a.close()
    b.close()
