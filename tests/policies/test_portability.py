"""Export a study with everything in it and import it elsewhere (SQLite to PostgreSQL too)."""

from __future__ import annotations

import pytest

from service.domain import TrialState
from service.errors import Conflict, InvalidConfiguration, InvalidRequest
from service.portability import StudyDocument, export_study, import_study
from service.store import repository as repo
from service.store.db import Database
from tests.policies.conftest import Service

SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}, "k": {"type": "int", "low": 1, "high": 4}}


def _study_with_history(service: Service) -> int:
    study = service.create(
        name="portable",
        objective="external",
        space=SPACE,
        budget={"max_trials": 6},
        strategy={"name": "sobol"},
    )
    trials = service.scheduler.suggest(study, 4).trials
    for i, t in enumerate(trials[:2]):
        service.lifecycle.report(t.id, t.lease_token or "", 1, 10.0 + i)
        service.lifecycle.complete(t.id, t.lease_token or "", 1.0 + i)
    service.lifecycle.fail(trials[2].id, trials[2].lease_token or "", "diverged: nan")
    return study


def test_round_trip_into_another_database(service: Service, database_url: str) -> None:
    source = _study_with_history(service)
    document = StudyDocument.model_validate_json(export_study(service.db, source).model_dump_json())
    target = Database(database_url)
    target.upgrade()
    try:
        new_id = import_study(target, document)
        again = export_study(target, new_id)
    finally:
        target.dispose()
    assert again.study.name == "portable"
    assert len(again.trials) == len(document.trials) == 4
    by_number = {t.number: t for t in again.trials}
    for old in document.trials:
        new = by_number[old.number]
        assert (new.params, new.value, new.error, new.values) == (
            old.params,
            old.value,
            old.error,
            old.values,
        )
        expected = TrialState.QUEUED if old.state is TrialState.RUNNING else old.state
        assert new.state is expected
    assert [len(t.attempts) for t in again.trials] == [1, 1, 1, 1]


def test_import_refuses_a_taken_name_and_bad_trials(service: Service) -> None:
    source = _study_with_history(service)
    document = export_study(service.db, source)
    with pytest.raises(Conflict):
        import_study(service.db, document)
    renamed = import_study(service.db, document, name="portable-copy")
    with service.db.read() as session:
        assert repo.get_study(session, renamed).name == "portable-copy"
    document.trials[0].params["x"] = 7.0
    with pytest.raises(InvalidConfiguration, match=r"trials\.0\.params\.x"):
        import_study(service.db, document, name="broken")


def test_several_objectives_and_constraints_round_trip(service: Service) -> None:
    study = service.create(
        name="pareto",
        objective="external",
        space=SPACE,
        budget={"max_trials": 6},
        strategy={"name": "sobol"},
        objectives=[
            {"metric": "loss", "direction": "minimize"},
            {"metric": "acc", "direction": "maximize"},
        ],
        constraints=[{"metric": "n_params", "max": 100}],
    )
    a, b, c = service.scheduler.suggest(study, 3).trials
    done = service.lifecycle.complete
    done(a.id, a.lease_token or "", values=[0.5, 0.9], metrics={"n_params": 50})
    done(b.id, b.lease_token or "", values=[0.1, 0.95], metrics={"n_params": 500})
    service.lifecycle.fail(c.id, c.lease_token or "", "out of memory", infeasible=True)
    document = StudyDocument.model_validate_json(export_study(service.db, study).model_dump_json())
    assert [o.metric for o in document.study.objectives or []] == ["loss", "acc"]
    copy = export_study(service.db, import_study(service.db, document, name="pareto-copy"))
    assert copy.study.constraints == document.study.constraints
    got = {t.number: (t.objective_values, t.metrics, t.feasible) for t in copy.trials}
    assert got == {
        a.number: ([0.5, 0.9], {"n_params": 50.0}, True),
        b.number: ([0.1, 0.95], {"n_params": 500.0}, False),
        c.number: (None, None, False),
    }
    document.trials[0].objective_values = [1.0]
    with pytest.raises(InvalidRequest, match=r"trials\.0\.objective_values"):
        import_study(service.db, document, name="short")
