"""Through the REST API (FastAPI's TestClient, lifespan included, a real SQLite database):
a model-based study keeps one suggestion ready after a lease (prefetching, on by default),
and PATCH /studies/{id} refuses a budget below the study's trial count, naming the field,
and reopens a study that used its budget when the budget grows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from tests.support import wait_until

TOKEN = "prefetch-admin-token"
P = "/api/v1"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'prefetch.db'}",
        admin_token=TOKEN,
        token_file=tmp_path / "token",
        artifact_dir=tmp_path / "artifacts",
    )
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def _study(api: TestClient, name: str, strategy: str, max_trials: int) -> int:
    body = {
        "name": name,
        "objective": "synthetic",
        "strategy": {"name": strategy},
        "budget": {"max_trials": max_trials, "max_parallel": 1},
    }
    response = api.post(f"{P}/studies", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _trials(api: TestClient, study: int, state: str) -> list[dict[str, Any]]:
    body = api.get(f"{P}/studies/{study}/trials", params={"state": state}).json()
    return list(body["data"])


def _lease(api: TestClient, worker: str, **body: Any) -> dict[str, Any]:
    response = api.post(f"{P}/workers/{worker}/lease", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json()["trial"])


def test_a_lease_of_a_gp_study_prefetches_the_next_suggestion(api: TestClient) -> None:
    study = _study(api, "prefetched", "gp", max_trials=5)
    first = _lease(api, "w1")
    queued = wait_until(
        lambda: _trials(api, study, "queued"), timeout=120, what="a prefetched queued trial"
    )
    assert [t["number"] for t in queued] == [1]
    assert queued[0]["params"] != first["params"]
    done = {"trial_id": first["id"], "lease_token": first["lease_token"], "value": 0.5}
    second = _lease(api, "w1", complete=done)
    assert second["id"] == queued[0]["id"]


def test_a_model_free_study_prefetches_nothing(api: TestClient) -> None:
    """Random suggestions cost microseconds: they are made at lease time."""
    study = _study(api, "random", "random", max_trials=5)
    _lease(api, "w1")
    gp = _study(api, "gp-after", "gp", max_trials=5)
    # The GP study's prefetch runs after the random study's lease: once it is there, any
    # prefetch for the random study would have run too (one prefetch thread, in order).
    _lease(api, "w2")
    wait_until(lambda: _trials(api, gp, "queued"), timeout=120, what="the gp study's prefetch")
    assert _trials(api, study, "queued") == []


def _used_budget(api: TestClient) -> int:
    study = _study(api, "used", "random", max_trials=2)
    trial = _lease(api, "w1")
    done = {"trial_id": trial["id"], "lease_token": trial["lease_token"], "value": 1.0}
    trial = _lease(api, "w1", complete=done)
    done = {"trial_id": trial["id"], "lease_token": trial["lease_token"], "value": 2.0}
    assert api.post(f"{P}/workers/w1/lease", json={"complete": done}).status_code == 204
    assert api.get(f"{P}/studies/{study}").json()["state"] == "done"
    return study


def test_patch_below_the_trial_count_is_422_naming_the_field(api: TestClient) -> None:
    study = _used_budget(api)
    response = api.patch(f"{P}/studies/{study}", json={"budget": {"max_trials": 1}})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "budget", "max_trials"], error
    assert "already has 2 trials" in error["msg"]
    assert api.get(f"{P}/studies/{study}").json()["budget"]["max_trials"] == 2


def test_patch_raising_the_budget_reopens_a_study_that_used_it(api: TestClient) -> None:
    study = _used_budget(api)
    response = api.patch(f"{P}/studies/{study}", json={"budget": {"max_trials": 3}})
    assert response.status_code == 200, response.text
    assert api.get(f"{P}/studies/{study}").json()["state"] == "running"
    assert _lease(api, "w1")["number"] == 2
