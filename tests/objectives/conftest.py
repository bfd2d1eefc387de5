"""Fixtures for trainer tests: a recording TrialContext factory, an empty Keras dataset cache
for every test (so no test depends on what this machine has downloaded), and the Keras skip.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from objectives.base import TrialContext
from objectives.data import forget_loaded

HAS_TF = (
    importlib.util.find_spec("tensorflow") is not None
    and importlib.util.find_spec("keras") is not None
)
requires_tf = pytest.mark.skipif(not HAS_TF, reason="tensorflow/keras not installed ([tf] extra)")


@pytest.fixture(autouse=True)
def empty_keras_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """KERAS_HOME is a fresh folder and no dataset origin is configured; yields KERAS_HOME."""
    home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.delenv("TUNESMITH_DATA_ORIGIN", raising=False)
    forget_loaded()
    yield home
    forget_loaded()


@dataclass
class Reports:
    """Records `ctx.report` and `ctx.note_dataset` calls in order (`events`); asks to stop
    once `prune_at` is reached."""

    prune_at: int | None = None
    calls: list[tuple[int, float]] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def __call__(self, step: int, value: float) -> bool:
        self.calls.append((step, value))
        self.events.append("report")
        return self.prune_at is not None and step >= self.prune_at

    def dataset(self, record: dict[str, Any]) -> None:
        self.datasets.append(record)
        self.events.append("dataset")


MakeCtx = Callable[..., tuple[TrialContext, Reports]]


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder per test session, so the GAN's feature classifier trains once."""
    return tmp_path_factory.mktemp("objective-cache")


@pytest.fixture
def make_ctx(tmp_path: Path) -> MakeCtx:
    counter = iter(range(1, 1000))

    def make(
        *, seed: int = 7, prune_at: int | None = None, deadline: float | None = None
    ) -> tuple[TrialContext, Reports]:
        reports = Reports(prune_at=prune_at)
        trial = next(counter)
        ctx = TrialContext(
            trial_id=trial,
            study_id=1,
            seed=seed,
            artifact_dir=tmp_path / f"trial-{trial}",
            report_fn=reports,
            dataset_fn=reports.dataset,
            deadline=deadline,
            threads=1,
        )
        return ctx, reports

    return make
