"""Training one configuration outside any study (`tunesmith objectives try NAME`).

Which configuration: the objective's source recipe (`Objective.recipe_for(args)`: its
`defaults` restricted to the default space for the arguments) with `params` over it. With
a `sampler`, the parameters not given are drawn by `sampler(space, seed)` from the default
space for the arguments instead; the sampler comes from the caller because objectives/
never imports the service's search-space code. An objective without a recipe needs every
parameter given, or a sampler.

It prints (through `out`) the configuration, the dataset record (once the trainer has
loaded its data), each reported value and the result. Nothing is ever pruned.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from objectives import registry
from objectives.base import TrialContext
from objectives.data import DatasetRecord

Sampler = Callable[[Mapping[str, Mapping[str, Any]], int], dict[str, Any]]


def run_recipe(
    name: str,
    *,
    params: Mapping[str, Any] | None = None,
    args: Mapping[str, Any] | None = None,
    epochs: int | None = None,
    seed: int = 0,
    sampler: Sampler | None = None,
    artifact_dir: Path | None = None,
    out: Callable[[str], None] = print,
) -> float:
    """Trains objective `name` once and returns its final metric value.

    `epochs` overrides `args["epochs"]`. Raises KeyError for an unknown objective,
    ValueError when an objective without a recipe gets no sampler and not every
    parameter, pydantic.ValidationError for invalid `args`, and whatever the trainer
    raises (e.g. `objectives.data.DataUnavailable`, `TrialDiverged`).
    """
    objective = registry.get(name)
    obj_args = dict(args or {})
    if epochs is not None:
        obj_args["epochs"] = epochs
    config, origin = _configuration(objective.recipe_for(obj_args), dict(params or {}),
                                    objective.space_for(obj_args), sampler, seed, name)
    artifacts = artifact_dir or Path(tempfile.mkdtemp(prefix=f"tunesmith-{name}-"))

    def report(step: int, value: float) -> bool:
        out(f"  epoch {step}: {objective.metric} = {value:.6g}")
        return False

    def dataset(record: dict[str, Any]) -> None:
        out(f"dataset: {DatasetRecord(**record).summary()}")

    ctx = TrialContext(trial_id=0, study_id=0, seed=seed, artifact_dir=artifacts,
                       report_fn=report, dataset_fn=dataset)
    out(f"training {name} with {config} ({origin})")
    started = time.perf_counter()
    value = objective.run(config, obj_args, ctx)
    out(f"{objective.metric} = {value:.6g} ({objective.direction}) in "
        f"{time.perf_counter() - started:.1f} s; artifacts in {artifacts}")
    return value


def _configuration(
    recipe: dict[str, Any] | None, given: dict[str, Any], space: Mapping[str, Any],
    sampler: Sampler | None, seed: int, name: str,
) -> tuple[dict[str, Any], str]:
    """(the configuration, where its values come from)."""
    if sampler is not None:
        return {**sampler(space, seed), **given}, f"sampled with seed {seed}"
    if recipe is not None:
        return {**recipe, **given}, "the recipe's defaults" + (" and --params" if given else "")
    missing = sorted(set(space) - set(given))
    if missing:
        raise ValueError(f"{name} has no recipe defaults; give {missing} or sample them")
    return given, "the given parameters"
