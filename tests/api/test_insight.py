"""The dashboard's JSON views: history, curves, the GP model and parameter importance."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings

TOKEN = "insight-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'insight.db'}",
        admin_token=TOKEN,
        token_file=tmp_path / "token",
        artifact_dir=tmp_path / "artifacts",
    )
    with TestClient(create_app(settings), headers=AUTH) as client:
        yield client


def _study(api: TestClient, name: str, **spec: Any) -> dict[str, Any]:
    budget = {"max_trials": 40, "max_parallel": 64}
    body = {"name": name, "objective": "synthetic", "budget": budget, **spec}
    response = api.post("/api/v1/studies", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _loss(params: dict[str, Any]) -> float:
    return (params["x"] - 0.3) ** 2 + (params["y"] - 0.6) ** 2 + (params["kind"] == "b") * 0.1


def _ask_tell(api: TestClient, study_id: int, n: int, *, steps: int = 0) -> list[dict[str, Any]]:
    """Asks for `n` trials and completes each with the synthetic loss (after `steps` reports)."""
    response = api.post(f"/api/v1/studies/{study_id}/suggestions", json={"count": n})
    assert response.status_code == 200, response.text
    trials: list[dict[str, Any]] = response.json()["data"]
    for t in trials:
        lease = {"lease_token": t["lease_token"]}
        for step in range(1, steps + 1):
            body = {**lease, "step": step, "value": _loss(t["params"]) + 1.0 / step}
            assert api.post(f"/api/v1/trials/{t['id']}/report", json=body).status_code == 200
        body = {**lease, "value": _loss(t["params"])}
        assert api.post(f"/api/v1/trials/{t['id']}/complete", json=body).status_code == 200
    return trials


def test_history_columns_and_best_so_far(api: TestClient) -> None:
    study = _study(api, "hist")
    _ask_tell(api, study["id"], 6)
    _ask_tell(api, study["id"], 6)
    body = api.get(f"/api/v1/studies/{study['id']}/history").json()
    assert body["count"] == 12 and not body["downsampled"]
    assert body["number"] == list(range(12))
    values = body["value"]
    assert body["best"] == [min(values[: i + 1]) for i in range(12)]
    assert set(body["params"]) == {"x", "y", "kind"}
    assert len(body["params"]["x"]) == 12
    gp_rows = [i for i, s in enumerate(body["source"]) if s == "gp"]
    assert gp_rows, "later trials are GP suggestions with a stored prediction"
    assert all(body["predicted_mean"][i] is not None for i in gp_rows)


def test_history_downsamples_but_keeps_every_improvement(api: TestClient) -> None:
    budget = {"max_trials": 80, "max_parallel": 64}
    study = _study(api, "many", strategy={"name": "random"}, budget=budget)
    for _ in range(5):
        _ask_tell(api, study["id"], 16)
    full = api.get(f"/api/v1/studies/{study['id']}/history", params={"max_points": 1000}).json()
    small = api.get(f"/api/v1/studies/{study['id']}/history", params={"max_points": 20}).json()
    assert full["count"] == small["count"] == 80
    assert small["downsampled"] and len(small["number"]) < 40
    improvements = [
        n for i, n in enumerate(full["number"]) if i == 0 or full["best"][i] != full["best"][i - 1]
    ]
    assert set(improvements) <= set(small["number"])
    assert small["best"][-1] == full["best"][-1] == min(full["value"])


def test_curves_include_running_trials(api: TestClient) -> None:
    study = _study(api, "curves")
    _ask_tell(api, study["id"], 3, steps=4)
    (running,) = api.post(f"/api/v1/studies/{study['id']}/suggestions", json={"count": 1}).json()[
        "data"
    ]
    body = {"lease_token": running["lease_token"], "step": 1, "value": 2.5}
    api.post(f"/api/v1/trials/{running['id']}/report", json=body)
    data = api.get(f"/api/v1/studies/{study['id']}/curves").json()["data"]
    assert [c["state"] for c in data] == ["complete"] * 3 + ["running"]
    assert data[0]["steps"] == [1, 2, 3, 4]
    assert data[-1]["values"] == [2.5]


def test_model_view_one_dimension(api: TestClient) -> None:
    study = _study(api, "gp1")
    _ask_tell(api, study["id"], 8)
    pending = api.post(f"/api/v1/studies/{study['id']}/suggestions", json={"count": 2}).json()
    response = api.get(f"/api/v1/studies/{study['id']}/model", params={"param": "x"})
    assert response.status_code == 200, response.text
    view = response.json()
    curve = view["curve"]
    assert view["x"]["name"] == "x" and len(view["x"]["values"]) == 100
    assert len(curve["mean"]) == len(curve["acquisition"]) == 100
    assert all(math.isfinite(v) for v in curve["mean"] + curve["acquisition"])
    band = zip(curve["lower"], curve["mean"], curve["upper"], strict=True)
    assert all(lo <= m <= hi for lo, m, hi in band)
    assert view["n_observations"] == 8 and len(view["observed"]) == 8
    assert {p["trial_id"] for p in view["pending"]} == {t["id"] for t in pending["data"]}
    incumbent = view["incumbent"]
    assert incumbent["value"] == min(p["value"] for p in view["observed"])
    assert view["acquisition"] in ("ucb", "pi", "ei")
    assert view["surface"] is None and not view["warnings"]


def test_model_view_is_the_model_that_chose_the_trials_of_a_warm_study(
    api: TestClient,
) -> None:
    """The view's mean at a trial just suggested equals the mean the strategy stored with it:
    the same model, earlier studies' prior included (a model without the prior, or another
    refit, predicts elsewhere)."""
    space = {
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "y": {"type": "float", "low": 0.0, "high": 1.0},
        "kind": {"type": "categorical", "choices": ["a", "b"]},
    }
    earlier = _study(api, "earlier", objective="external", space=space)
    _ask_tell(api, earlier["id"], 12)
    warm = _study(
        api, "warm", objective="external", space=space, warm_start={"studies": ["earlier"]}
    )
    _ask_tell(api, warm["id"], 3)
    _ask_tell(api, warm["id"], 3)
    response = api.post(f"/api/v1/studies/{warm['id']}/suggestions", json={"count": 1})
    (asked,) = response.json()["data"]
    assert asked["source"] == "gp" and asked["suggestion"]["mean"] is not None
    view = api.get(f"/api/v1/studies/{warm['id']}/model", params={"param": "x"}).json()
    (pending,) = [p for p in view["pending"] if p["trial_id"] == asked["id"]]
    assert pending["mean"] == pytest.approx(asked["suggestion"]["mean"], rel=1e-6, abs=1e-9)
    assert view["n_observations"] == 6
    for point in view["observed"]:
        assert point["mean"] is not None and math.isfinite(point["mean"])


def test_model_view_two_dimensions_and_categorical_axis(api: TestClient) -> None:
    study = _study(api, "gp2", strategy={"name": "gp", "acquisition": "ucb"})
    _ask_tell(api, study["id"], 6)
    url = f"/api/v1/studies/{study['id']}/model"
    view = api.get(url, params={"param": "x", "param2": "kind", "points": 10}).json()
    assert view["acquisition"] == "ucb"
    assert view["y"] == {"name": "kind", "kind": "categorical", "log": False, "values": ["a", "b"]}
    assert len(view["surface"]["mean"]) == 2 and len(view["surface"]["mean"][0]) == 10
    ei = api.get(url, params={"param": "kind", "acquisition": "ei"}).json()
    assert ei["acquisition"] == "ei" and len(ei["curve"]["mean"]) == 2


def test_model_view_errors_name_the_problem(api: TestClient) -> None:
    study = _study(api, "gp-few")
    url = f"/api/v1/studies/{study['id']}/model"
    response = api.get(url, params={"param": "x"})
    assert response.status_code == 409
    assert "at least 2" in response.json()["detail"]
    _ask_tell(api, study["id"], 3)
    bad = api.get(url, params={"param": "nope"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "param"]
    assert "nope" in bad.json()["detail"][0]["msg"]
    assert api.get(url, params={"param": "x", "param2": "x"}).status_code == 422
    assert api.get("/api/v1/studies/999/model", params={"param": "x"}).status_code == 404


def test_model_view_of_a_non_gp_study_warns(api: TestClient) -> None:
    study = _study(api, "rand", strategy={"name": "random"})
    _ask_tell(api, study["id"], 4)
    view = api.get(f"/api/v1/studies/{study['id']}/model", params={"param": "y"}).json()
    assert any("diagnostic surrogate" in w for w in view["warnings"])


def test_importance_ranks_the_parameter_that_matters(api: TestClient) -> None:
    study = _study(
        api,
        "imp",
        strategy={"name": "random"},
        budget={"max_trials": 60, "max_parallel": 64},
        space={
            "x": {"type": "float", "low": 0.0, "high": 1.0},
            "y": {"type": "float", "low": 0.59, "high": 0.61},
            "kind": {"type": "categorical", "choices": ["a"]},
        },
    )
    url = f"/api/v1/studies/{study['id']}/importance"
    assert api.get(url).status_code == 409
    _ask_tell(api, study["id"], 60)
    body = api.get(url).json()
    assert body["n_trials"] == 60
    shares = {p["name"]: p["importance"] for p in body["data"]}
    assert set(shares) == {"x", "y", "kind"}
    assert body["data"][0]["name"] == "x" and shares["x"] > 0.8
    assert math.isclose(sum(shares.values()), 1.0, rel_tol=1e-9)


def test_views_need_a_reader_token(api: TestClient) -> None:
    for path in ("history", "curves", "importance", "model?param=x"):
        response = api.get(f"/api/v1/studies/1/{path}", headers={"Authorization": ""})
        assert response.status_code == 401


def test_views_are_documented_and_pages_are_not(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for view in ("history", "curves", "model", "importance"):
        operation = paths[f"/api/v1/studies/{{study_id}}/{view}"]["get"]
        assert "200" in operation["responses"]
        assert "$ref" in operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert not any(p == "/" or p.startswith(("/static", "/workers", "/new")) for p in paths)


def test_dashboard_pages_and_plotly_are_served(api: TestClient) -> None:
    for page in ("/", "/studies/1", "/trials/3", "/workers", "/new"):
        response = api.get(page, headers={"Authorization": ""})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "/static/app.js" in response.text
    plotly = api.get("/static/plotly.min.js")
    assert plotly.status_code == 200
    assert plotly.headers["content-type"].startswith("text/javascript")
    assert len(plotly.content) > 1_000_000
    app_js = api.get("/static/app.js")
    assert app_js.status_code == 200 and "text/javascript" in app_js.headers["content-type"]
    assert api.get("/static/..%2Fapi%2Fdashboard.py").status_code == 404
    assert api.get("/static/missing.js").status_code == 404


SEED = 11  # a fixed study seed: a fixed Sobol design (12 random ones sometimes fit a classifier
# that credits `kind` or `y` with the failures)


def test_model_view_shows_the_feasibility_estimate(api: TestClient) -> None:
    """Trials with x > 0.7 run out of memory (failed as infeasible): the GP view's
    feasibility is low there and high where trials completed; the view's observed points are
    the completed trials (the infeasible ones are no observations of the objective)."""
    study = _study(api, "feasible", strategy={"name": "sobol"}, seed=SEED)
    response = api.post(f"/api/v1/studies/{study['id']}/suggestions", json={"count": 16})
    trials = response.json()["data"]
    ran = []
    for t in trials:
        lease = {"lease_token": t["lease_token"]}
        if t["params"]["x"] > 0.7:
            body = {**lease, "reason": "out of memory", "infeasible": True}
            assert api.post(f"/api/v1/trials/{t['id']}/fail", json=body).status_code == 200
        else:
            body = {**lease, "value": _loss(t["params"])}
            assert api.post(f"/api/v1/trials/{t['id']}/complete", json=body).status_code == 200
            ran.append(t["id"])
    view = api.get(f"/api/v1/studies/{study['id']}/model", params={"param": "x"}).json()
    xs, p = view["x"]["values"], view["curve"]["feasibility"]
    assert len(p) == len(xs)
    assert max(q for x, q in zip(xs, p, strict=True) if x > 0.85) < 0.2
    assert min(q for x, q in zip(xs, p, strict=True) if x < 0.5) > 0.8
    assert sorted(o["trial_id"] for o in view["observed"]) == sorted(ran)
    plain = _study(api, "no-failures", strategy={"name": "sobol"})
    _ask_tell(api, plain["id"], 6)
    view = api.get(f"/api/v1/studies/{plain['id']}/model", params={"param": "x"}).json()
    assert view["curve"]["feasibility"] is None


def test_model_view_shows_the_feasibility_of_a_constrained_study(api: TestClient) -> None:
    """A constraint on a reported metric (`size` = x, at most 0.5) and a loss best at
    x = 0.8: the curve and the surface carry the modelled probability feasible, high where
    size is well within the bound and low well past it; the incumbent the slice goes through
    is the best feasible trial, and the acquisition is weighted as the strategy weights it
    (about 0 where it could not suggest). An unconstrained study's surface has none."""
    limits = [{"metric": "size", "max": 0.5}]
    study = _study(api, "constrained", strategy={"name": "sobol"}, seed=SEED, constraints=limits)
    response = api.post(f"/api/v1/studies/{study['id']}/suggestions", json={"count": 12})
    values: dict[int, float] = {}
    for t in response.json()["data"]:
        x = t["params"]["x"]
        values[t["id"]] = (x - 0.8) ** 2 + (t["params"]["y"] - 0.6) ** 2
        body = {"lease_token": t["lease_token"], "value": values[t["id"]], "metrics": {"size": x}}
        assert api.post(f"/api/v1/trials/{t['id']}/complete", json=body).status_code == 200
    url = f"/api/v1/studies/{study['id']}/model"
    view = api.get(url, params={"param": "x", "acquisition": "ei"}).json()
    xs, p = view["x"]["values"], view["curve"]["feasibility"]
    assert len(p) == len(xs) and all(0.0 <= q <= 1.0 for q in p)
    assert max(q for x, q in zip(xs, p, strict=True) if x > 0.75) < 0.1
    assert min(q for x, q in zip(xs, p, strict=True) if x < 0.25) > 0.9
    assert view["incumbent"]["params"]["x"] <= 0.5
    assert min(values.values()) < view["incumbent"]["value"]  # the best one is infeasible
    acquisition = view["curve"]["acquisition"]
    assert max(a for x, a in zip(xs, acquisition, strict=True) if x > 0.75) < 1e-6 * max(
        acquisition
    )
    view = api.get(url, params={"param": "x", "param2": "y", "points": 12}).json()
    xs, surface = view["x"]["values"], view["surface"]["feasibility"]
    assert len(surface) == len(view["y"]["values"]) and all(len(r) == len(xs) for r in surface)
    for row in surface:
        assert max(q for x, q in zip(xs, row, strict=True) if x > 0.75) < 0.1
        assert min(q for x, q in zip(xs, row, strict=True) if x < 0.25) > 0.9
    plain = _study(api, "unconstrained", strategy={"name": "sobol"})
    _ask_tell(api, plain["id"], 6)
    url = f"/api/v1/studies/{plain['id']}/model"
    view = api.get(url, params={"param": "x", "param2": "y", "points": 12}).json()
    assert view["surface"]["feasibility"] is None
