"""While a poisoned study exists, every other study's workers keep leasing (real server, real
workers, SQLite and PostgreSQL).

The poison is a stored space this version refuses (an int bound of 10^330, which an older
version accepted): every lease request used to answer 500 for every study until someone
stopped it. Now the study is set aside with the reason, the other studies finish, and the
studies list stays readable.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import update

from service.store.db import Database
from service.store.models import Study
from tests.support import ServerProcess, WorkerGroup, finished, wait_until

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)  # its waits: the server's start (180 s) and the studies (240 s)
def test_other_studies_finish_while_a_poisoned_study_exists(
    database_url: str,
    start_server: Callable[..., ServerProcess],
    start_workers: Callable[..., WorkerGroup],
) -> None:
    server = start_server(database_url)
    client = server.client()
    poisoned = client.create_study(
        {"name": "poisoned", "objective": "synthetic", "strategy": {"name": "random"}}
    )
    healthy = client.create_study(
        {
            "name": "healthy",
            "objective": "synthetic",
            "strategy": {"name": "random"},
            "budget": {"max_trials": 8, "max_parallel": 2},
        }
    )
    db = Database(database_url)
    try:
        with db.write() as session:
            space = {"x": {"type": "int", "low": 0, "high": 10**330}}
            session.execute(update(Study).where(Study.id == poisoned.id).values(space=space))
    finally:
        db.dispose()
    start_workers(server, "--cpu-workers", "2")
    wait_until(
        lambda: client.get_study(healthy.id).state == "done",
        timeout=240,
        interval=0.5,
        what="the healthy study to finish",
        detail=server.log_tail,
    )
    assert finished(client.get_study(healthy.id)) == 8
    shown = client.get_study(poisoned.id)
    assert shown.state == "running" and shown.n_trials == 0
    assert shown.suggest_error is not None and "InvalidSearchSpace" in shown.suggest_error
    assert any(w.startswith("suggestions failing: ") for w in shown.warnings)
    assert {s.name for s in client.list_studies().data} == {"poisoned", "healthy"}
