"""`tunesmith objectives show NAME`: arguments, parameters with ranges and defaults, metric."""

from __future__ import annotations

import subprocess

from tests.support import cli_command


def show(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_command("objectives", "show", name), capture_output=True,
                          text=True, timeout=120)


def test_show_lists_arguments_parameters_defaults_and_metric() -> None:
    done = show("vae")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "metric: val_neg_elbo (minimize)" in lines
    assert "  architecture: categorical ['dense', 'conv']; default 'dense'" in lines
    dense_only = "only when architecture in ['dense']"
    assert f"  hidden_units: int [32, 512], log, {dense_only}; default 256" in lines
    assert "  filters: int [8, 64], step 8, only when architecture in ['conv']; default 32" in lines
    assert "  epochs: integer (>= 1, <= 10000), default 10" in lines
    assert "  learning_rate: float [0.0001, 0.01], log; default 0.001" in lines
    assert "  optimizer: categorical ['adam', 'rmsprop', 'sgd']; default 'adam'" in lines
    assert lines[-1].startswith("installed from: tunesmith ")


def test_show_unknown_objective_is_one_line() -> None:
    done = show("nope")
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0
    assert "unknown objective 'nope'" in done.stderr and "vae" in done.stderr
