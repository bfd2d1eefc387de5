"""Fuzzing: schemathesis generates requests from the service's own OpenAPI document.

Every documented operation is called with valid and invalid data (bodies, path and query
parameters) against the real app on a real SQLite file (and PostgreSQL), as each role:
admin, user, worker and viewer. Checks: no 5xx, every status code documented, every JSON
answer valid against its documented schema, content types as documented.

Expected refusals come from the role table (tests/security/test_roles.py ROUTES): a role
that may not call an operation gets 403 for every request to it, whatever the data (the
role is checked before the body and parameters), and nothing else; a role that may call it
never gets 401 (its token is valid), and 403 only where `_refused_past_the_role` says so.

Half of the generated ids are rewritten to ids that exist (the seeded study, its trials;
throwaway studies and tokens for DELETE, which never deletes the seeded ones), so the
handlers run past their 404s. The number of requests made is printed by each test and must
be > 0 for every operation.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

from service.auth import create_token
from service.core.studies import create_study
from service.domain import Role
from service.schemas import StudyCreate
from tests.security.conftest import Seeded
from tests.security.test_roles import ROUTES

MAX_EXAMPLES = {Role.ADMIN: 20, Role.USER: 8, Role.WORKER: 8, Role.VIEWER: 8}
"""Examples per operation a role may call (admin explores most; the others repeat much)."""
DENIED_EXAMPLES = 3
"""Examples per operation a role may not call: each must be a plain 403."""
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
    if "token_id" in path and path["token_id"] in (1, *seeded.token_ids.values()):
        path["token_id"] = MISSING  # the seeded tokens stay: every role is fuzzed with them
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
        path["token_id"] = _throwaway_token(seeded)
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


def _may_call(role: Role, method: str, path: str) -> bool:
    roles, _ = ROUTES[(method, path)]
    return roles is None or role in roles


def _refused_past_the_role(role: Role, method: str, path: str) -> bool:
    """Where a role that may call an operation still gets 403, by design:
    - a user changing a study it does not own (the seeded studies have no owner: only an
      admin may change them), service.api.deps.owned_study;
    - an artifact upload without the trial's lease token by a caller that does not own the
      study (user, worker), service.api.artifacts;
    - a lease under a worker id that another token holds (the admin's and the worker's
      tokens both lease here, in any order), service.api.workers; the only 403 an admin gets.
    """
    if path.endswith("/lease"):
        return True
    if role is Role.ADMIN:
        return False
    if method == "PUT" and path.endswith("/artifacts/{name}"):
        return True
    return role is Role.USER and method != "GET" and path.startswith("/api/v1/studies/{study_id}")


def _throwaway_token(seeded: Seeded) -> int:
    row, _ = create_token(seeded.ctx.db, name=f"throwaway-{next(_turn)}", role=Role.VIEWER)
    return int(row.id)


def _fuzz(operation: Any, seeded: Seeded, role: Role) -> None:
    headers = {"Authorization": f"Bearer {seeded.tokens[role]}"}
    method = operation.method.upper()
    name = f"{method} {operation.path}"
    allowed = _may_call(role, method, operation.path)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES[role] if allowed else DENIED_EXAMPLES,
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
        if allowed:
            assert response.status_code != 401, (role.value, name, response.text)
            if response.status_code == 403:
                assert _refused_past_the_role(role, method, operation.path), (
                    role.value,
                    name,
                    response.text,
                )
        else:
            assert response.status_code == 403, (role.value, name, response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


@pytest.mark.parametrize("role", list(Role), ids=str)
def test_every_operation_survives_fuzzing(api_schema: Any, seeded_any: Seeded, role: Role) -> None:
    seeded = seeded_any
    REQUESTS.clear()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20, [f"{o.method} {o.path}" for o in operations]
    failures: list[str] = []
    for operation in operations:
        try:
            _fuzz(operation, seeded, role)
        except Exception as exc:  # collect them all: one report names every broken route
            inner = getattr(exc, "exceptions", ())  # hypothesis wraps flaky failures
            detail = "; ".join(repr(e) for e in inner) if inner else ""
            failures.append(f"{operation.method.upper()} {operation.path}: {exc} {detail}")
    total = sum(REQUESTS.values())
    print(f"\nfuzzed {total} requests over {len(operations)} operations as {role.value}")
    for name, n in sorted(REQUESTS.items()):
        print(f"  {n:>5}  {name}")
    missing = {f"{o.method.upper()} {o.path}" for o in operations} - set(REQUESTS)
    assert not missing, f"operations never called: {sorted(missing)}"
    assert not failures, "\n\n".join(failures)
