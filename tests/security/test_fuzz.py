"""Fuzzing: schemathesis generates requests from the service's own OpenAPI document.

Every documented operation is called with valid and invalid data (bodies, path and query
parameters) against the real app on a real SQLite file, as admin. Checks: no 5xx, every
status code documented, every JSON answer valid against its documented schema, content
types as documented. Half of the generated ids are rewritten to ids that exist (the seeded
study, its trials; a throwaway study for DELETE, which never deletes the seeded one), so
the handlers run past their 404s. The number of requests made is
printed by the last test and must be > 0 for every operation.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

from service.core.studies import create_study
from service.schemas import StudyCreate
from tests.security.conftest import Seeded

MAX_EXAMPLES = 20
MISSING = 2**31 - 1
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
REQUESTS: Counter[str] = Counter()
_turn = itertools.count()


@pytest.fixture(scope="module")
def api_schema(seeded_any: Seeded) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", seeded_any.app)


def _point_at_seeded_rows(case: Any, seeded: Seeded) -> None:
    path = case.path_parameters or {}
    query = case.query if isinstance(case.query, dict) else None
    if case.operation.path.endswith("/events") and query is not None:
        query["once"] = "true"  # a live stream never ends; the first state is enough
    elif case.operation.path.endswith("/events"):
        case.query = {"once": "true"}
    if "token_id" in path and path["token_id"] == 1:
        path["token_id"] = seeded.token_ids[next(iter(seeded.token_ids))]  # keep the admin
    deleting_a_study = case.operation.method.upper() == "DELETE" and "study_id" in path
    if deleting_a_study and path["study_id"] == seeded.study_id:
        path["study_id"] = MISSING  # the seeded study stays: the other operations aim at it
    if next(_turn) % 2:
        return
    if deleting_a_study:
        path["study_id"] = _throwaway_study(seeded)
        return
    if "study_id" in path:
        path["study_id"] = seeded.study_id
    if "trial_id" in path:
        path["trial_id"] = seeded.trial_ids[next(_turn) % len(seeded.trial_ids)]
    if "token_id" in path:
        path["token_id"] = seeded.token_ids[next(iter(seeded.token_ids))]
    body = case.body
    if isinstance(body, dict) and "lease_token" in body and seeded.running:
        trial_id = path.get("trial_id")
        if trial_id in seeded.running:
            body["lease_token"] = seeded.running[trial_id]


def _throwaway_study(seeded: Seeded) -> int:
    spec = {"name": f"throwaway-{next(_turn)}", "objective": "synthetic", "budget": {}}
    study_id = create_study(seeded.ctx.db, StudyCreate.model_validate(spec), owner_token_id=None)
    seeded.ctx.scheduler.suggest(study_id, 2)  # trials to delete with it
    return study_id


def _fuzz(operation: Any, seeded: Seeded) -> None:
    headers = {"Authorization": f"Bearer {seeded.admin}"}
    name = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        _point_at_seeded_rows(case, seeded)
        response = case.call(headers=headers)
        REQUESTS[name] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


def test_every_operation_survives_fuzzing(api_schema: Any, seeded_any: Seeded) -> None:
    seeded = seeded_any
    REQUESTS.clear()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20, [f"{o.method} {o.path}" for o in operations]
    failures: list[str] = []
    for operation in operations:
        try:
            _fuzz(operation, seeded)
        except Exception as exc:  # collect them all: one report names every broken route
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    total = sum(REQUESTS.values())
    print(f"\nfuzzed {total} requests over {len(operations)} operations")
    for name, n in sorted(REQUESTS.items()):
        print(f"  {n:>5}  {name}")
    missing = {f"{o.method.upper()} {o.path}" for o in operations} - set(REQUESTS)
    assert not missing, f"operations never called: {sorted(missing)}"
    assert not failures, "\n\n".join(failures)
