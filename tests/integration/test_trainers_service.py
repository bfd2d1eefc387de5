"""Every built-in trainer runs a study through the real service and real worker processes.

One server, two CPU worker processes (TensorFlow imported once per worker), small data.
Also: ASHA pruning stops trainers mid-training, and a trainer forced to diverge ends FAILED
with `diverged` while its worker carries on with the other studies.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from service.client import Client
from tests.support import ServerProcess, WorkerGroup, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.tf,
    pytest.mark.skipif(
        importlib.util.find_spec("tensorflow") is None,
        reason="TensorFlow is not installed (pip install 'tunesmith[tf]')",
    ),
]

SMALL = {"epochs": 1, "train_size": 128, "split_seed": 0}
STUDIES: dict[str, dict[str, Any]] = {
    "softmax": {"objective_args": {**SMALL, "epochs": 2}},
    "vae": {"objective_args": {**SMALL, "architecture": "dense"}},
    "gan": {"objective_args": {**SMALL, "frechet_samples": 32, "classifier_epochs": 1}},
    "densenet": {
        "objective_args": {
            **SMALL,
            "train_size": 64,
            "image_size": 16,
            "down_blocks": 1,
            "first_filters": 8,
        },
        "space": {
            "growth_rate": {"type": "int", "low": 4, "high": 6},
            "layers_per_block": {"type": "int", "low": 1, "high": 2},
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        },
    },
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Client]]:
    workdir = tmp_path_factory.mktemp("trainers")
    server = ServerProcess(
        database_url=f"sqlite:///{workdir / 'trainers.db'}",
        workdir=workdir,
        lease_seconds=120,
        extra_env={"TUNESMITH_CACHE_DIR": str(workdir / "cache")},
    ).start()
    workers = WorkerGroup(server, ["--cpu-workers", "2"]).start()
    with server.client() as client:
        yield server, client
    workers.stop()
    server.stop()


STUDIES_TIMEOUT_S = 1200
"""All of one test's studies together (a few minutes idle, many more on a loaded machine);
each test's pytest timeout is this plus what it does beyond the wait."""


def _all_done(client: Client, study_ids: list[int]) -> Callable[[], bool]:
    return lambda: all(client.get_study(i).state.value == "done" for i in study_ids)


@pytest.fixture(scope="module")
def trainer_studies(live: tuple[ServerProcess, Client]) -> dict[str, int]:
    """One finished six-trial study per built-in trainer, by trainer name: created by
    whichever test asks first, so each test also runs alone or in any order."""
    server, client = live
    ids = {
        name: client.create_study(
            {
                "name": f"{name}-service",
                "objective": name,
                "strategy": {"name": "random", "seed": 1},
                "budget": {"max_trials": 6, "max_parallel": 2},
                **spec,
            }
        ).id
        for name, spec in STUDIES.items()
    }
    wait_until(
        _all_done(client, list(ids.values())),
        timeout=STUDIES_TIMEOUT_S,
        interval=2,
        what=f"the {', '.join(ids)} studies",
        detail=server.log_tail,
    )
    return ids


@pytest.mark.timeout(STUDIES_TIMEOUT_S + 300)
def test_each_trainer_runs_a_six_trial_study(
    live: tuple[ServerProcess, Client], trainer_studies: dict[str, int]
) -> None:
    _, client = live
    for name, study_id in trainer_studies.items():
        study = client.get_study(study_id)
        trials = client.trials(study_id)
        assert study.counts["complete"] == 6, (name, [t.error for t in trials])
        epochs = int(STUDIES[name]["objective_args"]["epochs"])
        for trial in trials:
            detail = client.trial(trial.id)
            assert [v.step for v in detail.values] == list(range(1, epochs + 1)), name
            assert any(a.name.endswith(".png") for a in detail.artifacts), name
            # Offline (TUNESMITH_OFFLINE), each trial says it trained on the stand-in data.
            assert detail.dataset is not None and detail.dataset.source == "fallback", name
        assert [d.source for d in study.datasets] == ["fallback"], name
        assert study.datasets[0].trials == 6, name
        assert any("standing in for" in w for w in study.warnings), (name, study.warnings)


@pytest.mark.timeout(STUDIES_TIMEOUT_S + 300)
def test_pruning_and_divergence_through_the_service(live: tuple[ServerProcess, Client]) -> None:
    server, client = live
    pruned = client.create_study(
        {
            "name": "softmax-asha",
            "objective": "softmax",
            "objective_args": {**SMALL, "epochs": 5},
            "strategy": {"name": "random", "seed": 2},
            "pruning": {"rule": "asha", "min_steps": 1, "reduction_factor": 2},
            "budget": {"max_trials": 6, "max_parallel": 2},
        }
    )
    diverging = client.create_study(
        {
            "name": "softmax-diverges",
            "objective": "softmax",
            "objective_args": {**SMALL, "clip_probabilities": False},
            "space": {
                "learning_rate": {"type": "fixed", "value": 1.0e6},
                "batch_size": {"type": "fixed", "value": 16},
                "optimizer": {"type": "fixed", "value": "sgd"},
            },
            "budget": {"max_trials": 1, "max_parallel": 1},
        }
    )
    real_only = client.create_study(
        {
            "name": "softmax-real-data-only",
            "objective": "softmax",
            "objective_args": {**SMALL, "data": {"require_real": True}},
            "budget": {"max_trials": 1, "max_parallel": 1},
        }
    )
    after = client.create_study(
        {
            "name": "softmax-after",
            "objective": "softmax",
            "objective_args": SMALL,
            "budget": {"max_trials": 2, "max_parallel": 2},
        }
    )
    studies = (pruned, diverging, real_only, after)
    wait_until(
        _all_done(client, [s.id for s in studies]),
        timeout=STUDIES_TIMEOUT_S,
        interval=2,
        what=", ".join(s.name for s in studies),
        detail=server.log_tail,
    )
    trials = client.trials(pruned.id)
    stopped = [t for t in trials if t.state.value == "pruned"]
    assert stopped, "ASHA with reduction factor 2 prunes some of 6 trials"
    assert all(t.step is not None and t.step < 5 for t in stopped)
    (failed,) = client.trials(diverging.id)
    assert failed.state.value == "failed"
    assert failed.error is not None and failed.error.startswith("diverged"), failed.error
    (refused,) = client.trials(real_only.id)
    assert refused.state.value == "failed" and refused.dataset is None
    assert (refused.error or "").startswith("DataUnavailable: "), refused.error
    assert client.get_study(after.id).counts["complete"] == 2, "the workers carried on"


@pytest.mark.timeout(STUDIES_TIMEOUT_S + 300)
def test_artifacts_are_real_images(
    live: tuple[ServerProcess, Client], trainer_studies: dict[str, int]
) -> None:
    _, client = live
    trial = client.trials(trainer_studies["vae"], state="complete")[0]
    detail = client.trial(trial.id)
    names = {a.name for a in detail.artifacts}
    assert {"reconstructions.png", "latent_grid.png"} <= names, names
    data = client.request("GET", f"/trials/{trial.id}/artifacts/reconstructions.png").content
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
