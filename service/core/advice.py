"""Warnings a study's own specification earns, computed whenever the study is shown (its
budget can change, a plugin can be upgraded), next to the warnings recorded while it runs.

- A model-based `gp` study whose budget is no larger than its initial design never uses
  its model: every trial is a Sobol point.
- A dead parameter: the study searches a parameter its objective's trainer does not read
  (any more) with the study's arguments, e.g. after a plugin upgrade that dropped it, or in
  a study stored before the trainer contract (`Objective.complete_space`) was checked.
  New studies with such a parameter are refused instead.
"""

from __future__ import annotations

from pydantic import ValidationError

from objectives import registry
from objectives.registry import EXTERNAL
from service.errors import InvalidSearchSpace
from service.optimizer.model import default_n_initial
from service.space import SearchSpace
from service.specs import StrategyName, StrategySpec
from service.store.models import Study


def study_advice(study: Study) -> list[str]:
    """The warnings `study`'s specification earns now (empty when none)."""
    return [*_initial_design_covers_budget(study), *_dead_parameters(study)]


def _initial_design_covers_budget(study: Study) -> list[str]:
    strategy = StrategySpec.model_validate(study.strategy)
    if strategy.name != StrategyName.GP or study.warm_start:
        return []
    try:
        n_initial = strategy.n_initial or default_n_initial(SearchSpace.from_spec(study.space))
    except InvalidSearchSpace:
        return []
    max_trials = int(study.budget["max_trials"])
    if max_trials > n_initial:
        return []
    return [
        f"budget.max_trials ({max_trials}) is not larger than the initial design "
        f"(strategy.n_initial: {n_initial} Sobol trials): the GP is never used; raise "
        f"budget.max_trials above {n_initial} or lower strategy.n_initial"
    ]


def _dead_parameters(study: Study) -> list[str]:
    if study.objective == EXTERNAL:
        return []
    try:
        objective = registry.get(study.objective)
        declared = objective.parameters_for(study.objective_args)
    except (KeyError, ValidationError):
        return []
    return [
        f"dead parameter: space.{name} is not read by objective {study.objective!r} with "
        f"these objective_args; searching it changes nothing (its parameters: "
        f"{sorted(declared)})"
        for name in study.space
        if name not in declared
    ]
