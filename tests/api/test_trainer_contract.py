"""The trainer contract, checked when a study is created or imported: a space names only
parameters its trainer reads, every parameter it leaves out takes the declared default (the
trainer gets it as a fixed parameter), and one without a default is required."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from objectives.base import Objective, ParameterMismatch
from objectives.registry import available
from service.core.advice import study_advice
from service.space import SearchSpace
from service.store.models import Study
from tests.api.test_api import AUTH, client, locs  # noqa: F401  (fixture)

PLUGIN_LIKE = Objective(
    name="mlp",
    description="",
    metric="val_accuracy",
    direction="maximize",
    space={
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "units": {"type": "int", "low": 32, "high": 1024, "log": True},
    },
    train="unused:train",
)


def post(client: TestClient, **spec: Any) -> Any:  # noqa: F811
    body = {"name": "c", "strategy": {"name": "random"}, **spec}
    return client.post("/api/v1/studies", json=body, headers=AUTH)


def test_left_out_parameters_take_their_defaults(client: TestClient) -> None:  # noqa: F811
    response = post(client, objective="synthetic",
                    space={"x": {"type": "float", "low": 0.0, "high": 1.0}})
    assert response.status_code == 201, response.text
    space = response.json()["space"]
    assert space["y"] == {"type": "fixed", "value": 0.5}
    assert space["kind"] == {"type": "fixed", "value": "a"}
    study_id = response.json()["id"]
    lease = client.post("/api/v1/workers/w1/lease", json={}, headers=AUTH).json()
    assert lease["trial"]["study_id"] == study_id
    assert lease["trial"]["params"]["y"] == 0.5 and lease["trial"]["params"]["kind"] == "a"


def test_unknown_parameter_is_refused_naming_it(client: TestClient) -> None:  # noqa: F811
    response = post(client, objective="synthetic",
                    space={"z": {"type": "float", "low": 0.0, "high": 1.0}})
    assert response.status_code == 422
    assert locs(response) == ["space.z"]
    message = response.json()["detail"][0]["msg"]
    assert "'z'" in message and "['kind', 'x', 'y']" in message


def test_parameter_other_arguments_use_is_refused(client: TestClient) -> None:  # noqa: F811
    """`filters` is the conv VAE's: the dense one would fail every trial on it."""
    response = post(client, objective="vae", objective_args={"architecture": "dense"},
                    space={"filters": {"type": "int", "low": 8, "high": 64}})
    assert response.status_code == 422
    assert locs(response) == ["space.filters"]
    assert "with these objective_args" in response.json()["detail"][0]["msg"]
    ok = post(client, objective="vae", objective_args={"architecture": "conv"},
              space={"filters": {"type": "int", "low": 8, "high": 64}})
    assert ok.status_code == 201, ok.text
    assert ok.json()["space"]["latent_dim"] == {"type": "fixed", "value": 2}


def test_import_is_checked_too(client: TestClient) -> None:  # noqa: F811
    created = post(client, objective="synthetic")
    assert created.status_code == 201
    doc = client.get(f"/api/v1/studies/{created.json()['id']}/export", headers=AUTH).json()
    doc["study"]["space"]["z"] = {"type": "float", "low": 0.0, "high": 1.0}
    response = client.post("/api/v1/studies/import?name=again", json=doc, headers=AUTH)
    assert response.status_code == 422, response.text
    assert locs(response) == ["study.space.z"]


def test_external_studies_are_exempt(client: TestClient) -> None:  # noqa: F811
    response = post(client, objective="external",
                    space={"anything": {"type": "float", "low": 0.0, "high": 1.0}})
    assert response.status_code == 201, response.text
    assert list(response.json()["space"]) == ["anything"]


def test_a_parameter_without_default_is_required() -> None:
    with pytest.raises(ParameterMismatch, match="needs parameter 'units', which has no default"):
        PLUGIN_LIKE.complete_space(
            {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1}}, {}
        )
    full = PLUGIN_LIKE.complete_space(None, {})
    assert full == {name: dict(spec) for name, spec in PLUGIN_LIKE.space.items()}


@pytest.mark.parametrize("name", sorted(available()))
def test_builtin_defaults_lie_in_their_ranges(name: str) -> None:
    """A default is a value of its parameter's range: a study that leaves every parameter
    with a default out trains the source recipe. Only branin (a benchmark function) has
    parameters without one."""
    declared = available()[name].parameters_for({})
    ranges = {k: {f: v for f, v in spec.items() if f != "default"} for k, spec in declared.items()}
    defaults = {k: spec["default"] for k, spec in declared.items() if "default" in spec}
    assert set(defaults) == (set() if name in ("branin", "zdt") else set(declared))
    fixed = {k: {"type": "fixed", "value": 0.0} for k in set(declared) - set(defaults)}
    SearchSpace.from_spec({**ranges, **fixed}).validate(defaults)
    assert available()[name].describe()["parameters"] == declared


def test_a_gp_budget_within_its_initial_design_is_a_warning(
    client: TestClient,  # noqa: F811
) -> None:
    small = post(client, name="small", objective="vae", strategy={"name": "gp"},
                 budget={"max_trials": 6})
    assert small.status_code == 201, small.text
    warning = "budget.max_trials (6) is not larger than the initial design"
    shown = client.get(f"/api/v1/studies/{small.json()['id']}", headers=AUTH).json()
    assert any(w.startswith(warning) and "n_initial: 10" in w for w in shown["warnings"])
    raised = client.patch(f"/api/v1/studies/{small.json()['id']}",
                          json={"budget": {"max_trials": 30}}, headers=AUTH).json()
    assert not any(w.startswith("budget.max_trials") for w in raised["warnings"])
    explicit = post(client, name="explicit", objective="vae",
                    strategy={"name": "gp", "n_initial": 3}, budget={"max_trials": 6})
    assert explicit.json()["warnings"] == []
    random = post(client, name="rand", objective="vae", budget={"max_trials": 6})
    assert random.json()["warnings"] == []


def test_a_parameter_the_trainer_no_longer_reads_is_a_dead_parameter_warning() -> None:
    """A study stored before the contract (or before a plugin upgrade dropped `z`)."""
    study = Study(objective="synthetic", objective_args={}, warm_start=None,
                  strategy={"name": "random"}, budget={"max_trials": 5},
                  space={"x": {"type": "float", "low": 0.0, "high": 1.0},
                         "z": {"type": "float", "low": 0.0, "high": 1.0}})
    assert study_advice(study) == [
        "dead parameter: space.z is not read by objective 'synthetic' with these "
        "objective_args; searching it changes nothing (its parameters: ['kind', 'x', 'y'])"
    ]
    study.objective = "external"
    assert study_advice(study) == []


def test_a_study_stopped_by_failures_says_so(client: TestClient) -> None:  # noqa: F811
    created = post(client, objective="synthetic", budget={"max_trials": 5,
                                                          "max_consecutive_failures": 2})
    study_id = created.json()["id"]
    assert created.json()["stop_kind"] is None
    for _ in range(2):
        trial = client.post("/api/v1/workers/w1/lease", json={}, headers=AUTH).json()["trial"]
        failed = client.post(f"/api/v1/trials/{trial['id']}/fail", headers=AUTH,
                             json={"lease_token": trial["lease_token"], "reason": "KeyError: 'u'"})
        assert failed.status_code == 200, failed.text
    shown = client.get(f"/api/v1/studies/{study_id}", headers=AUTH).json()
    assert (shown["state"], shown["stop_kind"]) == ("stopped", "failures")
    assert "the last 2 trials failed" in shown["stop_reason"]
    assert "KeyError: 'u'" in shown["stop_reason"]
    listed = client.get("/api/v1/studies", headers=AUTH).json()["data"]
    assert [s["stop_kind"] for s in listed] == ["failures"]


def test_a_space_without_a_required_parameter_is_a_422(client: TestClient) -> None:  # noqa: F811
    response = post(client, objective="branin",
                    space={"x1": {"type": "float", "low": -5.0, "high": 10.0}})
    assert locs(response) == ["space"]
    assert "needs parameter 'x2', which has no default" in response.json()["detail"][0]["msg"]
