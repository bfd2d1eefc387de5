"""Stepped and conditional search spaces over REST: every refusal is a 422 naming the field;
suggestions of every strategy lie on the grid and carry only the active parameters; an
enqueued, suggested or imported configuration that names an inactive parameter is stored
without it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.space import SearchSpace
from tests.api.test_api import AUTH, client, create, locs, suggest

__all__ = ["client"]

SPACE: dict[str, Any] = {
    "arch": {"type": "categorical", "choices": ["dense", "conv"]},
    "hidden_units": {"type": "int", "low": 32, "high": 512, "condition": {"arch": ["dense"]}},
    "filters": {"type": "int", "low": 8, "high": 256, "step": 8, "condition": {"arch": ["conv"]}},
    "dropout": {"type": "float", "low": -1, "high": 1, "step": 0.05},
    "kernel": {"type": "categorical", "choices": [3, 5], "condition": {"filters": [8, 16, 24]}},
}


def loss(p: dict[str, Any]) -> float:
    units = p["hidden_units"] / 512 if p["arch"] == "dense" else p["filters"] / 256 - 0.5
    return units**2 + (p["dropout"] - 0.3) ** 2 + (0.1 if p.get("kernel") == 5 else 0.0)


def check(config: dict[str, Any]) -> None:
    """Exactly the active parameters, every stepped value on its grid."""
    space = SearchSpace.from_spec(SPACE)
    assert list(config) == space.active_names(config), config
    assert ("hidden_units" in config) == (config["arch"] == "dense")
    assert ("filters" in config) == (config["arch"] == "conv")
    assert ("kernel" in config) == (config.get("filters") in (8, 16, 24))
    if "filters" in config:
        assert config["filters"] % 8 == 0 and 8 <= config["filters"] <= 256
    k = (config["dropout"] + 1) / 0.05
    assert abs(k - round(k)) < 1e-9 and config["dropout"] == round(config["dropout"], 10)


def study_with(client: TestClient, strategy: dict[str, Any], name: str) -> dict[str, Any]:
    return create(
        client,
        name=name,
        objective="external",
        space=SPACE,
        strategy=strategy,
        budget={"max_trials": 100, "max_parallel": 8},
    )


@pytest.mark.parametrize(
    ("space", "field"),
    [
        ({"x": {"type": "float", "low": -1, "high": 1, "step": 0.3}}, "space.x.step"),
        ({"x": {"type": "int", "low": 8, "high": 250, "step": 8}}, "space.x.step"),
        ({"x": {"type": "float", "low": 0, "high": 1, "step": 0}}, "space.x.step"),
        ({"x": {"type": "float", "low": 1, "high": 9, "log": True, "step": 1}}, "space.x.step"),
        ({"x": {"type": "categorical", "choices": ["a"], "step": 1}}, "space.x.step"),
        (
            {"x": {"type": "float", "low": 0, "high": 1, "condition": {"opt": ["adam"]}}},
            "space.x.condition.opt",
        ),
        (
            {
                "lr": {"type": "float", "low": 0, "high": 1},
                "x": {"type": "float", "low": 0, "high": 1, "condition": {"lr": [0.5]}},
            },
            "space.x.condition.lr",
        ),
        (
            {
                "opt": {"type": "categorical", "choices": ["adam", "sgd"]},
                "x": {"type": "float", "low": 0, "high": 1, "condition": {"opt": ["rmsprop"]}},
            },
            "space.x.condition.opt",
        ),
        (
            {
                "n": {"type": "int", "low": 8, "high": 64, "step": 8},
                "x": {"type": "float", "low": 0, "high": 1, "condition": {"n": [12]}},
            },
            "space.x.condition.n",
        ),
        (
            {
                "a": {"type": "categorical", "choices": [1, 2], "condition": {"b": [1]}},
                "b": {"type": "categorical", "choices": [1, 2], "condition": {"a": [2]}},
            },
            "space.a.condition",
        ),
    ],
)
def test_bad_steps_and_conditions_are_422_naming_the_field(
    client: TestClient, space: dict[str, Any], field: str
) -> None:
    body = {"name": "s", "objective": "external", "space": space}
    response = client.post("/api/v1/studies", json=body, headers=AUTH)
    # pydantic puts the parameter's type tag in the location: space.x.float.step
    tags = {"float", "int", "categorical", "fixed"}
    named = [".".join(p for p in loc.split(".") if p not in tags) for loc in locs(response)]
    assert field in named, response.json()
    assert client.get("/api/v1/studies", headers=AUTH).json()["count"] == 0


def test_the_space_comes_back_as_given(client: TestClient) -> None:
    study = study_with(client, {"name": "random"}, "echo")
    assert study["space"]["filters"]["step"] == 8
    assert study["space"]["kernel"]["condition"] == {"filters": [8, 16, 24]}
    assert "step" not in study["space"]["hidden_units"]
    assert "condition" not in study["space"]["arch"]


@pytest.mark.parametrize("strategy", ["random", "sobol", "gp", "tpe", "skopt"])
def test_every_strategy_suggests_on_the_grid_with_only_active_parameters(
    client: TestClient, strategy: str
) -> None:
    study = study_with(client, {"name": strategy, "seed": 3, "n_initial": 5}, strategy)
    for _ in range(4):
        batch = suggest(client, study["id"], 3)
        for trial in batch:
            check(trial["params"])
        for trial in batch:
            response = client.post(
                f"/api/v1/trials/{trial['id']}/complete",
                json={"lease_token": trial["lease_token"], "value": loss(trial["params"])},
                headers=AUTH,
            )
            assert response.status_code == 200, response.text
    shown = client.get(f"/api/v1/studies/{study['id']}", headers=AUTH).json()
    assert shown["counts"]["complete"] == 12
    check(shown["best"]["params"])


def test_enqueue_drops_inactive_parameters_and_refuses_off_grid_values(
    client: TestClient,
) -> None:
    study = study_with(client, {"name": "gp"}, "enqueue")
    url = f"/api/v1/studies/{study['id']}/trials"
    given = {"arch": "dense", "hidden_units": 64, "filters": 32, "dropout": 0.25, "kernel": 3}
    response = client.post(url, json={"params": given}, headers=AUTH)
    assert response.status_code == 201, response.text
    assert response.json()["params"] == {"arch": "dense", "hidden_units": 64, "dropout": 0.25}
    for bad, name in [
        ({"arch": "conv", "filters": 20, "dropout": 0.0, "kernel": 3}, "filters"),
        ({"arch": "conv", "filters": 32, "dropout": 0.33}, "dropout"),
        ({"arch": "conv", "filters": 16, "dropout": 0.0}, "kernel"),
        ({"arch": "dense", "dropout": 0.0}, "hidden_units"),
    ]:
        response = client.post(url, json={"params": bad}, headers=AUTH)
        assert any(loc.endswith(name) for loc in locs(response)), response.json()
    (leased,) = suggest(client, study["id"], 1)
    assert leased["params"] == {"arch": "dense", "hidden_units": 64, "dropout": 0.25}


def test_an_imported_trial_with_an_inactive_parameter_is_accepted_and_modelled(
    client: TestClient,
) -> None:
    study = study_with(client, {"name": "gp", "n_initial": 3}, "source")
    for trial in suggest(client, study["id"], 4):
        client.post(
            f"/api/v1/trials/{trial['id']}/complete",
            json={"lease_token": trial["lease_token"], "value": loss(trial["params"])},
            headers=AUTH,
        )
    doc = client.get(f"/api/v1/studies/{study['id']}/export", headers=AUTH).json()
    first = doc["trials"][0]["params"]
    extra = "filters" if first["arch"] == "dense" else "hidden_units"
    first[extra] = 64
    response = client.post("/api/v1/studies/import?name=copy", json=doc, headers=AUTH)
    assert response.status_code == 201, response.text
    copy = response.json()["id"]
    client.post(f"/api/v1/studies/{copy}/resume", headers=AUTH)
    for trial in suggest(client, copy, 2):
        check(trial["params"])


def test_history_and_gp_view_of_a_conditional_study(client: TestClient) -> None:
    """Trials that do not use a conditional parameter show it as null in the history; the GP
    view along a conditional parameter (inactive at the centre of the cube) and along a
    stepped one answers, on the grid."""
    study = study_with(client, {"name": "gp", "n_initial": 4, "seed": 1}, "views")
    for _ in range(3):
        for trial in suggest(client, study["id"], 3):
            client.post(
                f"/api/v1/trials/{trial['id']}/complete",
                json={"lease_token": trial["lease_token"], "value": loss(trial["params"])},
                headers=AUTH,
            )
    history = client.get(f"/api/v1/studies/{study['id']}/history", headers=AUTH).json()
    arch, filters = history["params"]["arch"], history["params"]["filters"]
    assert all((f is None) == (a == "dense") for a, f in zip(arch, filters, strict=True))
    url = f"/api/v1/studies/{study['id']}/model"
    for param in ("filters", "kernel", "dropout"):
        response = client.get(url, params={"param": param, "points": 30}, headers=AUTH)
        assert response.status_code == 200, response.text
    view = client.get(url, params={"param": "filters", "points": 30}, headers=AUTH).json()
    assert all(v % 8 == 0 for v in view["x"]["values"])
