"""Who may call what: every route of the app against every role, from one table.

The route list comes from the app itself, so a route added without an entry in ROUTES fails
`test_every_route_is_declared`: whoever adds a route must say who may call it.

Each route's entry names the roles that may call it and the exact status an allowed caller
gets for this file's probe request, which changes nothing in the seeded study: 404 for ids
that do not exist, 422 for an empty body, 200 for lists, 204 for a lease of no objective.
Any other answer (a 500 above all) fails, as does anything but 403 for the other roles and
401 without a valid token. The table
is about roles; who owns a study (only its owner or an admin may change it) and which token
holds a worker id are checked past the role, in tests/security/test_hostile.py. Each role
leases under a worker id of its own here, since a worker id belongs to the first token that
leases under it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.domain import Role
from tests.security.conftest import Seeded
from tests.support import ServerProcess, cli_command

ADMIN, USER, WORKER, VIEWER = Role.ADMIN, Role.USER, Role.WORKER, Role.VIEWER
READ = frozenset({ADMIN, USER, VIEWER})
MANAGE = frozenset({ADMIN, USER})
EVALUATE = frozenset({ADMIN, USER, WORKER})
LEASE = frozenset({ADMIN, WORKER})
ADMIN_ONLY = frozenset({ADMIN})
PUBLIC = None
"""No token needed: health, the OpenAPI document and its viewers (no data in any of them)."""

MISSING = 999_999  # ids that do not exist: allowed callers get 404, never a change
P = "/api/v1"
Rule = tuple[frozenset[Role] | None, int]
"""(who may call the route, the status an allowed caller gets for the probe request)."""
ROUTES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): (PUBLIC, 200),
    ("GET", "/openapi.json"): (PUBLIC, 200),
    ("GET", "/docs"): (PUBLIC, 200),
    ("GET", "/docs/oauth2-redirect"): (PUBLIC, 200),
    ("GET", "/redoc"): (PUBLIC, 200),
    ("POST", f"{P}/studies"): (MANAGE, 422),
    ("POST", f"{P}/studies/import"): (MANAGE, 422),
    ("GET", f"{P}/studies"): (READ, 200),
    ("GET", f"{P}/studies/{{study_id}}"): (READ, 404),
    ("PATCH", f"{P}/studies/{{study_id}}"): (MANAGE, 404),
    ("DELETE", f"{P}/studies/{{study_id}}"): (MANAGE, 404),
    ("GET", f"{P}/studies/{{study_id}}/export"): (READ, 404),
    ("POST", f"{P}/studies/{{study_id}}/pause"): (MANAGE, 404),
    ("POST", f"{P}/studies/{{study_id}}/resume"): (MANAGE, 404),
    ("POST", f"{P}/studies/{{study_id}}/stop"): (MANAGE, 404),
    ("GET", f"{P}/studies/{{study_id}}/trials"): (READ, 404),
    ("GET", f"{P}/studies/{{study_id}}/trials.csv"): (READ, 404),
    ("POST", f"{P}/studies/{{study_id}}/trials"): (MANAGE, 404),
    ("POST", f"{P}/studies/{{study_id}}/suggestions"): (MANAGE, 404),
    ("GET", f"{P}/studies/{{study_id}}/events"): (READ, 404),
    ("GET", f"{P}/studies/{{study_id}}/history"): (READ, 404),
    ("GET", f"{P}/studies/{{study_id}}/curves"): (READ, 404),
    ("GET", f"{P}/studies/{{study_id}}/model"): (READ, 404),
    ("GET", f"{P}/studies/{{study_id}}/importance"): (READ, 404),
    ("GET", f"{P}/trials/{{trial_id}}"): (READ, 404),
    ("POST", f"{P}/trials/{{trial_id}}/report"): (EVALUATE, 422),
    ("POST", f"{P}/trials/{{trial_id}}/heartbeat"): (EVALUATE, 422),
    ("POST", f"{P}/trials/{{trial_id}}/dataset"): (EVALUATE, 422),
    ("POST", f"{P}/trials/{{trial_id}}/complete"): (EVALUATE, 422),
    ("POST", f"{P}/trials/{{trial_id}}/fail"): (EVALUATE, 422),
    ("POST", f"{P}/trials/{{trial_id}}/release"): (EVALUATE, 422),
    ("PUT", f"{P}/trials/{{trial_id}}/artifacts/{{name}}"): (EVALUATE, 404),
    ("GET", f"{P}/trials/{{trial_id}}/artifacts/{{name}}"): (READ, 404),
    ("POST", f"{P}/workers/{{worker_id}}/lease"): (LEASE, 204),
    ("GET", f"{P}/workers"): (READ, 200),
    ("GET", f"{P}/objectives"): (READ, 200),
    ("POST", f"{P}/tokens"): (ADMIN_ONLY, 422),
    ("GET", f"{P}/tokens"): (ADMIN_ONLY, 200),
    ("DELETE", f"{P}/tokens/{{token_id}}"): (ADMIN_ONLY, 404),
}
DASHBOARD_MODULE = "service.api.dashboard"
"""The dashboard's pages and static files need no token (they carry no data: the pages
fetch everything through the API with the user's token); they are checked separately."""


def _flat_routes(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):  # FastAPI >= 0.16x wraps included routers
            yield from contexts()
        else:
            yield route


def app_routes(app: Any) -> dict[tuple[str, str], str]:
    """(method, path) -> the endpoint's module, for every route of the app (HEAD left out)."""
    out: dict[tuple[str, str], str] = {}
    for route in _flat_routes(app.routes):
        path = getattr(route, "path_format", None) or route.path
        path = path.replace("{name:path}", "{name}")
        module = getattr(getattr(route, "endpoint", None), "__module__", "")
        for method in getattr(route, "methods", None) or []:
            if method != "HEAD":
                out[(method, path)] = module
    return out


def _url(path: str, caller: str) -> str:
    return (
        path.replace("{study_id}", str(MISSING))
        .replace("{trial_id}", str(MISSING))
        .replace("{token_id}", str(MISSING))
        .replace("{worker_id}", f"role-table-{caller}")
        .replace("{name}", "model.txt")
    )


def _request(
    client: TestClient, method: str, path: str, token: str | None, caller: str = "anonymous"
) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = _url(path, caller)
    params: dict[str, str] = {}
    if path.endswith("/events"):
        params["once"] = "true"
    if path.endswith("/model"):
        params["param"] = "x"
    kwargs: dict[str, Any] = {"headers": headers, "params": params}
    if method == "PUT":
        kwargs["content"] = b"data"
        headers["Content-Type"] = "application/octet-stream"
    elif method in ("POST", "PATCH"):
        kwargs["json"] = {}
    if path.endswith("/lease"):
        kwargs["json"] = {"objectives": ["no-such-objective"]}  # leases nothing
    return client.request(method, url, **kwargs).status_code


def test_every_route_is_declared(seeded: Seeded) -> None:
    routes = app_routes(seeded.app)
    undeclared = sorted(
        f"{m} {p}"
        for (m, p), module in routes.items()
        if (m, p) not in ROUTES and module != DASHBOARD_MODULE
    )
    assert not undeclared, f"declare who may call these routes in ROUTES: {undeclared}"
    gone = sorted(f"{m} {p}" for m, p in ROUTES if (m, p) not in routes)
    assert not gone, f"ROUTES names routes the app no longer has: {gone}"


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES), ids=lambda v: str(v))
def test_role_table(seeded: Seeded, method: str, path: str) -> None:
    allowed, expected = ROUTES[(method, path)]
    client = TestClient(seeded.app)
    unauthenticated = _request(client, method, path, None)
    if allowed is PUBLIC:
        assert unauthenticated == expected, (method, path, unauthenticated)
        for role, token in seeded.tokens.items():
            status = _request(client, method, path, token, role.value)
            assert status == expected, (method, path, role.value, status)
        return
    assert unauthenticated == 401, (method, path, unauthenticated)
    assert _request(client, method, path, "ts_not-a-token") == 401
    for role, token in seeded.tokens.items():
        status = _request(client, method, path, token, role.value)
        wanted = expected if role in allowed else 403
        assert status == wanted, (method, path, role.value, status)


def test_dashboard_routes_carry_no_data(seeded: Seeded) -> None:
    client = TestClient(seeded.app)
    pages = [p for (m, p), mod in app_routes(seeded.app).items() if mod == DASHBOARD_MODULE]
    assert pages, "the dashboard registers its pages"
    for path in pages:
        response = client.get(
            path.replace("{study_id}", "1").replace("{trial_id}", "1").replace("{name}", "app.js")
        )
        assert response.status_code in (200, 404), (path, response.status_code)
        assert not response.headers.get("content-type", "").startswith("application/json") or (
            response.status_code == 404
        ), path


def test_stream_token_in_query_follows_the_same_roles(seeded: Seeded) -> None:
    client = TestClient(seeded.app)
    url = f"{P}/studies/{seeded.study_id}/events"
    viewer = client.get(url, params={"once": "true", "access_token": seeded.tokens[VIEWER]})
    assert viewer.status_code == 200 and "event: study" in viewer.text
    worker = client.get(url, params={"once": "true", "access_token": seeded.tokens[WORKER]})
    assert worker.status_code == 403
    assert client.get(url, params={"once": "true", "access_token": "nope"}).status_code == 401
    # only the stream takes a token in the query string
    plain = client.get(f"{P}/studies", params={"access_token": seeded.tokens[VIEWER]})
    assert plain.status_code == 401


def test_revoked_token_is_refused_at_once(seeded: Seeded) -> None:
    client = TestClient(seeded.app)
    admin = {"Authorization": f"Bearer {seeded.admin}"}
    created = client.post(
        f"{P}/tokens", json={"name": "short-lived", "role": "user"}, headers=admin
    ).json()
    mine = {"Authorization": f"Bearer {created['token']}"}
    assert client.get(f"{P}/studies", headers=mine).status_code == 200
    revoked = client.delete(f"{P}/tokens/{created['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    answer = client.get(f"{P}/studies", headers=mine)
    assert answer.status_code == 401
    assert answer.headers.get("www-authenticate") == "Bearer"
    events = client.get(
        f"{P}/studies/{seeded.study_id}/events",
        params={"once": "true", "access_token": created["token"]},
    )
    assert events.status_code == 401


def test_tokens_are_stored_hashed(seeded: Seeded) -> None:
    with seeded.ctx.db.read() as session:
        rows = session.execute(sa.text("SELECT * FROM api_tokens")).mappings().all()
    dump = json.dumps([dict(r) for r in rows], default=str)
    for secret in seeded.tokens.values():
        assert secret not in dump


@pytest.mark.slow
def test_another_server_process_refuses_a_revoked_token_within_the_cache_time(
    tmp_path: Path,
) -> None:
    """Two apps on one database stand for two server processes: the one that did not revoke
    trusts its cached check for at most `token_cache_seconds`."""
    common = {
        "database_url": f"sqlite:///{tmp_path / 'two.db'}",
        "admin_token": "two-process-admin",
        "token_file": tmp_path / "token",
        "artifact_dir": tmp_path / "artifacts",
        "token_cache_seconds": 0.5,
    }
    admin = {"Authorization": "Bearer two-process-admin"}
    with (
        TestClient(create_app(Settings(**common))) as first,
        TestClient(create_app(Settings(**common))) as second,
    ):
        created = first.post(f"{P}/tokens", json={"name": "t", "role": "viewer"}, headers=admin)
        mine = {"Authorization": f"Bearer {created.json()['token']}"}
        assert second.get(f"{P}/studies", headers=mine).status_code == 200  # now cached there
        assert first.delete(f"{P}/tokens/{created.json()['id']}", headers=admin).status_code == 200
        assert first.get(f"{P}/studies", headers=mine).status_code == 401
        time.sleep(0.6)
        assert second.get(f"{P}/studies", headers=mine).status_code == 401


def test_token_cli_create_list_revoke(server: ServerProcess) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli_command(*args),
            env=server.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    created = cli("token", "create", "--role", "worker", "--name", "gpu-box-3")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("ts_") and "gpu-box-3" in created.stderr
    listed = cli("token", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if ln.endswith("gpu-box-3"))
    token_id = line.split()[0]
    assert "worker" in line and "active" in line and secret not in listed.stdout

    worker = server.client(secret)
    try:
        assert worker.lease("gpu-box-3", {"objectives": ["none"]}) is None  # may lease: 204
        with pytest.raises(Exception, match="HTTP 403"):
            worker.list_studies()
        revoked = cli("token", "revoke", token_id)
        assert revoked.returncode == 0 and "revoked token" in revoked.stdout, revoked.stderr
        with pytest.raises(Exception, match="HTTP 401"):
            worker.lease("gpu-box-3", {"objectives": ["none"]})
    finally:
        worker.close()
    listed = cli("token", "list")
    assert any(ln.endswith("gpu-box-3") and "revoked" in ln for ln in listed.stdout.splitlines())
    denied = subprocess.run(
        cli_command("token", "list"),
        env={**server.env(), "TUNESMITH_TOKEN": secret},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert denied.returncode != 0 and "401" in denied.stderr, "the revoked token stays out"
