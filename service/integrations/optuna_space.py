"""Optuna distributions as tunesmith parameters: for the in-process engine, and for a mirror.

The engine mapping is exact: the GP searches the same set of values Optuna allows.

    FloatDistribution(low, high, log)          float [low, high], log scale if log
    FloatDistribution(low, high, step=s)       int 0..n, the grid index: value low + i * s
    IntDistribution(low, high, log), step 1    int [low, high], log scale if log
    IntDistribution(low, high, step=s > 1)     int 0..n, the grid index: value low + i * s
    CategoricalDistribution(choices)           categorical over the indices 0..k-1

Single-value distributions have no engine parameter: the sampler leaves them to Optuna.

The mirror mapping shows the values themselves on a tunesmith server: floats and ints keep
their range and scale (a step only restricts which values occur), categorical choices keep
their values (None, which tunesmith choices cannot hold, is shown as "None"), and a
single-value distribution is a fixed parameter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from service.params import (
    CategoricalParam,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    Scalar,
)
from service.space import SearchSpace


def _grid_size(dist: FloatDistribution | IntDistribution) -> int:
    """The largest grid index of a stepped distribution (Optuna makes high land on it)."""
    assert dist.step is not None
    return round((dist.high - dist.low) / dist.step)


def _is_grid(dist: BaseDistribution) -> bool:
    if isinstance(dist, FloatDistribution):
        return dist.step is not None
    return isinstance(dist, IntDistribution) and dist.step != 1


def engine_param(dist: BaseDistribution) -> Param:
    """The engine's parameter for a distribution that is not single-valued."""
    if isinstance(dist, CategoricalDistribution):
        return CategoricalParam(choices=list(range(len(dist.choices))))
    if isinstance(dist, FloatDistribution | IntDistribution) and _is_grid(dist):
        return IntParam(low=0, high=_grid_size(dist))
    if isinstance(dist, FloatDistribution):
        return FloatParam(low=dist.low, high=dist.high, log=dist.log)
    if isinstance(dist, IntDistribution):
        return IntParam(low=dist.low, high=dist.high, log=dist.log)
    raise ValueError(f"unsupported Optuna distribution {dist!r}")


class EngineSpace:
    """A relative search space (no single-valued distribution) as a tunesmith SearchSpace."""

    def __init__(self, distributions: Mapping[str, BaseDistribution]) -> None:
        self.distributions = dict(distributions)
        self.space = SearchSpace({n: engine_param(d) for n, d in self.distributions.items()})
        self.key = json.dumps(
            {n: distribution_to_json(d) for n, d in sorted(self.distributions.items())}
        )

    def contains(self, distributions: Mapping[str, BaseDistribution]) -> bool:
        """Whether a trial with these distributions has every parameter, distributed alike."""
        return all(distributions.get(n) == d for n, d in self.distributions.items())

    def to_engine(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """An Optuna trial's values as an engine configuration."""
        out: dict[str, Any] = {}
        for name, dist in self.distributions.items():
            value = params[name]
            if isinstance(dist, CategoricalDistribution):
                out[name] = int(dist.to_internal_repr(value))
            elif isinstance(dist, FloatDistribution | IntDistribution) and _is_grid(dist):
                assert dist.step is not None
                out[name] = min(max(round((value - dist.low) / dist.step), 0), _grid_size(dist))
            else:
                out[name] = value
        return out

    def to_optuna(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """An engine configuration as the values Optuna stores (Python ints and floats)."""
        out: dict[str, Any] = {}
        for name, dist in self.distributions.items():
            value = config[name]
            if isinstance(dist, CategoricalDistribution):
                out[name] = dist.choices[int(value)]
            elif isinstance(dist, FloatDistribution) and dist.step is not None:
                out[name] = float(min(dist.low + int(value) * dist.step, dist.high))
            elif isinstance(dist, IntDistribution) and dist.step != 1:
                out[name] = int(dist.low + int(value) * dist.step)
            elif isinstance(dist, IntDistribution):
                out[name] = int(value)
            else:
                out[name] = float(value)
        return out


def _shown(choice: Any) -> Scalar:
    return "None" if choice is None else choice


def mirror_param(dist: BaseDistribution) -> Param:
    """The parameter a mirror study shows for a distribution (values as Optuna has them)."""
    if dist.single():
        if isinstance(dist, CategoricalDistribution):
            return FixedParam(value=_shown(dist.choices[0]))
        assert isinstance(dist, FloatDistribution | IntDistribution)
        return FixedParam(value=dist.low)
    if isinstance(dist, CategoricalDistribution):
        return CategoricalParam(choices=[_shown(c) for c in dist.choices])
    if isinstance(dist, FloatDistribution):
        return FloatParam(low=dist.low, high=dist.high, log=dist.log)
    if isinstance(dist, IntDistribution):
        return IntParam(low=dist.low, high=dist.high, log=dist.log)
    raise ValueError(f"unsupported Optuna distribution {dist!r}")


def mirror_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """An Optuna trial's values as a mirror study stores them."""
    return {name: _shown(value) for name, value in params.items()}
