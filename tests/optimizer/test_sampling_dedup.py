"""Random and Sobol never repeat a configuration of the study while an unseen one is left.

On a space with a float parameter the scheduler does not even load the study's trials for
these strategies (a float repeat cannot happen), so the service-level "no duplicates" checks
cannot see this: it is checked here, on finite spaces, through the strategy seam.
"""

from __future__ import annotations

from typing import Any

import pytest

from service.optimizer import Observation, StrategySpec, SuggestRequest
from service.optimizer.sampling import RandomStrategy, SobolStrategy
from service.space import SearchSpace

SIX = SearchSpace.from_spec(
    {
        "k": {"type": "int", "low": 1, "high": 3},
        "c": {"type": "categorical", "choices": ["a", "b"]},
    }
)
ALL = [{"k": k, "c": c} for k in (1, 2, 3) for c in ("a", "b")]
STRATEGIES = {"random": RandomStrategy, "sobol": SobolStrategy}


def _ask(
    name: str,
    *,
    observed: list[dict[str, Any]] = (),  # type: ignore[assignment]
    pending: list[dict[str, Any]] = (),  # type: ignore[assignment]
    count: int = 1,
    seed: int = 0,
) -> list[dict[str, Any]]:
    request = SuggestRequest(
        space=SIX,
        direction="minimize",  # type: ignore[arg-type]
        spec=StrategySpec(name=name),  # type: ignore[arg-type]
        observations=[Observation(c, 1.0, "complete") for c in observed],  # type: ignore[arg-type]
        pending=list(pending),
        count=count,
        seed=seed,
    )
    suggestions = STRATEGIES[name]().suggest(request).suggestions
    assert len(suggestions) == count
    return [s.params for s in suggestions]


def _keys(configs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [SIX.key(c) for c in configs]


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("seed", range(4))
def test_the_last_unseen_configuration_is_found(name: str, seed: int) -> None:
    for missing in range(len(ALL)):
        rest = [c for i, c in enumerate(ALL) if i != missing]
        observed, pending = rest[:3], rest[3:]
        got = _ask(name, observed=observed, pending=pending, seed=seed)
        assert _keys(got) == _keys([ALL[missing]])


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("seed", range(4))
def test_a_batch_covers_the_whole_space_before_any_repeat(name: str, seed: int) -> None:
    got = _ask(name, count=len(ALL), seed=seed)
    assert sorted(_keys(got)) == sorted(_keys(ALL))


@pytest.mark.parametrize("name", STRATEGIES)
def test_an_exhausted_space_still_answers_with_valid_configurations(name: str) -> None:
    got = _ask(name, observed=ALL, count=2)
    assert all(SIX.validate(c) == c for c in got)


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("size", [40, 41])
@pytest.mark.parametrize("seed", range(6))
def test_a_batch_that_needs_several_draws_keeps_every_draws_finds(
    name: str, size: int, seed: int
) -> None:
    """40 configurations asked at once from 40 or 41: random often needs more than one round
    of draws (160 per round) and must keep each round's finds, and no more than asked."""
    space = SearchSpace.from_spec({"k": {"type": "int", "low": 1, "high": size}})
    request = SuggestRequest(
        space=space,
        direction="minimize",  # type: ignore[arg-type]
        spec=StrategySpec(name=name),  # type: ignore[arg-type]
        observations=[],
        pending=[],
        count=40,
        seed=seed,
    )
    got = [s.params["k"] for s in STRATEGIES[name]().suggest(request).suggestions]
    assert len(got) == len(set(got)) == 40
