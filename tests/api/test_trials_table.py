"""The trials table's REST side: filters and orders by parameter and value, the CSV export
(checked against the JSON list), and a study's notes (owner or admin, size-limited)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.schemas import MAX_NOTES_CHARS
from tests.api.test_api import AUTH, locs, settings_for

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "width": {"type": "int", "low": 8, "high": 128},
    "act": {"type": "categorical", "choices": ["relu", "tanh", True]},
}
CREATED = "2026-11-30T12:00:00+00:00"
# (state, value, lr, width, act, step, error)
ROWS: list[tuple[str, float | None, float, int, Any, int | None, str | None]] = [
    ("complete", 0.50, 1e-3, 64, "relu", 4, None),
    ("complete", 0.20, 3e-2, 16, "tanh", 4, None),
    ("pruned", 0.90, 2e-4, 120, "relu", 2, None),
    ("failed", None, 5e-2, 32, True, None, "KeyError: 'units'"),
    ("complete", 0.35, 1e-4, 100, "tanh", 4, None),
    ("queued", None, 7e-3, 8, "relu", None, None),
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tmp_path))) as c:
        yield c


def _document(name: str) -> dict[str, Any]:
    trials = [
        {
            "number": i,
            "params": {"lr": lr, "width": width, "act": act},
            "state": state,
            "value": value,
            "step": step,
            "error": error,
            "seed": i,
            "created_at": CREATED,
            "started_at": None if state == "queued" else CREATED,
            "finished_at": None if state == "queued" else CREATED,
        }
        for i, (state, value, lr, width, act, step, error) in enumerate(ROWS)
    ]
    study = {
        "name": name,
        "objective": "external",
        "objective_args": {},
        "metric": "val_loss",
        "direction": "minimize",
        "space": SPACE,
        "strategy": {"name": "random"},
        "budget": {"max_trials": 20, "max_parallel": 2},
        "seed": 1,
        "state": "paused",
        "created_at": CREATED,
    }
    return {"study": study, "trials": trials}


def _import(client: TestClient, name: str = "table") -> int:
    response = client.post("/api/v1/studies/import", json=_document(name), headers=AUTH)
    assert response.status_code == 201, response.text
    study_id: int = response.json()["id"]
    return study_id


def _numbers(client: TestClient, study_id: int, query: str) -> tuple[list[int], int]:
    response = client.get(f"/api/v1/studies/{study_id}/trials{query}", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    return [t["number"] for t in body["data"]], body["count"]


def test_trials_filter_by_value_and_parameter_ranges(client: TestClient) -> None:
    sid = _import(client)
    assert _numbers(client, sid, "?where=value<=0.5") == ([0, 1, 4], 3)
    assert _numbers(client, sid, "?where=value>=0.3&where=value<=0.6") == ([0, 4], 2)
    assert _numbers(client, sid, "?where=params.lr>=0.001") == ([0, 1, 3, 5], 4)
    assert _numbers(client, sid, "?where=params.width<=32&where=params.lr>=0.01") == ([1, 3], 2)
    assert _numbers(client, sid, "?where=params.act=tanh") == ([1, 4], 2)
    assert _numbers(client, sid, "?where=params.act=true") == ([3], 1)
    assert _numbers(client, sid, "?where=params.lr>=0.001&state=complete") == ([0, 1], 2)
    assert _numbers(client, sid, "?where=params.lr>=0.001&limit=2&offset=1") == ([1, 3], 4)


def test_trials_order_by_a_parameter_in_both_directions(client: TestClient) -> None:
    sid = _import(client)
    assert _numbers(client, sid, "?order=params.width") == ([5, 1, 3, 0, 4, 2], 6)
    assert _numbers(client, sid, "?order=params.width&descending=true")[0] == [2, 4, 0, 3, 1, 5]
    assert _numbers(client, sid, "?order=params.lr&limit=2") == ([4, 2], 6)
    by_act = _numbers(client, sid, "?order=params.act&where=value<=1")[0]
    assert by_act == [0, 2, 1, 4], "text choices sorted as text, ties by number"


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("?where=params.depth>=3", "where", "params.lr"),
        ("?where=params.lr>=abc", "where", "finite number"),
        ("?where=value=3", "where", "takes >= or <="),
        ("?where=params.lr>=nan", "where", "finite number"),
        ("?where=lr>=3", "where", "params.NAME"),
        ("?order=params.depth", "order", "params.width"),
        ("?order=bogus", "order", "number"),
    ],
)
def test_a_bad_filter_or_order_is_422_naming_it(
    client: TestClient, query: str, field: str, words: str
) -> None:
    sid = _import(client)
    for path in ("trials", "trials.csv"):
        response = client.get(f"/api/v1/studies/{sid}/{path}{query}", headers=AUTH)
        assert locs(response) == [field], response.text
        assert words in response.json()["detail"][0]["msg"]


def test_trials_csv_parses_and_matches_the_json_list(client: TestClient) -> None:
    sid = _import(client)
    response = client.get(f"/api/v1/studies/{sid}/trials.csv", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert f'filename="study-{sid}-trials.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    listed = client.get(f"/api/v1/studies/{sid}/trials", headers=AUTH).json()["data"]
    assert len(rows) == len(listed) == len(ROWS)
    assert set(rows[0]) >= {"params_lr", "params_width", "params_act", "error", "pruned_step"}
    for row, trial in zip(rows, listed, strict=True):
        assert int(row["number"]) == trial["number"]
        assert int(row["trial_id"]) == trial["id"]
        assert row["state"] == trial["state"]
        assert (float(row["value"]) if row["value"] else None) == trial["value"]
        assert float(row["params_lr"]) == trial["params"]["lr"]
        assert int(row["params_width"]) == trial["params"]["width"]
        act = trial["params"]["act"]
        assert row["params_act"] == (act if isinstance(act, str) else "true")
        assert row["error"] == (trial["error"] or "")
        pruned = trial["step"] if trial["state"] == "pruned" else None
        assert (int(row["pruned_step"]) if row["pruned_step"] else None) == pruned
    assert rows[2]["pruned_step"] == "2" and rows[3]["error"] == "KeyError: 'units'"

    filtered = client.get(
        f"/api/v1/studies/{sid}/trials.csv?where=params.act=tanh&order=value", headers=AUTH
    )
    assert [r["number"] for r in csv.DictReader(io.StringIO(filtered.text))] == ["1", "4"]


def test_notes_are_kept_changed_by_the_owner_or_an_admin_and_size_limited(
    client: TestClient,
) -> None:
    def token(name: str, role: str = "user") -> dict[str, str]:
        response = client.post("/api/v1/tokens", json={"name": name, "role": role}, headers=AUTH)
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    alice, bob = token("alice"), token("bob")
    spec = {"name": "noted", "objective": "external", "space": SPACE}
    created = client.post("/api/v1/studies", json=spec, headers=alice)
    assert created.status_code == 201 and created.json()["notes"] == ""
    path = f"/api/v1/studies/{created.json()['id']}"

    notes = "# Run 1\n\n*lr* above 1e-2 **diverges**; <script>alert(1)</script>"
    changed = client.patch(path, json={"notes": notes}, headers=alice)
    assert changed.status_code == 200, changed.text
    assert changed.json()["notes"] == notes
    assert client.get(path, headers=bob).json()["notes"] == notes
    assert client.patch(path, json={"notes": "mine now"}, headers=bob).status_code == 403
    by_admin = client.patch(path, json={"notes": "admin was here"}, headers=AUTH)
    assert by_admin.json()["notes"] == "admin was here"
    both = client.patch(path, json={"notes": "", "budget": {"max_trials": 50}}, headers=alice)
    assert both.json()["notes"] == "" and both.json()["budget"]["max_trials"] == 50

    too_long = client.patch(path, json={"notes": "x" * (MAX_NOTES_CHARS + 1)}, headers=alice)
    assert locs(too_long) == ["notes"]
    assert locs(client.patch(path, json={}, headers=alice)) == [""]
    assert client.get(path, headers=alice).json()["notes"] == ""


def test_notes_travel_with_an_export(client: TestClient) -> None:
    sid = _import(client, "exported")
    client.patch(f"/api/v1/studies/{sid}", json={"notes": "keep me"}, headers=AUTH)
    document = client.get(f"/api/v1/studies/{sid}/export", headers=AUTH).json()
    assert document["study"]["notes"] == "keep me"
    copy = client.post("/api/v1/studies/import?name=copied", json=document, headers=AUTH)
    assert copy.status_code == 201 and copy.json()["notes"] == "keep me"
