"""RemoteStudy and Client.get_or_create_study against a real server."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.integrations.remote import RemoteStudy, study_spec
from tests.support import ServerProcess

pytestmark = pytest.mark.slow


def _spec(name: str, high: float = 1.0, max_trials: int = 3) -> dict[str, object]:
    return study_spec(
        name,
        {"x": {"type": "float", "low": 0.0, "high": high}},
        direction="minimize",
        metric="loss",
        strategy={"name": "random"},
        max_trials=max_trials,
    )


def test_get_or_create_gives_every_caller_the_same_study(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    clients = [server.client() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        studies = list(pool.map(lambda c: c.get_or_create_study(_spec("shared")), clients))
    assert len({s.id for s in studies}) == 1
    assert clients[0].list_studies().count == 1


def test_a_study_with_another_space_is_refused(start_server: Callable[..., ServerProcess]) -> None:
    client = start_server().client()
    RemoteStudy.open(client, _spec("s"))
    with pytest.raises(ValueError, match="use another study name"):
        RemoteStudy.open(client, _spec("s", high=2.0))


def test_leases_are_kept_alive_until_told(start_server: Callable[..., ServerProcess]) -> None:
    client = start_server(lease_seconds=1.0).client()
    study = RemoteStudy.open(client, _spec("long"))
    trial = study.ask()
    assert trial is not None
    time.sleep(2.5)  # more than two leases: heartbeats every quarter lease kept it
    study.complete(trial.id, 0.5)
    assert client.trial(trial.id).state == "complete"


def test_ask_tells_a_paused_study_from_a_finished_one(
    start_server: Callable[..., ServerProcess],
) -> None:
    client = start_server().client()
    study = RemoteStudy.open(client, _spec("budget", max_trials=1))
    client.pause(study.id)
    assert study.ask() is None and not study.done
    client.resume(study.id)
    trial = study.ask()
    assert trial is not None
    study.complete(trial.id, 1.0)
    assert study.ask() is None and study.done
