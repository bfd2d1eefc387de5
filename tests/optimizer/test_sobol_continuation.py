"""Sobol continues one scrambled sequence across calls: the study's first call fixes the
sequence's seed and every call advances its position (kept in the strategy state), so a
study's initial design is the same points whether asked one at a time or all at once, even
though the scheduler passes a different seed on every call."""

from __future__ import annotations

from typing import Any

from service.optimizer import StrategySpec, SuggestRequest
from service.optimizer.sampling import SobolStrategy
from service.space import SearchSpace

CUBE = SearchSpace.from_spec(
    {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(3)}
)


def _ask(count: int, seed: int, state: dict[str, Any]) -> tuple[list[dict[str, Any]], dict]:
    request = SuggestRequest(
        CUBE, "minimize", StrategySpec(name="sobol"), [], [], count, seed, state  # type: ignore[arg-type]
    )
    result = SobolStrategy().suggest(request)
    return [s.params for s in result.suggestions], result.state


def test_one_at_a_time_gives_the_points_of_one_batch() -> None:
    batch, state = _ask(8, seed=1000, state={})
    assert state == {"sobol_seed": 1000, "sobol_position": 8}
    one_by_one: list[dict[str, Any]] = []
    state = {}
    for call in range(8):
        points, state = _ask(1, seed=1000 + call, state=state)
        one_by_one += points
    assert one_by_one == batch
    assert state == {"sobol_seed": 1000, "sobol_position": 8}


def test_the_stored_seed_and_position_decide_the_next_points() -> None:
    first, state = _ask(4, seed=5, state={})
    rest, _ = _ask(4, seed=77, state=state)
    both, _ = _ask(8, seed=5, state={})
    assert first + rest == both
    other, _ = _ask(4, seed=6, state={})
    assert other != first
