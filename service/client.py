"""Python client for the tunesmith REST API (httpx).

    from service.client import Client
    client = Client()                      # TUNESMITH_URL, TUNESMITH_TOKEN, then the token file
    study = client.create_study({...})     # a study specification (dict or StudyCreate)
    client.wait(study.id)                  # progress bar until done
    client.best(study.id)

Ask/tell for trainers that run outside the service:

    for trial in client.suggest(study.id, 4):
        client.complete(trial, train(trial.params))

or `client.optimize(fn, study.id, n_trials=20, n_jobs=4)`.

Requests that a server restart may interrupt are retried with backoff for up to
`retry_seconds`: connection errors and 502/503/504. Only idempotent calls are retried
(reports, completes and fails are idempotent on the server). Until the server has answered
once, connection errors are retried for `connect_retry_seconds` only (a wrong URL or port
should fail fast), and one connection attempt waits at most `connect_timeout` seconds.

The URL may end in /api/v1 (it is removed: the client adds it); without http:// or https://
it is refused with InvalidUrl. A 401 answer names where the token came from, or where the
client looked for one (`find_token`).
"""

from __future__ import annotations

import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel

from service import token_files
from service.schemas import (
    ArtifactPublic,
    BestTrial,
    LeasePublic,
    ObjectivePublic,
    ObjectivesPublic,
    ReportPublic,
    StudiesPublic,
    StudyCreate,
    StudyPublic,
    TokenCreated,
    TokenPublic,
    TokensPublic,
    TrialDetail,
    TrialLeased,
    TrialPublic,
    TrialsPublic,
    WorkersPublic,
)

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
CONNECT_TIMEOUT_S = 3.0
WRONG_URL = "check the server URL: the tunesmith server's address and port, without a path"
RETRY_STATUSES = {502, 503, 504}
LEASE_LOST = frozenset({404, 409})
"""Statuses that end a lease: 409 (another lease, or the trial ended) and 404 (the trial's
study was deleted)."""
M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """An HTTP error answer from the server, with its status and the server's message;
    `hint` (when set) says what to do about it."""

    def __init__(self, status: int, detail: Any, hint: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.hint = hint
        super().__init__(f"HTTP {status}: {format_detail(detail)}" + (f"; {hint}" if hint else ""))

    def problems(self) -> list[str]:
        """The server's complaints, one `field: message` each (a 422 lists every field)."""
        return detail_lines(self.detail)


class ServerUnavailable(Exception):
    """The server could not be reached within the retry window."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach {url}: {reason}")


class InvalidUrl(ValueError):
    """A server URL the client cannot use (no http:// or https://, no host)."""


def normalise_url(url: str) -> str:
    """The server's base URL: whitespace, trailing slashes and a trailing /api/v1 removed.
    Raises InvalidUrl, saying what to write, for a URL without http(s):// or a host."""
    text = url.strip().rstrip("/")
    if text.endswith(API_PREFIX):
        text = text[: -len(API_PREFIX)].rstrip("/")
    if "://" not in url:
        raise InvalidUrl(f"{url!r} has no scheme: write http://{text}")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise InvalidUrl(f"{url!r} is not an http:// or https:// URL")
    if not parts.hostname:
        raise InvalidUrl(f"{url!r} names no host: write e.g. http://127.0.0.1:8000")
    return text


_PARAM_TAGS = frozenset({"float", "int", "categorical", "fixed"})
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def _loc(item: dict[str, Any]) -> str:
    """A FastAPI error location as a dotted field path: the part of the request ("body",
    "query", "path") dropped, a query value's list index too, and the parameter type tag
    pydantic adds after `space.<name>` ("float", "int", ...)."""
    parts = [str(p) for p in item.get("loc", [])]
    where = parts[0] if parts else ""
    if where in ("body", "query", "path", "header"):
        parts = parts[1:]
    if where == "query" and parts and parts[-1].isdigit():
        parts = parts[:-1]
    kept = [
        p
        for i, p in enumerate(parts)
        if not (i >= 2 and parts[i - 2] == "space" and p in _PARAM_TAGS)
    ]
    return ".".join(kept)



def detail_lines(detail: Any) -> list[str]:
    """FastAPI error details as `field: message` lines, one per problem: the field named
    once (a message that already starts with it is not prefixed again), pydantic's
    "Value error, " prefix dropped."""
    if not isinstance(detail, list):
        return [str(detail)]
    lines = []
    for item in detail:
        if not isinstance(item, dict):
            lines.append(str(item))
            continue
        loc, msg = _loc(item), str(item.get("msg"))
        for prefix in _PYDANTIC_PREFIXES:
            msg = msg.removeprefix(prefix)
        if loc and not msg.startswith(f"{loc}: "):
            msg = f"{loc}: {msg}"
        lines.append(msg)
    return lines


def format_detail(detail: Any) -> str:
    """Renders FastAPI error details as one line: `field: message; ...`."""
    return "; ".join(detail_lines(detail))


def result_body(
    value: float | None,
    values: Sequence[float] | None = None,
    metrics: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The result fields of a complete: `value` or `values`, and `metrics` when given."""
    body: dict[str, Any] = {}
    if value is not None:
        body["value"] = value
    if values is not None:
        body["values"] = list(values)
    if metrics:
        body["metrics"] = dict(metrics)
    return body


def find_token(url: str) -> tuple[str | None, str]:
    """The token from TUNESMITH_TOKEN, else from the first token file of the server at `url`
    (`service.token_files.lookup_order`); with where it came from, or, when there is none,
    every place it was looked for."""
    token = os.environ.get("TUNESMITH_TOKEN")
    if token:
        return token, "TUNESMITH_TOKEN"
    looked = []
    for path in token_files.lookup_order(url):
        try:
            token = path.read_text().strip()
        except FileNotFoundError:
            looked.append(f"no token file {path}")
            continue
        except OSError as exc:
            looked.append(f"the token file {path}: {exc.strerror}")
            continue
        if token:
            return token, f"the token file {path}"
        looked.append(f"the token file {path} is empty")
    return None, f"TUNESMITH_TOKEN is not set, {' and '.join(looked)}"


def default_token(url: str | None = None) -> str | None:
    """TUNESMITH_TOKEN, else the token file of the server at `url` (default TUNESMITH_URL):
    `service.token_files.lookup_order` (see `find_token`)."""
    return find_token(url or os.environ.get("TUNESMITH_URL") or DEFAULT_URL)[0]


class Client:
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        retry_seconds: float = 30.0,
        connect_retry_seconds: float | None = None,
        token_source: str = "the token argument",
    ) -> None:
        """`url`: else TUNESMITH_URL, else DEFAULT_URL (normalised: `normalise_url`, which
        raises InvalidUrl). `token`: else `find_token`; `token_source` names where a given
        token came from, for the message of a 401. `connect_retry_seconds`: how long
        connection errors are retried before the server has answered once (default:
        `retry_seconds`)."""
        self.url = normalise_url(url or os.environ.get("TUNESMITH_URL") or DEFAULT_URL)
        if token:
            self.token: str | None = token
            self.token_source = token_source
        else:
            self.token, self.token_source = find_token(self.url)
        self.retry_seconds = retry_seconds
        self.connect_timeout = connect_timeout
        self.connect_retry_seconds = (
            retry_seconds if connect_retry_seconds is None else connect_retry_seconds
        )
        self._answered = False
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
    ) -> httpx.Response:
        """Sends a request to /api/v1 + path; raises ApiError on 4xx/5xx answers and
        ServerUnavailable when no answer came within the retry window."""
        window = self.retry_seconds if self._answered else self.connect_retry_seconds
        deadline = time.monotonic() + (window if retry else 0.0)
        delay = 0.2
        while True:
            try:
                response = self._http.request(
                    method,
                    API_PREFIX + path,
                    json=json,
                    params=params,
                    content=content,
                    headers=headers,
                )
            except httpx.TransportError as exc:
                if time.monotonic() + delay > deadline:
                    reason = _transport_reason(exc, self.connect_timeout)
                    raise ServerUnavailable(self.url, reason) from exc
            else:
                self._answered = True
                if (
                    response.status_code not in RETRY_STATUSES
                    or time.monotonic() + delay > deadline
                ):
                    break
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> ApiError:
        """The ApiError for an error answer, with what to do about it where the client knows
        better than the server. tunesmith answers errors as JSON with a `detail`; any other
        answer (a proxy's, another program's on that port) came from elsewhere."""
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "detail" not in body:
            hint = f"{self.url} did not answer as a tunesmith server: {WRONG_URL}"
            return ApiError(status, response.reason_phrase, hint)
        detail = body["detail"]
        return ApiError(status, detail, self._hint(status, detail))

    def _hint(self, status: int, detail: Any) -> str | None:
        if status == 401 and self.token is None:
            return f"no token was sent ({self.token_source}): set TUNESMITH_TOKEN or pass token="
        if status == 401:
            return (
                f"the token from {self.token_source} was refused: check it, or ask an admin "
                "for a new one (tunesmith token create)"
            )
        if status == 404 and detail == "Not Found":
            # Starlette's answer for a route that does not exist (tunesmith's own 404s name
            # what is missing): the URL points at another path or program.
            return f"{self.url}{API_PREFIX} has no such route: {WRONG_URL}"
        return None

    def _get(self, path: str, model: type[M], **params: Any) -> M:
        clean = {k: v for k, v in params.items() if v is not None}
        return model.model_validate(self.request("GET", path, params=clean).json())

    def _post(self, path: str, model: type[M], body: Any = None) -> M:
        return model.model_validate(self.request("POST", path, json=body).json())

    # ---- studies ------------------------------------------------------------------------

    def create_study(self, spec: StudyCreate | Mapping[str, Any]) -> StudyPublic:
        body = (
            spec.model_dump(mode="json", exclude_none=True)
            if isinstance(spec, BaseModel)
            else dict(spec)
        )
        return self._post("/studies", StudyPublic, body)

    def get_study(self, study_id: int) -> StudyPublic:
        return self._get(f"/studies/{study_id}", StudyPublic)

    def update_budget(
        self, study_id: int, *, max_trials: int | None = None, max_parallel: int | None = None
    ) -> StudyPublic:
        """Changes the budget (PATCH /studies/{id}); a larger `max_trials` reopens a study
        that used its budget up. Raises ApiError (422: fewer trials than it already has)."""
        budget = {"max_trials": max_trials, "max_parallel": max_parallel}
        body = {"budget": {k: v for k, v in budget.items() if v is not None}}
        response = self.request("PATCH", f"/studies/{study_id}", json=body)
        return StudyPublic.model_validate(response.json())

    def list_studies(
        self, *, offset: int = 0, limit: int = 100, state: str | None = None
    ) -> StudiesPublic:
        return self._get("/studies", StudiesPublic, offset=offset, limit=limit, state=state)

    def find_study(self, name: str) -> StudyPublic | None:
        offset = 0
        while True:
            page = self.list_studies(offset=offset, limit=1000)
            for study in page.data:
                if study.name == name:
                    return study
            offset += len(page.data)
            if not page.data or offset >= page.count:
                return None

    def get_or_create_study(self, spec: StudyCreate | Mapping[str, Any]) -> StudyPublic:
        """The study named like `spec`, created from `spec` when no study has that name.

        Safe when several processes call it at once with the same name: one creates the study
        and the others get it (a creation refused with 409 looks the name up again). An
        existing study is returned as stored: its space, direction and budget may differ
        from `spec`, so compare them where that matters. Raises ApiError as `create_study`.
        """
        body = (
            spec.model_dump(mode="json", exclude_none=True)
            if isinstance(spec, BaseModel)
            else dict(spec)
        )
        name = str(body["name"])
        existing = self.find_study(name)
        if existing is not None:
            return existing
        try:
            return self.create_study(body)
        except ApiError as exc:
            found = self.find_study(name) if exc.status == 409 else None
            if found is None:
                raise
            return found

    def export_study(self, study_id: int) -> dict[str, Any]:
        data: dict[str, Any] = self.request("GET", f"/studies/{study_id}/export").json()
        return data

    def import_study(self, document: Mapping[str, Any], *, name: str | None = None) -> StudyPublic:
        params = {"name": name} if name else None
        response = self.request("POST", "/studies/import", json=dict(document), params=params)
        return StudyPublic.model_validate(response.json())

    def pause(self, study_id: int) -> StudyPublic:
        return self._post(f"/studies/{study_id}/pause", StudyPublic)

    def resume(self, study_id: int) -> StudyPublic:
        return self._post(f"/studies/{study_id}/resume", StudyPublic)

    def stop(self, study_id: int) -> StudyPublic:
        return self._post(f"/studies/{study_id}/stop", StudyPublic)

    def delete_study(self, study_id: int) -> None:
        """Deletes the study with its trials and artifacts (owner or admin; cannot be undone)."""
        self.request("DELETE", f"/studies/{study_id}")

    def trials(
        self, study_id: int, *, state: str | list[str] | None = None, page_size: int = 1000
    ) -> list[TrialPublic]:
        """All trials of a study (every page), optionally only those in `state`."""
        out: list[TrialPublic] = []
        while True:
            page = self._get(
                f"/studies/{study_id}/trials",
                TrialsPublic,
                state=state,
                offset=len(out),
                limit=page_size,
            )
            out.extend(page.data)
            if not page.data or len(out) >= page.count:
                return out

    def trial(self, trial_id: int) -> TrialDetail:
        return self._get(f"/trials/{trial_id}", TrialDetail)

    def best(self, study_id: int) -> BestTrial | None:
        return self.get_study(study_id).best

    def enqueue(self, study_id: int, params: Mapping[str, Any]) -> TrialPublic:
        return self._post(f"/studies/{study_id}/trials", TrialPublic, {"params": dict(params)})

    def wait(
        self,
        study_id: int,
        *,
        timeout: float | None = None,
        progress: bool = True,
        poll: float = 1.0,
    ) -> StudyPublic:
        """Blocks until the study is done or stopped; shows a progress bar on a terminal.

        The bar's rate counts the trials that finished since the call (not those done
        before), and `best` says "no result yet" until a trial has a value."""
        from tqdm import tqdm

        deadline = None if timeout is None else time.monotonic() + timeout
        study = self.get_study(study_id)
        total = int(study.budget["max_trials"])
        with tqdm(
            total=total,
            initial=_finished(study),
            disable=not progress,
            desc=study.name,
            unit="trial",
            file=sys.stderr,
        ) as bar:
            while True:
                bar.n = _finished(study)
                best = f"{study.best.value:.6g}" if study.best else "no result yet"
                bar.set_postfix(best=best, running=study.counts.get("running", 0), refresh=False)
                bar.refresh()
                if study.state in ("done", "stopped"):
                    return study
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"study {study_id} is still {study.state} after {timeout} s")
                time.sleep(poll)
                study = self.get_study(study_id)

    # ---- ask / tell ---------------------------------------------------------------------

    def suggest(self, study_id: int, count: int = 1) -> list[TrialLeased]:
        data = self.request(
            "POST", f"/studies/{study_id}/suggestions", json={"count": count}
        ).json()
        return [TrialLeased.model_validate(t) for t in data["data"]]

    def report(self, trial: TrialLeased, step: int, value: float) -> bool:
        """Records an intermediate value; True means the trial was pruned: stop it."""
        body = {"lease_token": trial.lease_token, "step": step, "value": value}
        answer = self._post(f"/trials/{trial.id}/report", ReportPublic, body)
        return answer.action == "prune"

    def heartbeat(self, trial: TrialLeased) -> TrialPublic:
        return self._post(
            f"/trials/{trial.id}/heartbeat", TrialPublic, {"lease_token": trial.lease_token}
        )

    def record_dataset(self, trial: TrialLeased, record: Mapping[str, Any]) -> TrialPublic:
        """Tells the server which data the trial trains on (a trainer's dataset record)."""
        body = {"lease_token": trial.lease_token, "dataset": dict(record)}
        return self._post(f"/trials/{trial.id}/dataset", TrialPublic, body)

    def complete(
        self,
        trial: TrialLeased,
        value: float | None = None,
        *,
        values: Sequence[float] | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> TrialPublic:
        """Tells the final `value` (one objective) or `values` (one per objective), with
        `metrics` for the study's constraints."""
        body = {"lease_token": trial.lease_token, **result_body(value, values, metrics)}
        return self._post(f"/trials/{trial.id}/complete", TrialPublic, body)

    def fail(self, trial: TrialLeased, reason: str, *, infeasible: bool = False) -> TrialPublic:
        """Fails the trial; `infeasible`: its configuration cannot run (out of memory)."""
        # A trainer's message may hold NUL characters, which the server refuses (text columns).
        text = reason.replace("\x00", "\\x00")[:4000]
        body: dict[str, Any] = {"lease_token": trial.lease_token, "reason": text}
        if infeasible:
            body["infeasible"] = True
        return self._post(f"/trials/{trial.id}/fail", TrialPublic, body)

    def release(self, trial: TrialLeased) -> TrialPublic:
        return self._post(
            f"/trials/{trial.id}/release", TrialPublic, {"lease_token": trial.lease_token}
        )

    @contextmanager
    def keep_alive(self, trial: TrialLeased, every: float) -> Iterator[threading.Event]:
        """Heartbeats `trial` in a background thread; the event is set if the lease is lost."""
        lost = threading.Event()
        done = threading.Event()

        def beat() -> None:
            while not done.wait(every):
                try:
                    self.heartbeat(trial)
                except ApiError as exc:
                    if exc.status in LEASE_LOST:
                        lost.set()
                        return
                except ServerUnavailable:
                    continue

        thread = threading.Thread(target=beat, name=f"heartbeat-{trial.id}", daemon=True)
        thread.start()
        try:
            yield lost
        finally:
            done.set()
            thread.join(timeout=5)

    def optimize(
        self,
        fn: Callable[[dict[str, Any]], float],
        study_id: int,
        *,
        n_trials: int | None = None,
        n_jobs: int = 1,
        heartbeat_seconds: float = 10.0,
    ) -> StudyPublic:
        """Runs `fn(params) -> value` on this machine for trials of `study_id` (ask/tell).

        Stops after `n_trials` trials (all jobs together) or when the study has no more work.
        An exception or a non-finite value fails that trial with the reason; the loop goes on.
        """
        lock = threading.Lock()
        started = 0

        def take() -> bool:
            nonlocal started
            with lock:
                if n_trials is not None and started >= n_trials:
                    return False
                started += 1
                return True

        def job() -> None:
            while take():
                try:
                    batch = self.suggest(study_id, 1)
                except ApiError as exc:
                    if exc.status == 409:
                        return
                    raise
                if not batch:
                    return
                trial = batch[0]
                with self.keep_alive(trial, heartbeat_seconds):
                    try:
                        value = float(fn(dict(trial.params)))
                    except Exception as exc:
                        self.fail(trial, f"{type(exc).__name__}: {exc}")
                        continue
                if math.isfinite(value):
                    self.complete(trial, value)
                else:
                    self.fail(trial, f"diverged: objective returned {value}")

        with ThreadPoolExecutor(max_workers=max(n_jobs, 1)) as pool:
            for future in [pool.submit(job) for _ in range(max(n_jobs, 1))]:
                future.result()
        return self.get_study(study_id)

    # ---- workers ------------------------------------------------------------------------

    def lease(
        self,
        worker_id: str,
        info: Mapping[str, Any],
        *,
        complete: tuple[TrialLeased, float | Mapping[str, Any]] | None = None,
    ) -> LeasePublic | None:
        """The next trial (None: nothing to do now). `complete`: the previous trial and its
        value (or the fields of its complete: `values`, `metrics`), recorded by the server
        before it leases (one round trip instead of two)."""
        body = dict(info)
        if complete is not None:
            trial, value = complete
            body["complete"] = {"trial_id": trial.id, "lease_token": trial.lease_token}
            body["complete"].update(value if isinstance(value, Mapping) else {"value": value})
        response = self.request("POST", f"/workers/{worker_id}/lease", json=body)
        if response.status_code == 204:
            return None
        return LeasePublic.model_validate(response.json())

    def upload_artifact(
        self,
        trial_id: int,
        name: str,
        path: Path,
        content_type: str,
        *,
        lease_token: str | None = None,
    ) -> ArtifactPublic:
        """Uploads a file to a trial: with the trial's `lease_token` (a worker), or without
        one on a study the token owns."""
        headers = {"Content-Type": content_type}
        if lease_token is not None:
            headers["X-Lease-Token"] = lease_token
        response = self.request(
            "PUT",
            f"/trials/{trial_id}/artifacts/{name}",
            content=path.read_bytes(),
            headers=headers,
        )
        return ArtifactPublic.model_validate(response.json())

    def workers(self) -> WorkersPublic:
        return self._get("/workers", WorkersPublic)

    # ---- objectives and tokens ----------------------------------------------------------

    def objectives(self) -> list[ObjectivePublic]:
        return self._get("/objectives", ObjectivesPublic).data

    def create_token(self, name: str, role: str) -> TokenCreated:
        return self._post("/tokens", TokenCreated, {"name": name, "role": role})

    def tokens(self) -> list[TokenPublic]:
        return self._get("/tokens", TokensPublic).data

    def revoke_token(self, token_id: int) -> TokenPublic:
        return TokenPublic.model_validate(self.request("DELETE", f"/tokens/{token_id}").json())

    def healthy(self) -> bool:
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False


def _finished(study: StudyPublic) -> int:
    return sum(study.counts.get(s, 0) for s in ("complete", "pruned", "failed"))


def _transport_reason(exc: httpx.TransportError, connect_timeout: float) -> str:
    """Why a request got no answer, in a few words (httpx's timeouts have empty messages)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no answer to the connection within {connect_timeout:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return str(exc) or type(exc).__name__
