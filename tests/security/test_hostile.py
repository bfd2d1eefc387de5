"""Hostile input through a real server: what a `user`, `worker` or `viewer` token must not be
able to do to other people's studies, leases and streams, on SQLite and PostgreSQL.

Each test replays one case of the issue that found them (numbers in the test names' docs):
2 a study that breaks the list can be deleted; 4 a worker token taking another worker's
lease; 5 chunked bodies past the limit; 7 artifacts without a lease, bad names, served types;
8 event streams of revoked tokens and too many streams; and owners: only a study's owner or
an admin may change it. The server runs with small limits (LIMITS) so that every refusal is
cheap: a body is refused while it is being sent, long before its end.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import select
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.cli import main
from service.client import Client
from service.domain import Role
from service.schemas import TrialLeased
from tests.security.conftest import Seeded
from tests.support import ServerProcess, fresh_pg_database, pg_unavailable_reason, wait_until

pytestmark = pytest.mark.slow

P = "/api/v1"
MAX_REQUEST = 64 * 1024
MAX_ARTIFACT = 256 * 1024
RECHECK_S = 0.5
PER_TOKEN, TOTAL = 2, 4
LIMITS = {
    "TUNESMITH_MAX_REQUEST_BYTES": str(MAX_REQUEST),
    "TUNESMITH_MAX_ARTIFACT_BYTES": str(MAX_ARTIFACT),
    "TUNESMITH_STREAM_RECHECK_SECONDS": str(RECHECK_S),
    "TUNESMITH_MAX_STREAMS_PER_TOKEN": str(PER_TOKEN),
    "TUNESMITH_MAX_STREAMS": str(TOTAL),
}
SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
MIB = 1024 * 1024


@dataclass
class Hostile:
    server: ServerProcess
    database_url: str
    tokens: dict[str, str]
    """name -> secret: alice and alice-laptop (users named "alice"), bob (user), eve
    (viewer), gpu-a and gpu-b (workers)."""

    def http(self, who: str) -> httpx.Client:
        token = self.server.token if who == "admin" else self.tokens[who]
        return httpx.Client(
            base_url=self.server.url + P, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def token_id(self, who: str) -> int:
        with self.http("admin") as admin:
            rows = admin.get("/tokens").json()["data"]
        return int(next(r["id"] for r in rows if r["name"] == _token_name(who)))


def _token_name(who: str) -> str:
    return "alice" if who == "alice-laptop" else who


TOKENS = {
    "alice": "user",
    "alice-laptop": "user",
    "bob": "user",
    "eve": "viewer",
    "gpu-a": "worker",
    "gpu-b": "worker",
}


@contextmanager
def _database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'hostile.db'}"
        return
    reason = pg_unavailable_reason()
    if reason is not None:
        if os.environ.get("TUNESMITH_REQUIRE_PG"):
            pytest.fail(f"TUNESMITH_REQUIRE_PG is set but {reason}")
        pytest.skip(f"skipping PostgreSQL test: {reason}")
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def hostile(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hostile]:
    """One real server per database, with small limits and six tokens."""
    workdir = tmp_path_factory.mktemp(f"hostile-{request.param}")
    with _database(request.param, workdir) as url:
        server = ServerProcess(database_url=url, workdir=workdir, extra_env=LIMITS).start()
        try:
            tokens: dict[str, str] = {}
            with httpx.Client(
                base_url=server.url + P, headers={"Authorization": f"Bearer {server.token}"}
            ) as admin:
                for who, role in TOKENS.items():
                    made = admin.post("/tokens", json={"name": _token_name(who), "role": role})
                    assert made.status_code == 201, made.text
                    tokens[who] = made.json()["token"]
            yield Hostile(server=server, database_url=url, tokens=tokens)
        finally:
            server.stop()


def _external(http: httpx.Client, name: str, max_trials: int = 20) -> dict[str, Any]:
    body = {
        "name": name,
        "objective": "external",
        "space": SPACE,
        "budget": {"max_trials": max_trials, "max_parallel": max_trials},
    }
    response = http.post("/studies", json=body)
    assert response.status_code == 201, response.text
    study: dict[str, Any] = response.json()
    return study


def _ask(http: httpx.Client, study_id: int, count: int) -> list[dict[str, Any]]:
    response = http.post(f"/studies/{study_id}/suggestions", json={"count": count})
    assert response.status_code == 200, response.text
    trials: list[dict[str, Any]] = response.json()["data"]
    return trials


def _send_chunked(
    server: ServerProcess, method: str, path: str, headers: dict[str, str], chunks: Iterable[bytes]
) -> tuple[int, dict[str, Any], int]:
    """Sends a chunked request and stops as soon as the server answers or stops reading.

    Returns (status, JSON body, bytes of body sent). What was sent counts bytes handed to
    the kernel, so it exceeds what the server read by at most the sockets' buffers."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    with sock:
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
        head += [f"{k}: {v}" for k, v in {**headers, "Transfer-Encoding": "chunked"}.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        else:
            sock.sendall(b"0\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read() or b"null"), sent


def _padding(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    for _ in range(total // chunk):
        yield b"a" * chunk


# ---- 4: leases are bound to the worker token that took them ---------------------------------


def test_a_worker_token_cannot_take_another_workers_lease(hostile: Hostile) -> None:
    """Case 4: naming a busy worker's id returned its running trial with its lease token."""
    with hostile.http("alice") as alice:
        body = {
            "name": "lease-binding",
            "objective": "synthetic",
            "strategy": {"name": "random"},
            "budget": {"max_trials": 10, "max_parallel": 4},
        }
        assert alice.post("/studies", json=body).status_code == 201
    only = {"objectives": ["synthetic"]}
    with hostile.http("gpu-a") as a, hostile.http("gpu-b") as b, hostile.http("admin") as admin:
        taken = a.post("/workers/gpu-a-0/lease", json=only)
        assert taken.status_code == 200, taken.text
        lease = taken.json()["trial"]
        for thief in (b, admin):
            stolen = thief.post("/workers/gpu-a-0/lease", json=only)
            assert stolen.status_code == 403, stolen.text
            assert lease["lease_token"] not in stolen.text
            assert "held by another token" in stolen.json()["detail"]
        own = b.post("/workers/gpu-b-0/lease", json=only)
        assert own.status_code == 200, own.text
        assert own.json()["trial"]["lease_token"] != lease["lease_token"]
        again = a.post("/workers/gpu-a-0/lease", json=only)
        assert again.json()["trial"]["lease_token"] == lease["lease_token"], "repeat-safe"


# ---- 5: body limits on the bytes received ---------------------------------------------------


def test_a_chunked_body_past_the_limit_is_refused_while_it_is_sent(hostile: Hostile) -> None:
    """Case 5: a chunked 150 MB study was read to the end and stored."""
    name = "chunked-150mb"
    start = json.dumps({"name": name, "objective": "external", "space": SPACE})[:-1]
    head = f'{start}, "objective_args": {{"pad": "'.encode()
    chunks = itertools.chain([head], _padding(150 * MIB), [b'"}}'])
    auth = {"Authorization": f"Bearer {hostile.tokens['alice']}"}
    headers = {**auth, "Content-Type": "application/json"}
    status, body, sent = _send_chunked(hostile.server, "POST", f"{P}/studies", headers, chunks)
    assert status == 413, body
    assert f"at most {MAX_REQUEST}" in body["detail"]
    assert sent < 32 * MIB, f"the server read {sent} bytes of a refused body"
    with hostile.http("alice") as alice:
        names = [s["name"] for s in alice.get("/studies").json()["data"]]
    assert name not in names


def test_a_chunked_artifact_past_the_limit_is_refused_while_streaming(hostile: Hostile) -> None:
    """Case 5: a 300 MB chunked artifact was buffered in memory before being refused."""
    with hostile.http("alice") as alice:
        study = _external(alice, "chunked-artifact")
        (trial,) = _ask(alice, study["id"], 1)
    headers = {
        "Authorization": f"Bearer {hostile.tokens['gpu-a']}",
        "Content-Type": "application/octet-stream",
        "X-Lease-Token": trial["lease_token"],
    }
    path = f"{P}/trials/{trial['id']}/artifacts/weights.bin"
    status, body, sent = _send_chunked(
        hostile.server, "PUT", path, headers, _padding(300 * MIB)
    )
    assert status == 413, body
    assert f"at most {MAX_ARTIFACT}" in body["detail"]
    assert sent < 32 * MIB
    with hostile.http("alice") as alice:
        assert alice.get(f"/trials/{trial['id']}").json()["artifacts"] == []
    artifacts = hostile.server.workdir / "artifacts"
    assert not (artifacts / str(trial["id"])).exists()
    assert list((artifacts / ".incoming").glob("*")) == [], "no staging file is left behind"
    response = httpx.put(
        hostile.server.url + path, content=b"w" * (MAX_ARTIFACT // 2), headers=headers, timeout=30
    )
    assert response.status_code == 201, response.text


# ---- 7: artifacts ----------------------------------------------------------------------------


def test_artifacts_need_the_trials_lease_or_the_studys_owner(hostile: Hostile) -> None:
    """Case 7: artifacts could be uploaded to any trial (finished, other study) without its
    lease."""
    with hostile.http("alice") as alice:
        study = _external(alice, "artifact-guard")
        first, second = _ask(alice, study["id"], 2)

    def put(who: str, trial: dict[str, Any], name: str, lease: str | None = None) -> int:
        headers = {"Content-Type": "text/plain"}
        if lease is not None:
            headers["X-Lease-Token"] = lease
        with hostile.http(who) as http:
            return http.put(
                f"/trials/{trial['id']}/artifacts/{name}", content=b"data", headers=headers
            ).status_code

    assert put("gpu-b", first, "no-lease.txt") == 403
    assert put("gpu-b", first, "other-lease.txt", second["lease_token"]) == 409
    assert put("bob", first, "not-the-owner.txt") == 403
    assert put("eve", first, "viewer.txt", first["lease_token"]) == 403  # a viewer never writes
    assert put("gpu-b", first, "with-lease.txt", first["lease_token"]) == 201
    assert put("alice", first, "owner.txt") == 201
    assert put("alice-laptop", first, "owner-by-name.txt") == 201
    assert put("admin", first, "admin.txt") == 201
    with hostile.http("alice") as alice:
        done = alice.post(
            f"/trials/{first['id']}/complete",
            json={"lease_token": first["lease_token"], "value": 0.5},
        )
        assert done.status_code == 200, done.text
        names = {a["name"] for a in alice.get(f"/trials/{first['id']}").json()["artifacts"]}
    assert names == {"with-lease.txt", "owner.txt", "owner-by-name.txt", "admin.txt"}
    assert put("gpu-b", first, "after-the-end.txt", first["lease_token"]) == 409


@pytest.mark.parametrize(
    "raw",
    ["%2E", "%2E%2E", "a/%2E/b", "%2E%2E/x", "a%2F%2Fb", "%2Fabsolute", "a%5Cb", "a%00b", "a%20b"],
)
def test_bad_artifact_names_are_a_422_naming_name(hostile: Hostile, raw: str) -> None:
    """Case 7: `.` (and other names that are no file name) gave 500. Percent-escapes reach
    the server as the characters they stand for (clients drop literal dot segments)."""
    with hostile.http("alice") as alice:
        study = alice.get("/studies", params={"limit": 1000}).json()["data"]
        target = next((s for s in study if s["name"] == "bad-names"), None)
        study_id = target["id"] if target else _external(alice, "bad-names", 100)["id"]
        (trial,) = _ask(alice, study_id, 1)
        response = alice.put(f"/trials/{trial['id']}/artifacts/{raw}", content=b"x")
    assert response.status_code == 422, (raw, response.status_code, response.text)
    assert response.json()["detail"][0]["loc"] == ["body", "name"]


def test_a_file_and_a_folder_of_one_name_clash_with_a_409(hostile: Hostile) -> None:
    """Case 7: `a/b` next to `a` gave 500."""
    with hostile.http("alice") as alice:
        study = _external(alice, "name-clash")
        (trial,) = _ask(alice, study["id"], 1)
        url = f"/trials/{trial['id']}/artifacts"
        assert alice.put(f"{url}/a/b", content=b"1").status_code == 201
        assert alice.put(f"{url}/a", content=b"2").status_code == 409
        assert alice.put(f"{url}/a/b/c", content=b"3").status_code == 409
        assert alice.put(f"{url}/a/b", content=b"4").status_code == 201  # replaced
        assert alice.get(f"{url}/a/b").content == b"4"


@pytest.mark.parametrize(
    ("name", "given", "served", "inline"),
    [
        ("page.html", "text/html", "application/octet-stream", False),
        ("logo.svg", "image/svg+xml", "application/octet-stream", False),
        ("plot.png", "text/html", "image/png", True),
        ("notes.txt", "text/html", "text/plain; charset=utf-8", True),
        ("metrics", "application/json", "application/json", True),
        ("events.out.tfevents.1.host", "application/octet-stream", "application/octet-stream",
         False),
    ],
)
def test_artifact_types_come_from_an_allow_list_and_are_not_sniffed(
    hostile: Hostile, name: str, given: str, served: str, inline: bool
) -> None:
    """Case 7: the content type was served back as given (text/html, image/svg+xml), with
    no nosniff or CSP."""
    with hostile.http("alice") as alice:
        study = _external(alice, f"types-{name}")
        (trial,) = _ask(alice, study["id"], 1)
        url = f"/trials/{trial['id']}/artifacts/{name}"
        payload = b"<script>alert(document.cookie)</script>"
        stored = alice.put(url, content=payload, headers={"Content-Type": given})
        assert stored.status_code == 201, stored.text
        response = alice.get(url)
    assert response.headers["content-type"] == served
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    disposition = response.headers.get("content-disposition", "")
    assert disposition.startswith("attachment") is not inline, disposition
    assert response.content == payload


def test_every_response_carries_nosniff_and_the_dashboard_a_csp(hostile: Hostile) -> None:
    """Case 7: the dashboard had no Content-Security-Policy and could be framed."""
    shell = httpx.get(hostile.server.url + "/")
    csp = dict(d.split(" ", 1) for d in shell.headers["content-security-policy"].split("; "))
    assert csp["default-src"] == csp["script-src"] == "'self'", csp
    assert csp["frame-ancestors"] == "'none'"
    assert shell.headers["x-frame-options"] == "DENY"
    for path in ("/", "/static/app.js", "/healthz", f"{P}/studies"):
        assert httpx.get(hostile.server.url + path).headers["x-content-type-options"] == "nosniff"


# ---- owners ---------------------------------------------------------------------------------


def test_only_the_owner_or_an_admin_changes_a_study(hostile: Hostile) -> None:
    """Any user could stop, pause or change anyone's study (owners were recorded, never
    checked)."""
    with hostile.http("alice") as alice:
        study = _external(alice, "owned-by-alice")
    sid = study["id"]
    assert study["owner"] == "alice"
    changes = [
        ("PATCH", f"/studies/{sid}", {"budget": {"max_trials": 30}}),
        ("POST", f"/studies/{sid}/pause", None),
        ("POST", f"/studies/{sid}/resume", None),
        ("POST", f"/studies/{sid}/stop", None),
        ("POST", f"/studies/{sid}/trials", {"params": {"x": 0.5}}),
        ("POST", f"/studies/{sid}/suggestions", {"count": 1}),
        ("DELETE", f"/studies/{sid}", None),
    ]
    with hostile.http("bob") as bob:
        for method, path, body in changes:
            refused = bob.request(method, path, json=body)
            assert refused.status_code == 403, (method, path, refused.text)
            assert "belongs to 'alice'" in refused.json()["detail"]
        assert bob.get(f"/studies/{sid}").status_code == 200, "everyone with a token reads"
        assert bob.get(f"/studies/{sid}/export").status_code == 200
    with hostile.http("eve") as eve:
        assert eve.get(f"/studies/{sid}/trials").status_code == 200
        assert eve.post(f"/studies/{sid}/pause").status_code == 403
    with hostile.http("alice") as alice, hostile.http("alice-laptop") as laptop:
        assert alice.post(f"/studies/{sid}/pause").json()["state"] == "paused"
        assert laptop.post(f"/studies/{sid}/resume").json()["state"] == "running"
        assert alice.patch(f"/studies/{sid}", json={"budget": {"max_trials": 30}}).is_success
        assert alice.post(f"/studies/{sid}/trials", json={"params": {"x": 0.5}}).is_success
        assert len(_ask(laptop, sid, 2)) == 2  # the enqueued trial, then a new one
    with hostile.http("admin") as admin:
        assert admin.post(f"/studies/{sid}/stop").json()["state"] == "stopped"
        assert admin.post(f"/studies/{sid}/resume").json()["state"] == "running"
    with hostile.http("bob") as bob:
        unchanged = bob.get(f"/studies/{sid}").json()
    assert (unchanged["n_trials"], unchanged["budget"]["max_trials"]) == (2, 30)


def test_a_study_without_owner_is_changed_only_by_admins(seeded: Seeded) -> None:
    """A study created by the server itself (`serve --example`) has no owner."""
    client = TestClient(seeded.app)
    url = f"{P}/studies/{seeded.study_id}"
    user = {"Authorization": f"Bearer {seeded.tokens[Role.USER]}"}
    assert client.get(url, headers=user).json()["owner"] is None
    refused = client.post(f"{url}/pause", headers=user)
    assert refused.status_code == 403 and "only an admin" in refused.json()["detail"]
    admin = {"Authorization": f"Bearer {seeded.admin}"}
    assert client.post(f"{url}/pause", headers=admin).json()["state"] == "paused"
    assert client.post(f"{url}/resume", headers=admin).json()["state"] == "running"


# ---- 2: deleting a study -------------------------------------------------------------------


def test_a_broken_study_is_deleted_with_its_trials_and_files(
    hostile: Hostile, capsys: pytest.CaptureFixture[str]
) -> None:
    """Case 2: one stored study broke the studies list, and there was no way to delete it.

    The study is broken the way a stored row can be (a value the answer's schema refuses);
    `tunesmith study delete` removes it, its trials, their values, attempts, artifacts
    and files, and the list answers again."""
    with hostile.http("alice") as alice:
        study = _external(alice, "to-delete")
        done, running = _ask(alice, study["id"], 2)
        alice.post(f"/trials/{done['id']}/report", json={**_lease(done), "step": 1, "value": 1})
        alice.post(f"/trials/{done['id']}/complete", json={**_lease(done), "value": 0.5})
        url = f"/trials/{running['id']}/artifacts/plots/curve.png"
        assert alice.put(url, content=b"png", headers=_lease_header(running)).status_code == 201
    files = hostile.server.workdir / "artifacts" / str(running["id"])
    assert (files / "plots" / "curve.png").is_file()
    engine = sa.create_engine(hostile.database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE studies SET warnings = :w WHERE id = :id"),
            {"w": json.dumps([{"not": "a sentence"}]), "id": study["id"]},
        )
    engine.dispose()

    flags = ["--url", hostile.server.url, "--token", hostile.tokens["alice"]]
    assert main(["study", "delete", str(study["id"]), *flags]) == 1
    assert "repeat with --yes" in capsys.readouterr().err
    with (
        Client(hostile.server.url, hostile.tokens["alice"]) as client,
        client.keep_alive(TrialLeased.model_validate(running), every=0.2) as lease_lost,
    ):
        assert main(["study", "delete", str(study["id"]), "--yes", *flags]) == 0
        assert f"deleted study {study['id']}" in capsys.readouterr().out
        assert lease_lost.wait(10), "a worker's heartbeat learns that its trial is gone"

    with hostile.http("alice") as alice:
        listed = alice.get("/studies", params={"limit": 1000})
        assert listed.status_code == 200, listed.text
        assert study["id"] not in [s["id"] for s in listed.json()["data"]]
        assert alice.get(f"/studies/{study['id']}").status_code == 404
        for trial in (done, running):
            assert alice.get(f"/trials/{trial['id']}").status_code == 404
        late = alice.post(f"/trials/{running['id']}/complete", json={**_lease(running), "value": 1})
        assert late.status_code == 404, "a worker of a deleted trial is told it is gone"
    assert not files.exists()


def _lease(trial: dict[str, Any]) -> dict[str, str]:
    return {"lease_token": trial["lease_token"]}


def _lease_header(trial: dict[str, Any]) -> dict[str, str]:
    return {"X-Lease-Token": trial["lease_token"], "Content-Type": "image/png"}


# ---- 8: event streams ------------------------------------------------------------------------


def _events(hostile: Hostile, who: str, study_id: int) -> Any:
    return httpx.stream(
        "GET",
        f"{hostile.server.url}{P}/studies/{study_id}/events",
        headers={"Authorization": f"Bearer {hostile.tokens[who]}"},
        timeout=httpx.Timeout(10, read=10),
    )


def test_a_revoked_tokens_stream_is_closed_within_the_recheck_time(hostile: Hostile) -> None:
    """Case 8: open event streams were not cut when their token was revoked."""
    with hostile.http("admin") as admin:
        made = admin.post("/tokens", json={"name": "revoked-watcher", "role": "viewer"}).json()
        study = _external(admin, "watched")
    hostile.tokens["revoked-watcher"] = made["token"]
    with _events(hostile, "revoked-watcher", study["id"]) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == "event: study"
        with hostile.http("admin") as admin:
            assert admin.delete(f"/tokens/{made['id']}").status_code == 200
        revoked_at = time.monotonic()
        rest = list(lines)  # ends when the server closes the stream (ReadTimeout otherwise)
        took = time.monotonic() - revoked_at
    assert "event: revoked" in rest
    assert took < RECHECK_S + 3, f"the stream stayed open {took:.1f} s after the revocation"


def test_streams_are_capped_per_token_and_in_total_with_a_429(hostile: Hostile) -> None:
    """Case 8: the number of open streams was unbounded (300 streams slowed /healthz)."""
    with hostile.http("admin") as admin:
        study = _external(admin, "crowded")
        for who in ("cap-1", "cap-2", "cap-3"):
            made = admin.post("/tokens", json={"name": who, "role": "viewer"})
            hostile.tokens[who] = made.json()["token"]
    for _ in range(PER_TOKEN + 1):  # a refused stream gives its slot back
        with _events(hostile, "cap-1", 2**31 - 1) as missing:
            assert missing.status_code == 404
    with ExitStack() as open_streams:
        for _ in range(PER_TOKEN):
            assert open_streams.enter_context(_events(hostile, "cap-1", study["id"])).is_success
        with _events(hostile, "cap-1", study["id"]) as refused:
            refused.read()
            assert refused.status_code == 429
            assert "TUNESMITH_MAX_STREAMS_PER_TOKEN" in refused.json()["detail"]
            assert refused.headers["retry-after"]
        for _ in range(TOTAL - PER_TOKEN):
            assert open_streams.enter_context(_events(hostile, "cap-2", study["id"])).is_success
        with _events(hostile, "cap-3", study["id"]) as refused:
            refused.read()
            assert refused.status_code == 429
            assert "(TUNESMITH_MAX_STREAMS)" in refused.json()["detail"]
        assert httpx.get(hostile.server.url + "/healthz").status_code == 200

    def opens() -> bool:
        with _events(hostile, "cap-3", study["id"]) as again:
            return again.status_code == 200

    wait_until(opens, timeout=10, what="closed streams to give their slots back")
