"""Several objectives, constraints and infeasible failures through the REST contract: the
422s name the field, completes carry `values` and `metrics`, `best` and the Pareto front
count feasible trials only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from tests.api.test_api import AUTH, SPACE, locs, settings_for, suggest

TWO = [{"metric": "loss", "direction": "minimize"}, {"metric": "accuracy", "direction": "maximize"}]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tmp_path))) as c:
        yield c


def study(client: TestClient, **spec: Any) -> dict[str, Any]:
    body = {
        "name": "mo",
        "objective": "external",
        "space": SPACE,
        "strategy": {"name": "random"},
        "budget": {"max_trials": 20, "max_parallel": 20},
        **spec,
    }
    response = client.post("/api/v1/studies", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def post(client: TestClient, trial: dict[str, Any], route: str, **body: Any) -> Any:
    return client.post(
        f"/api/v1/trials/{trial['id']}/{route}",
        json={"lease_token": trial["lease_token"], **body},
        headers=AUTH,
    )


def get_study(client: TestClient, study_id: int) -> dict[str, Any]:
    data: dict[str, Any] = client.get(f"/api/v1/studies/{study_id}", headers=AUTH).json()
    return data


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"objectives": TWO[:1]}, "objectives"),
        ({"objectives": [*TWO, *TWO]}, "objectives"),
        ({"objectives": [TWO[0], {**TWO[1], "metric": "loss"}]}, "objectives"),
        ({"objectives": TWO, "metric": "loss"}, "objectives"),
        ({"objectives": TWO, "direction": "maximize"}, "objectives"),
        ({"objectives": [TWO[0], {"metric": "x", "direction": "up"}]}, "objectives.1.direction"),
        ({"constraints": [{"metric": "n_params"}]}, "constraints.0"),
        ({"constraints": [{"metric": "n_params", "min": 2, "max": 1}]}, "constraints.0"),
        ({"constraints": [{"metric": "n_params", "max": "Infinity"}]}, "constraints.0.max"),
        ({"constraints": [{"metric": "n", "max": 1, "below": 2}]}, "constraints.0.below"),
    ],
)
def test_bad_objectives_and_constraints_are_422_naming_the_field(
    client: TestClient, extra: dict[str, Any], field: str
) -> None:
    body = {"name": "s", "objective": "external", "space": SPACE, **extra}
    response = client.post("/api/v1/studies", json=body, headers=AUTH)
    assert any(loc.startswith(field) for loc in locs(response)), response.json()
    assert client.get("/api/v1/studies", headers=AUTH).json()["count"] == 0


def test_two_objectives_complete_with_values_and_keep_a_pareto_front(client: TestClient) -> None:
    s = study(client, objectives=TWO)
    assert (s["metric"], s["direction"], s["best"]) == ("loss", "minimize", None)
    assert [o["metric"] for o in s["objectives"]] == ["loss", "accuracy"]
    assert s["pareto"] == []
    t = suggest(client, s["id"], 5)
    # loss down, accuracy up: (1, .5) and (2, .9) and the duplicate (2, .9) trade off;
    # (3, .8) is dominated by (2, .9), (1, .4) by (1, .5).
    results = [[1.0, 0.5], [2.0, 0.9], [3.0, 0.8], [2.0, 0.9], [1.0, 0.4]]
    for trial, values in zip(t, results, strict=True):
        response = post(client, trial, "complete", values=values)
        assert response.status_code == 200, response.text
        assert response.json()["objective_values"] == values
        assert response.json()["value"] == values[0]
    after = get_study(client, s["id"])
    assert after["best"] is None
    front = {p["trial_id"]: p["values"] for p in after["pareto"]}
    assert front == {t[0]["id"]: [1.0, 0.5], t[1]["id"]: [2.0, 0.9], t[3]["id"]: [2.0, 0.9]}
    params = [p["params"] for p in after["pareto"]]
    assert params == [t[0]["params"], t[1]["params"], t[3]["params"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"values": [1.0]}, "values"),
        ({"values": [1.0, 2.0, 3.0]}, "values"),
        ({"value": 1.0}, "value"),
        ({}, "values"),
    ],
)
def test_values_that_do_not_fit_the_objectives_are_422(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    s = study(client, objectives=TWO)
    (trial,) = suggest(client, s["id"], 1)
    assert locs(post(client, trial, "complete", **body)) == [field]
    detail = client.get(f"/api/v1/trials/{trial['id']}", headers=AUTH).json()
    assert detail["state"] == "running"


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "1e999"])
def test_non_finite_values_and_metrics_are_422(client: TestClient, bad: str) -> None:
    s = study(client, objectives=TWO)
    (trial,) = suggest(client, s["id"], 1)
    for raw, field in (
        (f'"values": [1.0, {bad}]', "values.1"),
        (f'"values": [1.0, 2.0], "metrics": {{"n": {bad}}}', "metrics.n"),
    ):
        response = client.post(
            f"/api/v1/trials/{trial['id']}/complete",
            content=f'{{"lease_token": "{trial["lease_token"]}", {raw}}}',
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert locs(response) == [field], response.json()


def test_one_objective_study_refuses_values(client: TestClient) -> None:
    s = study(client)
    (trial,) = suggest(client, s["id"], 1)
    assert locs(post(client, trial, "complete", values=[1.0, 2.0])) == ["values"]
    assert post(client, trial, "complete", value=1.0).status_code == 200


def test_constraints_decide_feasibility_and_best_counts_feasible_trials_only(
    client: TestClient,
) -> None:
    limits = [{"metric": "n_params", "max": 2e6}, {"metric": "acc", "min": 0.5}]
    s = study(client, constraints=limits)
    assert [c["metric"] for c in s["constraints"]] == ["n_params", "acc"]
    a, b, c = suggest(client, s["id"], 3)
    response = post(client, a, "complete", value=0.1)
    assert locs(response) == ["metrics.acc"]
    # Metrics may come with reports and be completed later (the latest value wins).
    assert post(client, a, "report", step=1, value=0.3, metrics={"acc": 0.2}).status_code == 200
    done = post(client, a, "complete", value=0.1, metrics={"n_params": 1e6, "acc": 0.9})
    assert done.json()["feasible"] is True
    assert done.json()["metrics"] == {"acc": 0.9, "n_params": 1e6}
    # Better value, over the parameter budget: infeasible, not the best.
    over = post(client, b, "complete", value=0.01, metrics={"n_params": 3e6, "acc": 0.9})
    assert over.json()["feasible"] is False
    assert get_study(client, s["id"])["best"]["trial_id"] == a["id"]
    # Exactly on the bound holds.
    edge = post(client, c, "complete", value=0.05, metrics={"n_params": 2e6, "acc": 0.5})
    assert edge.json()["feasible"] is True
    assert get_study(client, s["id"])["best"]["trial_id"] == c["id"]


def test_pareto_front_counts_feasible_trials_only(client: TestClient) -> None:
    s = study(client, objectives=TWO, constraints=[{"metric": "n_params", "max": 10}])
    a, b = suggest(client, s["id"], 2)
    post(client, a, "complete", values=[1.0, 0.5], metrics={"n_params": 5})
    post(client, b, "complete", values=[0.5, 0.9], metrics={"n_params": 50})
    front = get_study(client, s["id"])["pareto"]
    assert [p["trial_id"] for p in front] == [a["id"]]


def test_infeasible_failure_is_recorded_as_infeasible(client: TestClient) -> None:
    s = study(client)
    a, b = suggest(client, s["id"], 2)
    oom = post(client, a, "fail", reason="ResourceExhaustedError: OOM", infeasible=True)
    assert (oom.json()["state"], oom.json()["feasible"]) == ("failed", False)
    plain = post(client, b, "fail", reason="a bug")
    assert (plain.json()["state"], plain.json()["feasible"]) == ("failed", None)
    # Repeating the fail changes nothing.
    again = post(client, a, "fail", reason="ResourceExhaustedError: OOM", infeasible=True)
    assert again.json()["feasible"] is False


def test_warm_start_from_an_earlier_two_objective_study(client: TestClient) -> None:
    """The earlier study's value vectors reach the new one: its best configuration is queued
    first, and the gp strategy models the earlier trials (no Sobol design) from the start."""
    source = study(client, name="mo-src", objectives=TWO)
    for t in suggest(client, source["id"], 8):
        x = t["params"]["x"]
        assert post(client, t, "complete", values=[x, 1 - x * x]).status_code == 200
    warm = study(
        client,
        name="mo-warm",
        objectives=TWO,
        strategy={"name": "gp", "seed": 1},
        warm_start={"studies": ["mo-src"]},
    )
    first = suggest(client, warm["id"], 3)
    assert first[0]["source"] == "warm_start"
    assert [t["suggestion"].get("source") for t in first[1:]] == ["gp", "gp"]
