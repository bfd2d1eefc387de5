"""Model-free strategies: uniform random and scrambled Sobol, both de-duplicated."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.stats import qmc

from service.optimizer.base import Suggestion, SuggestionInfo, SuggestRequest, SuggestResult
from service.space import SearchSpace


def seen_keys(request: SuggestRequest) -> set[tuple[Any, ...]]:
    space = request.space
    keys = {space.key(o.params) for o in request.observations}
    keys.update(space.key(p) for p in request.pending)
    return keys


def unique_configs(
    space: SearchSpace,
    points: np.ndarray,
    seen: set[tuple[Any, ...]],
    count: int,
) -> list[dict[str, Any]]:
    """Decodes points in order, keeping those not yet seen, until `count` are found."""
    out: list[dict[str, Any]] = []
    for x in points:
        config = space.decode(x)
        key = space.key(config)
        if key in seen:
            continue
        seen.add(key)
        out.append(config)
        if len(out) == count:
            break
    return out


def fill_exhausted(
    space: SearchSpace, rng: np.random.Generator, configs: list[dict[str, Any]], count: int
) -> list[dict[str, Any]]:
    """Pads with repeats when a finite space has no unseen configuration left."""
    while len(configs) < count:
        configs.append(space.sample(rng, 1)[0])
    return configs


class RandomStrategy:
    def suggest(self, request: SuggestRequest) -> SuggestResult:
        space = request.space
        rng = np.random.default_rng(request.seed)
        seen = seen_keys(request)
        configs: list[dict[str, Any]] = []
        for _ in range(20):
            points = np.array([space._random_unit(rng) for _ in range(max(4 * request.count, 16))])
            configs += unique_configs(space, points, seen, request.count - len(configs))
            if len(configs) == request.count:
                break
        configs = fill_exhausted(space, rng, configs, request.count)
        return SuggestResult([Suggestion(c, SuggestionInfo("random")) for c in configs])


class SobolStrategy:
    """Scrambled Sobol points, continuing the sequence where earlier trials left it."""

    def suggest(self, request: SuggestRequest) -> SuggestResult:
        space = request.space
        seed = int(request.state.get("sobol_seed", request.seed))
        position = int(request.state.get("sobol_position", 0))
        sampler = qmc.Sobol(d=max(space.dim, 1), scramble=True, seed=seed)
        if position:
            sampler.fast_forward(position)
        seen = seen_keys(request)
        configs: list[dict[str, Any]] = []
        drawn = 0
        while len(configs) < request.count and drawn < 64 * request.count + 1024:
            batch = max(request.count - len(configs), 1)
            with warnings.catch_warnings():
                # Continuing one sequence in small batches is intended; balance holds overall.
                warnings.filterwarnings("ignore", "The balance properties", UserWarning)
                points = sampler.random(batch)[:, : space.dim]
            drawn += batch
            configs += unique_configs(space, points, seen, request.count - len(configs))
        rng = np.random.default_rng(request.seed)
        configs = fill_exhausted(space, rng, configs, request.count)
        state = {"sobol_seed": seed, "sobol_position": position + drawn}
        return SuggestResult([Suggestion(c, SuggestionInfo("sobol")) for c in configs], state=state)


def random_fill(
    request: SuggestRequest, chosen: Sequence[Suggestion], count: int
) -> list[Suggestion]:
    """`count` random suggestions unlike the request's pending points and the ones already
    `chosen`: what a model-based step hands out when its search finds nothing new or its
    time budget runs out."""
    avoid = [*request.pending, *(s.params for s in chosen)]
    filler = RandomStrategy().suggest(
        replace(request, count=count, pending=avoid, seed=request.seed + len(avoid))
    )
    return filler.suggestions


def out_of_time(time_budget_s: float, left: int, count: int) -> str:
    """The warning of a step whose time budget ran out with `left` of `count` to choose."""
    return (
        f"the suggestion time budget ({time_budget_s:g} s) ran out: "
        f"{left} of {count} suggestions are random"
    )
