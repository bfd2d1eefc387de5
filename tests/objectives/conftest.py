"""Fixtures for trainer tests: a recording TrialContext factory and the TensorFlow skip."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from objectives.base import TrialContext

HAS_TF = (
    importlib.util.find_spec("tensorflow") is not None
    and importlib.util.find_spec("keras") is not None
)
requires_tf = pytest.mark.skipif(not HAS_TF, reason="tensorflow/keras not installed ([tf] extra)")


@dataclass
class Reports:
    """Records `ctx.report` calls; asks to stop once `prune_at` is reached."""

    prune_at: int | None = None
    calls: list[tuple[int, float]] = field(default_factory=list)

    def __call__(self, step: int, value: float) -> bool:
        self.calls.append((step, value))
        return self.prune_at is not None and step >= self.prune_at


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
            deadline=deadline,
            threads=1,
        )
        return ctx, reports

    return make
