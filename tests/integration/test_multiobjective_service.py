"""A two-objective study with a constraint end to end: a real server, real worker processes
and the ZDT1 trainer, which returns named metrics and runs out of memory in a hidden region.

The `zdt` objective is registered through the entry-point group like every built-in; until
the package is reinstalled with it, the test puts a dist-info that declares it on the
server's and workers' path (as tests/objectives/test_registry_plugins.py does for a plugin).
"""

from __future__ import annotations

import math
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from objectives import registry
from service.optimizer.pareto import nondominated
from tests.support import ServerProcess, WorkerGroup, cli_command, finished, wait_until

LIMIT = 1.8e6  # cost = 1e6 * (1 + x1): x1 <= 0.8 is feasible
OOM_ABOVE = 0.9  # x0 > 0.9 runs out of memory


def zdt_site(tmp_path: Path) -> dict[str, str]:
    """An environment whose path declares the `zdt` objective when the install does not."""
    if "zdt" in registry.available():
        return {}
    info = tmp_path / "site" / "tunesmith_zdt-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tunesmith-zdt\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        "[tunesmith.objectives]\nzdt = objectives.synthetic:ZDT\n"
    )
    path = os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path}


def test_two_objective_study_with_workers_keeps_a_feasible_pareto_front(
    tmp_path: Path,
    start_server: Callable[..., ServerProcess],
    start_workers: Callable[..., WorkerGroup],
) -> None:
    server = start_server(extra_env=zdt_site(tmp_path))
    client = server.client()
    study = client.create_study(
        {
            "name": "zdt-workers",
            "objective": "zdt",
            "objective_args": {"oom_above": OOM_ABOVE},
            "objectives": [
                {"metric": "f1", "direction": "minimize"},
                {"metric": "f2", "direction": "minimize"},
            ],
            "constraints": [{"metric": "cost", "max": LIMIT}],
            "strategy": {"name": "gp", "n_initial": 6, "seed": 3},
            "budget": {"max_trials": 14, "max_parallel": 2},
            # One configuration that runs out of memory, one over the cost limit, for sure.
            "enqueue": [
                {"x0": 0.95, "x1": 0.1, "x2": 0.1, "x3": 0.1},
                {"x0": 0.2, "x1": 0.95, "x2": 0.1, "x3": 0.1},
            ],
        }
    )
    start_workers(server, "--cpu-workers", "2", "--objective", "zdt")
    wait_until(
        lambda: client.get_study(study.id).state == "done",
        timeout=300,
        interval=1.0,
        what=f"the two-objective study to finish ({server.log_tail(500)})",
    )
    done = client.get_study(study.id)
    assert finished(done) == 14
    assert done.best is None
    trials = client.trials(study.id)
    feasible_values = []
    for t in trials:
        x = [t.params[f"x{i}"] for i in range(4)]
        if x[0] > OOM_ABOVE:
            assert (t.state, t.feasible) == ("failed", False), t
            assert t.error is not None and "out of memory" in t.error
            continue
        assert t.state == "complete", t
        g = 1 + 9 * sum(x[1:]) / 3
        assert t.objective_values == pytest.approx([x[0], g * (1 - math.sqrt(x[0] / g))])
        assert t.metrics is not None and t.metrics["cost"] == 1e6 * (1 + x[1])
        assert t.feasible is (t.metrics["cost"] <= LIMIT)
        if t.feasible:
            feasible_values.append((t.id, t.objective_values))
    assert feasible_values, "no feasible trial"
    assert sum(t.state == "failed" for t in trials) >= 1
    assert sum(t.state == "complete" and t.feasible is False for t in trials) >= 1
    # The front is exactly the non-dominated feasible trials.
    keep = nondominated([v for _, v in feasible_values])
    expected = {i for (i, _), k in zip(feasible_values, keep, strict=True) if k}
    assert done.pareto is not None
    assert {p.trial_id for p in done.pareto} == expected
    assert all(p.values == dict(feasible_values)[p.trial_id] for p in done.pareto)
    # The CLI lists the front.
    shown = subprocess.run(
        cli_command("study", "show", str(study.id), "--url", server.url, "--token", server.token),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert f"Pareto front: {len(done.pareto)} trial(s)" in shown
    assert all(f"trial {p.number}: [" in shown for p in done.pareto)
