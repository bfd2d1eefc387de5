"""Limits and validation: every rejection is a 4xx whose message names the field.

Also the regressions the fuzzer found (each was a 500 before its fix).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.params import MAX_CHOICES, MAX_PARAMS
from service.schemas import MAX_ENQUEUE, MAX_PAGE, MAX_SUGGESTIONS
from tests.security.conftest import Seeded

P = "/api/v1"


@pytest.fixture(scope="module")
def http(seeded: Seeded) -> TestClient:
    return TestClient(seeded.app, headers={"Authorization": f"Bearer {seeded.admin}"})


def _fields(response: Any) -> str:
    """The error's field names and messages, flattened for `in` checks."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return detail
    return " | ".join(".".join(map(str, d["loc"])) + ": " + str(d["msg"]) for d in detail)


def _external(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "objective": "external",
        "space": {"x": {"type": "float", "low": 0, "high": 1}},
        **extra,
    }


def test_body_size_is_bounded(http: TestClient) -> None:
    big = b'{"name": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    response = http.post(f"{P}/studies", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "at most" in response.json()["detail"]


def test_number_of_parameters_is_bounded(http: TestClient) -> None:
    space = {f"p{i}": {"type": "float", "low": 0, "high": 1} for i in range(MAX_PARAMS + 1)}
    response = http.post(f"{P}/studies", json=_external("too-many-params", space=space))
    assert response.status_code == 422 and "space" in _fields(response)


def test_categorical_choices_are_bounded(http: TestClient) -> None:
    space = {"c": {"type": "categorical", "choices": list(range(MAX_CHOICES + 1))}}
    response = http.post(f"{P}/studies", json=_external("too-many-choices", space=space))
    assert response.status_code == 422 and "choices" in _fields(response)


def test_enqueue_is_bounded(http: TestClient) -> None:
    enqueue = [{"x": 0.5}] * (MAX_ENQUEUE + 1)
    response = http.post(f"{P}/studies", json=_external("too-many-enqueued", enqueue=enqueue))
    assert response.status_code == 422 and "enqueue" in _fields(response)


def test_suggestion_count_and_page_size_are_bounded(http: TestClient, seeded: Seeded) -> None:
    response = http.post(
        f"{P}/studies/{seeded.study_id}/suggestions", json={"count": MAX_SUGGESTIONS + 1}
    )
    assert response.status_code == 422 and "count" in _fields(response)
    response = http.get(f"{P}/studies", params={"limit": MAX_PAGE + 1})
    assert response.status_code == 422 and "limit" in _fields(response)
    response = http.get(f"{P}/studies/{seeded.study_id}/trials", params={"limit": MAX_PAGE + 1})
    assert response.status_code == 422 and "limit" in _fields(response)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_numbers_must_be_finite(http: TestClient, seeded: Seeded, bad: str) -> None:
    trial_id, token = next(iter(seeded.running.items()))
    for route, body in (
        ("complete", f'{{"lease_token": "{token}", "value": {bad}}}'),
        ("report", f'{{"lease_token": "{token}", "step": 1, "value": {bad}}}'),
    ):
        response = http.post(
            f"{P}/trials/{trial_id}/{route}",
            content=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422, (route, response.text)
        assert "value" in _fields(response)
    space = {"x": {"type": "float", "low": 0, "high": bad}}
    response = http.post(
        f"{P}/studies",
        content=(
            '{"name": "inf", "objective": "external", "space": {"x": {"type": "float", '
            f'"low": 0, "high": {bad}}}}}}}'
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422 and "high" in _fields(response), space


def test_no_client_code_runs_objectives_are_names(http: TestClient) -> None:
    """A study names a registered objective; anything else is refused, never imported."""
    for objective in ("os:system", "objectives.synthetic:_quadratic", "__import__('os')"):
        response = http.post(
            f"{P}/studies", json={"name": "code", "objective": objective, "budget": {}}
        )
        assert response.status_code == 422 and "objective" in _fields(response), objective


def test_unknown_fields_are_named(http: TestClient) -> None:
    response = http.post(f"{P}/studies", json=_external("typo", budgett={"max_trials": 3}))
    assert response.status_code == 422 and "budgett" in _fields(response)


def test_worker_pid_out_of_range_is_a_422(http: TestClient) -> None:
    """Was a 500 on PostgreSQL (32-bit column)."""
    response = http.post(f"{P}/workers/w-1/lease", json={"pid": 2**40, "objectives": []})
    assert response.status_code == 422 and "pid" in _fields(response)


def _document(http: TestClient, seeded: Seeded) -> dict[str, Any]:
    response = http.get(f"{P}/studies/{seeded.study_id}/export")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["study"].update(strategy={"name": "gp", "bogus": 1}), "study.strategy"),
        (lambda d: d["study"].update(space=[]), "space"),
        (lambda d: d["trials"][0].update(step=2**40), "trials.0.step"),
        (lambda d: d["trials"][0].update(values=[[1, 0.5], [1, 0.6]]), "trials.0.values"),
        (lambda d: d["trials"][0].update(attempts=d["trials"][0]["attempts"] * 2), "attempts"),
        (lambda d: d["trials"][0].update(created_at="0001-01-01T00:00:00+05:00"), "created_at"),
        (lambda d: d["study"].update(objective="o" * 201), "study.objective"),
    ],
)
def test_import_rejects_bad_documents_with_a_422(
    http: TestClient, seeded: Seeded, change: Any, field: str
) -> None:
    """Each was a 500 (ValidationError, integer overflow, unique violation, date overflow)."""
    document = _document(http, seeded)
    change(document)
    response = http.post(f"{P}/studies/import", params={"name": "imported-bad"}, json=document)
    assert response.status_code == 422, response.text
    assert field in _fields(response), _fields(response)


# ---- the hostile inputs of the isolation issue: refused, and nothing else breaks ----------


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("space", "word"),
    [
        ({"x": {"type": "int", "low": 0, "high": 10**330}}, "high"),
        ({"x": {"type": "int", "low": -(2**60), "high": 0}}, "low"),
        ({"x": {"type": "float", "low": -1e308, "high": 1e308}}, "high - low"),
        ({"x": {"type": "categorical", "choices": [2**60, 1]}}, "choices"),
        ({"x": {"type": "fixed", "value": -(2**70)}}, "value"),
    ],
)
def test_numbers_a_search_space_cannot_handle_are_refused(
    http: TestClient, space: dict[str, Any], word: str
) -> None:
    """An int bound of 10^330 was accepted and made every worker's lease a 500."""
    response = http.post(f"{P}/studies", json=_external("huge-bound", space=space))
    fields = _fields(response)
    assert response.status_code == 422 and "space.x" in fields and word in fields, fields


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (_nested(260), "nested deeper than 32"),
        ({"blob": "x" * 70_000}, "bytes as JSON"),
    ],
)
def test_free_form_json_is_bounded_and_the_list_stays_readable(
    http: TestClient, args: dict[str, Any], message: str
) -> None:
    """objective_args nested 260 deep was stored, then every studies list answered 500."""
    response = http.post(f"{P}/studies", json=_external("deep-args", objective_args=args))
    assert response.status_code == 422, response.text
    assert "objective_args" in _fields(response) and message in _fields(response)
    enqueue = [{"x": _nested(40)}]
    response = http.post(f"{P}/studies", json=_external("deep-enqueue", enqueue=enqueue))
    assert response.status_code == 422 and "enqueue" in _fields(response)
    assert http.get(f"{P}/studies").status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["trials"][0].update(number=2**31 - 1), "trials.0.number"),
        (lambda d: d["trials"][0].update(attempt=2**31 - 1), "trials.0.attempt"),
        (lambda d: d["study"].update(objective="not-installed"), "study.objective"),
        (lambda d: d["study"].update(objective_args={"steps": "many"}), "objective_args.steps"),
        (lambda d: d["study"].update(objective_args=_nested(260)), "study.objective_args"),
        (lambda d: d["trials"][0].update(suggestion=_nested(100)), "trials.0.suggestion"),
        (lambda d: d["study"].update(warnings=["w" * 5000]), "study.warnings"),
    ],
)
def test_import_validates_like_creation(
    http: TestClient, seeded: Seeded, change: Any, field: str
) -> None:
    """Imports were checked as if their objective were `external`: unknown objectives and
    arguments were stored and leased to workers; a trial number of 2**31 - 1 made every
    lease fail on PostgreSQL."""
    document = _document(http, seeded)
    change(document)
    response = http.post(f"{P}/studies/import", params={"name": "imported-bad"}, json=document)
    assert response.status_code == 422, response.text
    assert field in _fields(response), _fields(response)
    assert http.get(f"{P}/studies").status_code == 200


def test_suggestions_respect_max_parallel(http: TestClient) -> None:
    """Two asks of 64 on a study with max_parallel 2 left 128 trials running."""
    body = _external("parallel-2", budget={"max_trials": 200, "max_parallel": 2})
    study = http.post(f"{P}/studies", json=body).json()
    url = f"{P}/studies/{study['id']}/suggestions"
    first = http.post(url, json={"count": 64}).json()
    second = http.post(url, json={"count": 64}).json()
    assert len(first["data"]) == 2 and second["data"] == []
    assert second["reason"] == "budget.max_parallel is 2 and 2 trials run"
    running = http.get(f"{P}/studies/{study['id']}").json()["counts"]["running"]
    assert running == 2


def test_insights_never_fail_on_extreme_finite_values(http: TestClient) -> None:
    """Values near 1e308 made GET /model a 500 (the output warp overflowed)."""
    space = {
        "x": {"type": "float", "low": 0, "high": 1},
        "c": {"type": "categorical", "choices": ["a", "b"]},
    }
    body = _external("extreme", space=space, budget={"max_trials": 20, "max_parallel": 20})
    study_id = http.post(f"{P}/studies", json=body).json()["id"]
    for value in (1e308, -1e308, 1.7e308, 5.0, -1.7e308, 1e-308, 0.0, 3e307):
        (trial,) = http.post(f"{P}/studies/{study_id}/suggestions", json={"count": 1}).json()[
            "data"
        ]
        done = {"lease_token": trial["lease_token"], "value": value}
        assert http.post(f"{P}/trials/{trial['id']}/complete", json=done).status_code == 200
    asked = http.post(f"{P}/studies/{study_id}/suggestions", json={"count": 2}).json()
    assert all(t["source"] == "gp" for t in asked["data"]), "the GP copes; no random fallback"
    for view in ("model?param=x", "model?param=x&param2=c", "history", "importance", "curves"):
        response = http.get(f"{P}/studies/{study_id}/{view}")
        assert response.status_code == 200, (view, response.text)


def test_text_with_nul_characters_is_a_422_naming_the_field(
    http: TestClient, seeded: Seeded
) -> None:
    """PostgreSQL text columns cannot store NUL: each free-form text field refuses it."""
    trial_id, token = next(iter(seeded.running.items()))
    for method, path, body, field in (
        ("PATCH", f"{P}/studies/{seeded.study_id}", {"notes": "a\x00b"}, "notes"),
        ("POST", f"{P}/trials/{trial_id}/fail", {"lease_token": token, "reason": "\x00"},
         "reason"),
        ("POST", f"{P}/tokens", {"name": "t\x00", "role": "viewer"}, "name"),
    ):
        response = http.request(method, path, json=body)
        assert response.status_code == 422, (path, response.text)
        assert field in _fields(response) and "NUL" in _fields(response)
    assert http.get(f"{P}/trials/{trial_id}").json()["state"] == "running"
