"""In-process service pieces on a real SQLite database (the store contract suite covers PG)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from service.core.lifecycle import TrialLifecycle
from service.core.scheduling import LeasePolicy, Scheduler
from service.core.studies import create_study
from service.schemas import StudyCreate
from service.store.db import Database


@dataclass
class Service:
    db: Database
    scheduler: Scheduler
    lifecycle: TrialLifecycle

    def create(self, **spec: Any) -> int:
        return create_study(self.db, StudyCreate.model_validate(spec), owner_token_id=None)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    db = Database(f"sqlite:///{tmp_path / 'policies.db'}")
    db.upgrade()
    policy = LeasePolicy(lease_seconds=60, max_retries=1)
    yield Service(db, Scheduler(db, policy), TrialLifecycle(db, policy))
    db.dispose()
