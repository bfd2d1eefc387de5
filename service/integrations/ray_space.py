"""Ray Tune search spaces (the domains of a `param_space`) as a tunesmith space, and back.

    tune.uniform(a, b), tune.loguniform(a, b)       float [a, b], log scale for loguniform
    tune.randint(a, b), tune.lograndint(a, b)       int [a, b - 1] (Ray excludes b), log scale
                                                    for lograndint
    tune.quniform, qloguniform, qrandint,           the multiples of q in [a, b] (qrandint with
    qlograndint (a, b, q)                           q = 1: in [a, b - 1]) as a grid
                                                    (`grid.Grid`), log scale for the log ones
    tune.choice(categories)                         categorical; categories a tunesmith choice
                                                    cannot hold (lists, dicts, None) are shown
                                                    by their repr and given back as themselves
    anything that is not a domain                   left to Ray (not a study parameter)
    tune.randn, tune.sample_from, grid_search       ValueError naming the parameter

Nested dicts are flattened with "/", Ray's own convention: {"model": {"units": ...}} is the
parameter "model/units", and a configuration is nested again on its way back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ray.tune.search.sample import (
    Categorical,
    Domain,
    Float,
    Integer,
    LogUniform,
    Quantized,
    Uniform,
)

from service.integrations.grid import Grid
from service.params import CategoricalParam, FloatParam, IntParam, Param, Scalar
from service.space import SearchSpace

ToHost = Callable[[Any], Any]


def _leaves(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and "grid_search" in value:
            raise ValueError(f"parameter {path!r}: grid_search cannot be a study parameter")
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{path}/")
        else:
            yield path, value


def _grid_index(bound: float, q: float, inward: Callable[[float], float]) -> int:
    """`bound`'s position among the multiples of `q`, rounded into the domain."""
    scaled = bound / q
    nearest = round(scaled)
    return nearest if math.isclose(scaled, nearest) else int(inward(scaled))


def _numeric(path: str, domain: Float | Integer) -> tuple[Param, ToHost]:
    sampler = domain.get_sampler()
    quantized = isinstance(sampler, Quantized)
    inner = sampler.get_sampler() if quantized else sampler
    if not isinstance(inner, Uniform | LogUniform):
        raise ValueError(f"parameter {path!r}: {domain.domain_str} is not a uniform domain")
    log = isinstance(inner, LogUniform)
    integer = isinstance(domain, Integer)
    if quantized:
        q = sampler.q
        first = _grid_index(domain.lower, q, math.ceil)
        last = _grid_index(domain.upper, q, math.floor) - (1 if integer and q == 1 else 0)
        grid = Grid(first * q, q, last - first + 1, integer=integer, log=log)
        return grid.param(), grid.to_host
    if integer:
        return IntParam(low=int(domain.lower), high=int(domain.upper) - 1, log=log), int
    return FloatParam(low=domain.lower, high=domain.upper, log=log), float


def _choice(path: str, domain: Categorical) -> tuple[Param, ToHost]:
    categories = list(domain.categories)
    if all(isinstance(c, bool | int | float | str) for c in categories):
        return CategoricalParam(choices=categories), lambda v: v
    shown: list[Scalar] = [repr(c) for c in categories]
    if len(set(shown)) != len(shown):
        raise ValueError(f"parameter {path!r}: categories {shown} are not distinct")
    by_repr = dict(zip(shown, categories, strict=True))
    return CategoricalParam(choices=shown), by_repr.__getitem__


class RaySpace:
    """The study space of a Ray Tune `param_space` (see the module's mapping).

    Raises ValueError for a domain tunesmith cannot search, and InvalidSearchSpace when the
    result is not a valid tunesmith space (e.g. no domain at all).
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        params: dict[str, Param] = {}
        self._to_host: dict[str, ToHost] = {}
        for path, value in _leaves(config):
            if not isinstance(value, Domain):
                continue
            if isinstance(value, Float | Integer):
                params[path], self._to_host[path] = _numeric(path, value)
            elif isinstance(value, Categorical):
                params[path], self._to_host[path] = _choice(path, value)
            else:
                raise ValueError(f"parameter {path!r}: {value.domain_str} cannot be searched")
        self.space = SearchSpace(params)

    def host_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A server configuration as Ray's nested config."""
        out: dict[str, Any] = {}
        for path, to_host in self._to_host.items():
            *parents, leaf = path.split("/")
            node = out
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = to_host(params[path])
        return out
