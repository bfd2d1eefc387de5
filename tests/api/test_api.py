"""The REST contract through FastAPI's TestClient (lifespan included): validation errors name
the field, authentication, 404s, pagination and filters, the admin-token bootstrap."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings

ADMIN = "api-test-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


def settings_for(tmp_path: Path, *, admin_token: str | None = ADMIN) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        admin_token=admin_token,
        token_file=tmp_path / "token",
        artifact_dir=tmp_path / "artifacts",
        lease_seconds=60,
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tmp_path))) as c:
        yield c


def create(client: TestClient, **spec: Any) -> dict[str, Any]:
    body = {"name": "s", "objective": "synthetic", "strategy": {"name": "random"}, **spec}
    response = client.post("/api/v1/studies", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def external(client: TestClient, name: str = "ext", max_trials: int = 10) -> dict[str, Any]:
    return create(
        client,
        name=name,
        objective="external",
        space=SPACE,
        budget={"max_trials": max_trials, "max_parallel": max_trials},
    )


def suggest(client: TestClient, study_id: int, count: int) -> list[dict[str, Any]]:
    response = client.post(
        f"/api/v1/studies/{study_id}/suggestions", json={"count": count}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def locs(response: Any) -> list[str]:
    """The dotted `loc` of each 422 error, without the leading 'body'."""
    assert response.status_code == 422, response.text
    return [
        ".".join(str(p) for p in err["loc"] if p != "body") for err in response.json()["detail"]
    ]


# ---- 422: the field is named --------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"objective": "no-such-objective"}, "objective"),
        ({"space": {"x": {"type": "float", "low": 1.0, "high": 0.0}}}, "space.x"),
        ({"space": {"x": {"type": "int", "low": 0, "high": 5, "log": True}}}, "space.x"),
        ({"colour": "blue"}, "colour"),
        ({"objective_args": {"stepz": 3}}, "objective_args.stepz"),
        ({"objective_args": {"steps": "many"}}, "objective_args.steps"),
        ({"budget": {"max_trials": 0}}, "budget.max_trials"),
        ({"enqueue": [{"x": 2.0, "y": 0.5, "kind": "a"}]}, "enqueue.0.x"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_spec_is_422_naming_the_field(
    client: TestClient, spec: dict[str, Any], field: str
) -> None:
    body = {"name": "s", "objective": "synthetic", **spec}
    response = client.post("/api/v1/studies", json=body, headers=AUTH)
    assert any(loc.startswith(field) for loc in locs(response)), response.json()
    for where, err in zip(locs(response), response.json()["detail"], strict=True):
        assert not err["msg"].startswith(f"{where}: "), err  # named once: in `loc`
    assert client.get("/api/v1/studies", headers=AUTH).json()["count"] == 0


def test_external_study_without_space_is_422(client: TestClient) -> None:
    response = client.post(
        "/api/v1/studies", json={"name": "e", "objective": "external"}, headers=AUTH
    )
    assert locs(response) == ["space"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_report_or_complete_value_is_422(client: TestClient, value: str) -> None:
    (trial,) = suggest(client, external(client)["id"], 1)
    for path, extra in (("report", ', "step": 1'), ("complete", "")):
        raw = f'{{"lease_token": "{trial["lease_token"]}", "value": {value}{extra}}}'
        response = client.post(
            f"/api/v1/trials/{trial['id']}/{path}",
            content=raw,
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert locs(response) == ["value"], response.json()
    detail = client.get(f"/api/v1/trials/{trial['id']}", headers=AUTH).json()
    assert (detail["state"], detail["values"]) == ("running", [])


def test_enqueue_outside_the_space_is_422(client: TestClient) -> None:
    study = external(client)
    response = client.post(
        f"/api/v1/studies/{study['id']}/trials", json={"params": {"x": 3.0}}, headers=AUTH
    )
    assert any("x" in loc for loc in locs(response))
    response = client.post(
        f"/api/v1/studies/{study['id']}/trials", json={"params": {"x": 0.5}}, headers=AUTH
    )
    assert response.status_code == 201
    assert response.json()["source"] == "enqueued"


def test_duplicate_study_name_is_409(client: TestClient) -> None:
    create(client)
    response = client.post(
        "/api/v1/studies", json={"name": "s", "objective": "synthetic"}, headers=AUTH
    )
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


# ---- 401 / 403 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Token {ADMIN}"},
        {"Authorization": "Bearer "},
    ],
)
def test_missing_or_bad_token_is_401(client: TestClient, headers: dict[str, str]) -> None:
    for method, path in (
        ("GET", "/api/v1/studies"),
        ("POST", "/api/v1/studies"),
        ("GET", "/api/v1/objectives"),
        ("POST", "/api/v1/workers/w1/lease"),
        ("GET", "/api/v1/workers"),
        ("GET", "/api/v1/tokens"),
    ):
        body = {"name": "s", "objective": "synthetic"} if method == "POST" else None
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/studies", headers=AUTH).json()["count"] == 0


def test_roles_and_revocation(client: TestClient) -> None:
    def token(role: str) -> tuple[int, dict[str, str]]:
        response = client.post(
            "/api/v1/tokens", json={"name": f"{role}-1", "role": role}, headers=AUTH
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["token"].startswith("ts_")
        return body["id"], {"Authorization": f"Bearer {body['token']}"}

    viewer_id, viewer = token("viewer")
    _, worker = token("worker")
    _, user = token("user")
    spec = {"name": "v", "objective": "synthetic"}
    assert client.get("/api/v1/studies", headers=viewer).status_code == 200
    assert client.post("/api/v1/studies", json=spec, headers=viewer).status_code == 403
    assert client.post("/api/v1/studies", json=spec, headers=worker).status_code == 403
    assert client.get("/api/v1/tokens", headers=user).status_code == 403
    assert client.post("/api/v1/studies", json=spec, headers=user).status_code == 201
    assert client.post("/api/v1/workers/w1/lease", headers=worker).status_code == 200
    assert client.post("/api/v1/workers/w2/lease", headers=user).status_code == 403

    revoked = client.delete(f"/api/v1/tokens/{viewer_id}", headers=AUTH)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.get("/api/v1/studies", headers=viewer).status_code == 401


# ---- 404 ------------------------------------------------------------------------------------


def test_unknown_ids_are_404(client: TestClient) -> None:
    study = external(client)
    (trial,) = suggest(client, study["id"], 1)
    missing = [
        ("GET", "/api/v1/studies/999", None),
        ("POST", "/api/v1/studies/999/pause", None),
        ("POST", "/api/v1/studies/999/stop", None),
        ("GET", "/api/v1/studies/999/trials", None),
        ("GET", "/api/v1/studies/999/events?once=true", None),
        ("POST", "/api/v1/studies/999/suggestions", {"count": 1}),
        ("POST", "/api/v1/studies/999/trials", {"params": {"x": 0.5}}),
        ("GET", "/api/v1/trials/999", None),
        ("POST", "/api/v1/trials/999/complete", {"lease_token": "t", "value": 1.0}),
        ("POST", "/api/v1/trials/999/report", {"lease_token": "t", "step": 1, "value": 1.0}),
        ("GET", f"/api/v1/trials/{trial['id']}/artifacts/nothing.png", None),
        ("DELETE", "/api/v1/tokens/999", None),
    ]
    for method, path, body in missing:
        response = client.request(method, path, json=body, headers=AUTH)
        assert response.status_code == 404, (method, path, response.text)
        assert "999" in response.text or "nothing.png" in response.text
    assert client.get("/api/v1/studies/0", headers=AUTH).status_code == 422


# ---- ask / tell over HTTP -------------------------------------------------------------------


def test_ask_tell_conflicts_and_idempotency(client: TestClient) -> None:
    study = external(client, max_trials=2)
    first, second = suggest(client, study["id"], 2)
    assert first["id"] != second["id"]
    path = f"/api/v1/trials/{first['id']}"
    wrong = client.post(
        f"{path}/complete", json={"lease_token": "x" * 32, "value": 1.0}, headers=AUTH
    )
    assert wrong.status_code == 409
    body = {"lease_token": first["lease_token"], "value": 0.5}
    done = client.post(f"{path}/complete", json=body, headers=AUTH)
    again = client.post(f"{path}/complete", json={**body, "value": 9.0}, headers=AUTH)
    assert done.status_code == again.status_code == 200
    assert again.json()["value"] == 0.5
    late = client.post(
        f"{path}/report",
        json={"lease_token": first["lease_token"], "step": 3, "value": 1.0},
        headers=AUTH,
    )
    assert late.status_code == 409
    client.post(
        f"/api/v1/trials/{second['id']}/fail",
        json={"lease_token": second["lease_token"], "reason": "ValueError: nope"},
        headers=AUTH,
    )
    shown = client.get(f"/api/v1/studies/{study['id']}", headers=AUTH).json()
    assert (shown["state"], shown["stop_reason"]) == ("done", "budget of 2 trials used")
    assert shown["best"]["trial_id"] == first["id"] and shown["best"]["value"] == 0.5
    assert shown["counts"]["complete"] == 1 and shown["counts"]["failed"] == 1
    response = client.post(
        f"/api/v1/studies/{study['id']}/suggestions", json={"count": 1}, headers=AUTH
    )
    assert response.status_code == 409 and "done" in response.json()["detail"]


def test_artifact_round_trip(client: TestClient) -> None:
    (trial,) = suggest(client, external(client)["id"], 1)
    url = f"/api/v1/trials/{trial['id']}/artifacts/plots/curve.txt"
    put = client.put(url, content=b"hello", headers={**AUTH, "Content-Type": "text/plain"})
    assert put.status_code == 201, put.text
    got = client.get(url, headers=AUTH)
    assert (got.status_code, got.content) == (200, b"hello")
    assert got.headers["content-type"].startswith("text/plain")
    detail = client.get(f"/api/v1/trials/{trial['id']}", headers=AUTH).json()
    assert [a["name"] for a in detail["artifacts"]] == ["plots/curve.txt"]
    bad = client.put(
        f"/api/v1/trials/{trial['id']}/artifacts/a/%2E%2E/%2E%2E/escape.txt",
        content=b"x",
        headers=AUTH,
    )
    assert bad.status_code in (404, 422)
    assert not (Path(client.app.state.ctx.settings.artifact_dir).parent / "escape.txt").exists()  # type: ignore[attr-defined]


# ---- lists ----------------------------------------------------------------------------------


def test_trials_pagination_and_state_filter(client: TestClient) -> None:
    study = external(client)
    trials = suggest(client, study["id"], 6)
    for t in trials[:2]:
        client.post(
            f"/api/v1/trials/{t['id']}/complete",
            json={"lease_token": t["lease_token"], "value": 1.0},
            headers=AUTH,
        )
    client.post(
        f"/api/v1/trials/{trials[2]['id']}/fail",
        json={"lease_token": trials[2]["lease_token"], "reason": "boom"},
        headers=AUTH,
    )
    base = f"/api/v1/studies/{study['id']}/trials"

    def numbers(query: str) -> tuple[list[int], int]:
        body = client.get(base + query, headers=AUTH).json()
        return [t["number"] for t in body["data"]], body["count"]

    assert numbers("") == ([0, 1, 2, 3, 4, 5], 6)
    assert numbers("?limit=2&offset=2") == ([2, 3], 6)
    assert numbers("?limit=2&offset=6") == ([], 6)
    assert numbers("?state=complete") == ([0, 1], 2)
    assert numbers("?state=complete&state=failed") == ([0, 1, 2], 3)
    assert numbers("?state=running&descending=true") == ([5, 4, 3], 3)
    assert locs(client.get(base + "?state=bogus", headers=AUTH)) == ["query.state.0"]
    assert client.get(base + "?limit=0", headers=AUTH).status_code == 422


def test_studies_pagination_and_state_filter(client: TestClient) -> None:
    ids = [external(client, name=f"e{i}")["id"] for i in range(5)]
    client.post(f"/api/v1/studies/{ids[1]}/pause", headers=AUTH)
    client.post(f"/api/v1/studies/{ids[3]}/stop", headers=AUTH)
    page = client.get("/api/v1/studies?limit=2&offset=1", headers=AUTH).json()
    assert page["count"] == 5
    assert [s["id"] for s in page["data"]] == [ids[3], ids[2]]
    paused = client.get("/api/v1/studies?state=paused", headers=AUTH).json()
    assert [s["id"] for s in paused["data"]] == [ids[1]] and paused["count"] == 1
    stopped = client.get("/api/v1/studies?state=stopped", headers=AUTH).json()
    assert [(s["id"], s["stop_reason"]) for s in stopped["data"]] == [(ids[3], "stopped by user")]


def test_pause_of_a_stopped_study_is_409(client: TestClient) -> None:
    study = external(client)
    assert client.post(f"/api/v1/studies/{study['id']}/stop", headers=AUTH).status_code == 200
    response = client.post(f"/api/v1/studies/{study['id']}/pause", headers=AUTH)
    assert response.status_code == 409


def test_objectives_lists_synthetic_and_branin(client: TestClient) -> None:
    body = client.get("/api/v1/objectives", headers=AUTH).json()
    by_name = {o["name"]: o for o in body["data"]}
    assert {"synthetic", "branin"} <= set(by_name)
    assert body["count"] == len(body["data"])
    synthetic = by_name["synthetic"]
    assert (synthetic["metric"], synthetic["direction"]) == ("loss", "minimize")
    assert set(synthetic["space"]) == {"x", "y", "kind"}
    assert {"steps", "step_seconds", "record_env"} <= set(synthetic["args_schema"]["properties"])
    assert set(by_name["branin"]["space"]) == {"x1", "x2"}


def test_workers_list_shows_pid_and_current_trial(client: TestClient) -> None:
    create(client)
    lease = client.post(
        "/api/v1/workers/host-cpu0-1/lease", json={"host": "h", "pid": 4242}, headers=AUTH
    ).json()
    workers = client.get("/api/v1/workers", headers=AUTH).json()["data"]
    assert [(w["id"], w["pid"], w["current_trial_id"]) for w in workers] == [
        ("host-cpu0-1", 4242, lease["trial"]["id"])
    ]
    assert lease["objective"] == "synthetic" and lease["lease_seconds"] == 60


def test_an_unavailable_worker_is_listed_with_its_reason_and_leases_nothing(
    client: TestClient,
) -> None:
    study = create(client)
    url = "/api/v1/workers/box-gpu2-7/lease"
    gpu = {"host": "box", "gpu": "2", "backend": "tensorflow", "device": "cpu"}
    reason = "no usable GPU: this TensorFlow is built without CUDA (tensorflow-cpu?)"
    assert client.post(url, json={**gpu, "unavailable": reason}, headers=AUTH).status_code == 204
    (worker,) = client.get("/api/v1/workers", headers=AUTH).json()["data"]
    assert (worker["gpu"], worker["backend"], worker["device"], worker["unavailable"]) == (
        "2",
        "tensorflow",
        "cpu",
        reason,
    )
    assert client.get(f"/api/v1/studies/{study['id']}", headers=AUTH).json()["n_trials"] == 0
    # The same worker without a reason (say, --allow-cpu) leases, and the reason is cleared.
    h100 = {"device": "NVIDIA H100 80GB HBM3", "device_memory_bytes": 85520809984}
    assert client.post(url, json={**gpu, **h100}, headers=AUTH).status_code == 200
    (worker,) = client.get("/api/v1/workers", headers=AUTH).json()["data"]
    assert worker["unavailable"] is None and worker["current_trial_id"] is not None
    assert (worker["device"], worker["device_memory_bytes"]) == (
        "NVIDIA H100 80GB HBM3",
        85520809984,
    )


def test_a_lease_can_carry_the_previous_trials_value(client: TestClient) -> None:
    study = create(client, budget={"max_trials": 2, "max_parallel": 1})
    lease_url = "/api/v1/workers/w1/lease"
    first = client.post(lease_url, json={}, headers=AUTH).json()["trial"]
    done = {"trial_id": first["id"], "lease_token": first["lease_token"], "value": 0.25}
    # max_parallel 1: the second trial can only be leased once the first is complete.
    second = client.post(lease_url, json={"complete": done}, headers=AUTH)
    assert second.status_code == 200, second.text
    assert second.json()["trial"]["number"] == 1
    trial = client.get(f"/api/v1/trials/{first['id']}", headers=AUTH).json()
    assert (trial["state"], trial["value"]) == ("complete", 0.25)
    # A retry of the same request (its answer lost) records nothing twice, leases nothing new.
    again = client.post(lease_url, json={"complete": done}, headers=AUTH)
    assert again.json()["trial"]["id"] == second.json()["trial"]["id"]
    # A stale lease token: 409 naming the trial, and no lease.
    stale = {**done, "trial_id": second.json()["trial"]["id"], "lease_token": "0" * 32}
    refused = client.post("/api/v1/workers/w2/lease", json={"complete": stale}, headers=AUTH)
    assert refused.status_code == 409 and "lease token" in refused.json()["detail"]
    counts = client.get(f"/api/v1/studies/{study['id']}", headers=AUTH).json()["counts"]
    assert (counts["complete"], counts["running"]) == (1, 1)
    bad = {**done, "value": "NaN"}
    invalid = client.post(lease_url, content=json.dumps({"complete": bad}), headers=AUTH)
    assert invalid.status_code == 422 and "complete" in invalid.text


# ---- admin token bootstrap -----------------------------------------------------------------


def test_first_start_writes_a_private_admin_token_and_later_starts_keep_it(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, admin_token=None)
    with TestClient(create_app(settings)) as c:
        token_file = tmp_path / "token"
        assert token_file.is_file()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        assert c.get("/api/v1/studies", headers=headers).status_code == 200
        assert c.get("/api/v1/tokens", headers=headers).json()["count"] == 1
    with TestClient(create_app(settings)) as c:
        assert token_file.read_text().strip() == token, "a restart must not rotate the token"
        assert c.get("/api/v1/tokens", headers=headers).status_code == 200
        assert c.get("/api/v1/tokens", headers=headers).json()["count"] == 1


def test_env_admin_token_is_registered_once(tmp_path: Path) -> None:
    for _ in range(2):
        with TestClient(create_app(settings_for(tmp_path))) as c:
            tokens = c.get("/api/v1/tokens", headers=AUTH).json()
            assert tokens["count"] == 1
    assert not (tmp_path / "token").exists()


def test_restart_after_revoking_the_env_admin_token(tmp_path: Path) -> None:
    """A revoked TUNESMITH_ADMIN_TOKEN stays revoked across restarts, and the server starts."""
    with TestClient(create_app(settings_for(tmp_path))) as c:
        created = c.post("/api/v1/tokens", json={"name": "a2", "role": "admin"}, headers=AUTH)
        other = {"Authorization": f"Bearer {created.json()['token']}"}
        (env_row,) = [
            t for t in c.get("/api/v1/tokens", headers=other).json()["data"] if t["id"] == 1
        ]
        assert c.delete(f"/api/v1/tokens/{env_row['id']}", headers=other).status_code == 200
    with TestClient(create_app(settings_for(tmp_path))) as c:
        assert c.get("/api/v1/studies", headers=AUTH).status_code == 401
        assert c.get("/api/v1/studies", headers=other).status_code == 200


def test_openapi_names_every_operation(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    ids = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {
        "create_study",
        "lease_trial",
        "report_trial",
        "complete_trial",
        "suggest_trials",
        "list_objectives",
    } <= ids
    assert json.dumps(schema)  # serializable


# ---- the budget holds every trial ------------------------------------------------------------


def test_enqueue_beyond_the_budget_is_refused(client: TestClient) -> None:
    too_many = [{"x": 0.1}, {"x": 0.2}, {"x": 0.3}]
    response = client.post(
        "/api/v1/studies",
        json={
            "name": "over",
            "objective": "external",
            "space": SPACE,
            "budget": {"max_trials": 2},
            "enqueue": too_many,
        },
        headers=AUTH,
    )
    assert locs(response) == ["enqueue"]
    study = external(client, max_trials=2)
    path = f"/api/v1/studies/{study['id']}/trials"
    for config in too_many[:2]:
        assert client.post(path, json={"params": config}, headers=AUTH).status_code == 201
    refused = client.post(path, json={"params": too_many[2]}, headers=AUTH)
    assert refused.status_code == 409 and "budget" in refused.json()["detail"]
    assert len(suggest(client, study["id"], 5)) == 2
    assert client.get(f"/api/v1/studies/{study['id']}", headers=AUTH).json()["n_trials"] == 2


def test_events_once_sends_the_study(client: TestClient) -> None:
    study = external(client)
    response = client.get(f"/api/v1/studies/{study['id']}/events?once=true", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    event, data = response.text.strip().split("\n")[:2]
    assert event == "event: study"
    assert json.loads(data.removeprefix("data: "))["id"] == study["id"]
    token_query = f"/api/v1/studies/{study['id']}/events?once=true&access_token={ADMIN}"
    assert client.get(token_query).status_code == 200
    assert client.get(f"/api/v1/studies/{study['id']}/events?once=true").status_code == 401


def _dataset(**changes: Any) -> dict[str, Any]:
    record = {
        "name": "mnist",
        "source": "cache",
        "location": "/root/.keras/datasets/mnist.npz",
        "n_train": 48000,
        "n_val": 12000,
        "sha256": "ab" * 32,
        "fallback_for": None,
        "reason": None,
    }
    return {**record, **changes}


def test_a_trial_records_its_dataset_and_a_fallback_is_a_study_warning(
    client: TestClient,
) -> None:
    study = external(client)
    trials = suggest(client, study["id"], 3)
    real = _dataset()
    fallback = _dataset(
        name="digits",
        source="fallback",
        location="scikit-learn digits 28x28",
        n_train=1438,
        n_val=359,
        sha256="cd" * 32,
        fallback_for="mnist",
        reason="TUNESMITH_OFFLINE is set",
    )
    for trial, record in zip(trials, (real, real, fallback), strict=True):
        body = {"lease_token": trial["lease_token"], "dataset": record}
        url = f"/api/v1/trials/{trial['id']}/dataset"
        assert client.post(url, json=body, headers=AUTH).status_code == 200
        assert client.post(url, json=body, headers=AUTH).status_code == 200, "a retry is fine"
    shown = client.get(f"/api/v1/trials/{trials[2]['id']}", headers=AUTH).json()
    assert shown["dataset"] == fallback
    got = client.get(f"/api/v1/studies/{study['id']}", headers=AUTH).json()
    assert [(d["name"], d["source"], d["trials"]) for d in got["datasets"]] == [
        ("mnist", "cache", 2),
        ("digits", "fallback", 1),
    ]
    assert (
        "trials trained on scikit-learn digits 28x28 standing in for mnist "
        "(TUNESMITH_OFFLINE is set)" in got["warnings"]
    )
    stale = {"lease_token": "not-the-lease", "dataset": real}
    url = f"/api/v1/trials/{trials[0]['id']}/dataset"
    assert client.post(url, json=stale, headers=AUTH).status_code == 409
    bad = {"lease_token": trials[0]["lease_token"], "dataset": _dataset(sha256="xyz")}
    assert "dataset.sha256" in locs(client.post(url, json=bad, headers=AUTH))
