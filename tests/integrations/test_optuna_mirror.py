"""TunesmithSampler(server=...) mirrors the Optuna study into a real tunesmith server."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import optuna
import pytest
from optuna.trial import TrialState

from service.integrations.optuna import TunesmithSampler
from service.integrations.optuna_mirror import OptunaMirror
from tests.support import ADMIN_TOKEN, ServerProcess, free_port

pytestmark = pytest.mark.slow
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -3, 3)
    units = trial.suggest_int("units", 8, 64, step=8)
    act = trial.suggest_categorical("act", ["relu", None])
    value = (x - 1) ** 2 + units / 64 + (0.5 if act is None else 0.0)
    for epoch in range(1, 4):
        trial.report(value + 1 / epoch, epoch)
    if trial.number == 5:
        raise optuna.TrialPruned()
    if trial.number == 6:
        raise RuntimeError("boom")
    return value


def test_mirror_records_every_trial_with_its_curve(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    sampler = TunesmithSampler(seed=0, n_startup_trials=4, server=server.url, token=ADMIN_TOKEN)
    study = optuna.create_study(study_name="optuna/quad:1", sampler=sampler)
    study.optimize(_objective, n_trials=10, catch=(RuntimeError,))

    client = server.client()
    remote = client.find_study("optuna-quad-1")
    assert remote is not None
    assert remote.objective == "external" and remote.direction == "minimize"
    assert remote.space["units"] == {"type": "int", "low": 8, "high": 64, "log": False}
    assert remote.space["act"]["choices"] == ["relu", "None"]
    trials = {t.params["x"]: t for t in client.trials(remote.id)}
    assert len(trials) == 10
    for t in study.trials:
        mirrored = trials[t.params["x"]]
        assert mirrored.params == {**t.params, "act": t.params["act"] or "None"}
        if t.state == TrialState.COMPLETE:
            assert mirrored.state == "complete" and mirrored.value == t.value
        elif t.state == TrialState.PRUNED:
            assert mirrored.state == "failed" and "pruned by Optuna at step 3" in (
                mirrored.error or ""
            )
        else:
            assert mirrored.state == "failed" and "failed in Optuna" in (mirrored.error or "")
        detail = client.trial(mirrored.id)
        assert [(v.step, v.value) for v in detail.values] == sorted(t.intermediate_values.items())
    view = client.request("GET", f"/studies/{remote.id}/model", params={"param": "x"}).json()
    # the dashboard's GP view, rebuilt from the mirrored trials
    assert view["n_observations"] == 10 and len(view["curve"]["mean"]) == 100


def test_parallel_mirrors_keep_each_value_with_its_configuration(
    start_server: Callable[..., ServerProcess],
) -> None:
    """Two Optuna workers (threads here, processes on an RDB storage alike) race on one
    tunesmith study: every trial arrives once, with its own value."""
    server = start_server()
    sampler = TunesmithSampler(seed=0, server=server.url, token=ADMIN_TOKEN)
    study = optuna.create_study(study_name="parallel", sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=24, n_jobs=2)

    client = server.client()
    remote = client.find_study("parallel")
    assert remote is not None
    mirrored = client.trials(remote.id)
    complete = [t for t in mirrored if t.state == "complete"]
    assert sorted((t.params["x"], t.value) for t in complete) == sorted(
        (t.params["x"], t.value) for t in study.trials
    )
    for t in mirrored:
        if t.state != "complete":  # handed back: never a value for another configuration
            assert t.state == "failed" and "tunesmith mirror" in (t.error or "")


def test_an_unreachable_server_never_breaks_the_study(caplog: pytest.LogCaptureFixture) -> None:
    sampler = TunesmithSampler(seed=0, server=f"http://127.0.0.1:{free_port()}", token="t")
    study = optuna.create_study(sampler=sampler)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="service.integrations.optuna_mirror"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=6)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6
    assert time.monotonic() - started < 20  # one failed attempt, then paused
    assert sum("paused" in r.getMessage() for r in caplog.records) == 1


def test_a_configuration_nobody_claims_is_failed_as_an_orphan(
    start_server: Callable[..., ServerProcess],
) -> None:
    """A process that died between enqueue and claim leaves a queued trial first in line; the
    others wait `orphan_seconds` for it, then fail it and go on."""
    server = start_server()
    client = server.client()
    mirror = OptunaMirror(client, orphan_seconds=0.5)
    study = optuna.create_study(study_name="orphans")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    first, second = study.trials
    mirror.record(study, first, first.state, first.values)
    remote = client.find_study("orphans")
    assert remote is not None
    orphan = client.enqueue(remote.id, {"x": 0.5})
    started = time.monotonic()
    mirror.record(study, second, second.state, second.values)
    assert time.monotonic() - started >= 0.5
    by_id = {t.id: t for t in client.trials(remote.id)}
    assert by_id[orphan.id].state == "failed"
    assert "never claimed" in (by_id[orphan.id].error or "")
    values = sorted(t.value for t in by_id.values() if t.state == "complete")
    assert values == sorted(t.value for t in study.trials)
