"""TunesmithSearch: a local Ray cluster runs a Tune experiment on trials from a real server."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

tune = pytest.importorskip("ray.tune")

import ray  # noqa: E402

from service.integrations.ray_space import RaySpace  # noqa: E402
from service.integrations.ray_tune import TunesmithSearch  # noqa: E402
from tests.support import ADMIN_TOKEN, ServerProcess  # noqa: E402


def test_space_maps_every_domain() -> None:
    space = RaySpace(
        {
            "lr": tune.loguniform(1e-4, 1e-1),
            "x": tune.uniform(-1, 1),
            "n": tune.randint(1, 4),
            "w": tune.lograndint(8, 1025),
            "model": {"units": tune.qrandint(8, 64, 8), "drop": tune.quniform(0.1, 0.5, 0.1)},
            "q1": tune.qrandint(0, 3, 1),
            "act": tune.choice(["relu", "tanh"]),
            "layers": tune.choice([[64], [64, 32], None]),
            "epochs": 3,
        }
    )
    spec = space.space.to_spec()
    assert spec["lr"] == {"type": "float", "low": 1e-4, "high": 0.1, "log": True}
    assert spec["n"] == {"type": "int", "low": 1, "high": 3, "log": False}
    assert spec["w"] == {"type": "int", "low": 8, "high": 1024, "log": True}
    assert spec["model/units"]["choices"] == [8, 16, 24, 32, 40, 48, 56, 64]
    assert spec["model/drop"]["choices"] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert spec["q1"]["choices"] == [0, 1, 2]
    assert spec["layers"]["choices"] == ["[64]", "[64, 32]", "None"]
    assert "epochs" not in spec
    config = space.host_config(
        {
            "lr": 0.01,
            "x": 0.5,
            "n": 2,
            "w": 64,
            "model/units": 16,
            "model/drop": 0.3,
            "q1": 0,
            "act": "tanh",
            "layers": "[64, 32]",
        }
    )
    assert config["model"] == {"units": 16, "drop": 0.3} and config["layers"] == [64, 32]


@pytest.mark.parametrize(
    ("domain", "message"),
    [(tune.randn(), "not a uniform"), (tune.grid_search([1, 2]), "grid_search")],
)
def test_unsearchable_domains_are_refused(domain: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RaySpace({"p": domain})


def test_a_saved_searcher_keeps_no_token(tmp_path: Path) -> None:
    search = TunesmithSearch(
        {"x": tune.uniform(0, 1)}, "m", "min", study_name="s", token="s3cr3t-token"
    )
    copy = pickle.loads(pickle.dumps(search))
    assert copy.token is None and copy.study_name == "s" and copy.metric == "m"
    search.save(str(tmp_path / "searcher.pkl"))
    assert b"s3cr3t" not in (tmp_path / "searcher.pkl").read_bytes()
    restored = TunesmithSearch(study_name="other", token="mine")
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert (restored.study_name, restored.token, restored.mode) == ("s", "mine", "min")


@pytest.fixture
def local_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _train(config: dict[str, Any]) -> None:
    for step in range(1, 4):
        loss = (config["x"] - 1) ** 2 + config["model"]["units"] / 64 + 1 / step
        tune.report({"loss": loss, "const": config["const"]})


@pytest.mark.slow
def test_a_tune_experiment_runs_on_trials_from_the_server(
    start_server: Callable[..., ServerProcess], local_ray: None, tmp_path: Path
) -> None:
    server = start_server()
    search = TunesmithSearch(
        study_name="ray-quad",
        server=server.url,
        token=ADMIN_TOKEN,
        n_initial=3,
        seed=0,
        pruning={"rule": "median", "min_trials": 1},
    )
    tuner = tune.Tuner(
        _train,
        param_space={
            "x": tune.uniform(-2, 2),
            "model": {"units": tune.qrandint(8, 64, 8)},
            "const": 7,
        },
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", search_alg=search, num_samples=8, max_concurrent_trials=2
        ),
        run_config=tune.RunConfig(
            name="ray-quad", storage_path=str(tmp_path), stop=search.stopper(), verbose=0
        ),
    )
    results = tuner.fit()
    assert not results.errors

    client = server.client()
    study = client.find_study("ray-quad")
    assert study is not None and (study.metric, study.direction) == ("loss", "minimize")
    served = {(t.params["x"], t.params["model/units"]): t for t in client.trials(study.id)}
    assert len(served) == 8 and {t.state for t in served.values()} <= {"complete", "pruned"}
    for result in results:
        config = result.config
        trial = served[(config["x"], config["model"]["units"])]
        assert result.metrics["const"] == 7
        iterations = result.metrics["training_iteration"]
        if trial.state == "complete":
            assert trial.value == pytest.approx(result.metrics["loss"]) and iterations == 3
        else:  # pruned on the server (at its last step too), stopped by Tune at that step
            assert iterations == trial.step <= 3
    assert any(t.state == "pruned" for t in served.values())
