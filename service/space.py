"""Search spaces: configurations checked against parameters, and the one encoder to and from
the unit cube (the parameters' JSON form and its validation are in `service.params`).

Every strategy sees configurations only through `SearchSpace.encode` / `SearchSpace.decode`:

    float (linear)      1 column, (v - low) / (high - low)
    float (log)         1 column, (log v - log low) / (log high - log low)
    int (linear / log)  1 column over [low - 0.5, high + 0.5] (log: [low - 0.5, high + 0.5]
                        mapped through log), decoded by rounding, so each integer owns an
                        equal share of the column (in the warped scale)
    categorical         k one-hot columns, decoded by argmax
    fixed               no column

Shapes: a configuration encodes to x with shape (dim,); a batch to X with shape (n, dim).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from service.errors import InvalidConfiguration, InvalidSearchSpace
from service.params import (
    MAX_PARAMS,
    CategoricalParam,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    choice_key,
    parse_space,
)


@dataclass(frozen=True)
class Column:
    """Where one parameter lives in the encoded vector."""

    name: str
    start: int
    stop: int
    kind: Literal["continuous", "integer", "categorical"]


class SearchSpace:
    """An ordered, immutable set of named parameters."""

    def __init__(self, params: Mapping[str, Param]) -> None:
        if not params:
            raise InvalidSearchSpace("space must have at least one parameter", field="space")
        if len(params) > MAX_PARAMS:
            raise InvalidSearchSpace(
                f"space has {len(params)} parameters; at most {MAX_PARAMS} are allowed",
                field="space",
            )
        self.params: dict[str, Param] = dict(params)
        columns: list[Column] = []
        start = 0
        for name, p in self.params.items():
            if isinstance(p, FloatParam):
                columns.append(Column(name, start, start + 1, "continuous"))
                start += 1
            elif isinstance(p, IntParam):
                columns.append(Column(name, start, start + 1, "integer"))
                start += 1
            elif isinstance(p, CategoricalParam):
                width = len(p.choices)
                columns.append(Column(name, start, start + width, "categorical"))
                start += width
        self.columns: tuple[Column, ...] = tuple(columns)
        self.dim = start

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], *, field: str = "space") -> SearchSpace:
        """Parses the JSON form; raises InvalidSearchSpace naming the offending field."""
        return cls(parse_space(spec, field=field))

    def to_spec(self) -> dict[str, dict[str, Any]]:
        return {name: p.model_dump() for name, p in self.params.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(repr(self.to_spec()))

    def __repr__(self) -> str:
        return f"SearchSpace({self.to_spec()!r})"

    @property
    def names(self) -> list[str]:
        return list(self.params)

    # ---- validation -------------------------------------------------------------------------

    def validate(self, config: Mapping[str, Any], *, field: str = "params") -> dict[str, Any]:
        """Returns the configuration coerced to the space's types (ints as int, floats as float).

        Raises InvalidConfiguration naming the parameter when a value is missing, unknown,
        of the wrong type or out of range. Fixed parameters may be omitted.
        """
        if not isinstance(config, Mapping):
            raise InvalidConfiguration(f"{field} must be an object", field=field)
        unknown = sorted(set(config) - set(self.params))
        if unknown:
            raise InvalidConfiguration(
                f"{field}.{unknown[0]}: not a parameter of the space (known: {self.names})",
                field=f"{field}.{unknown[0]}",
            )
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            where = f"{field}.{name}"
            if name not in config:
                if isinstance(p, FixedParam):
                    out[name] = p.value
                    continue
                raise InvalidConfiguration(f"{where}: missing", field=where)
            out[name] = _coerce(p, config[name], where)
        return out

    def contains(self, config: Mapping[str, Any]) -> bool:
        try:
            self.validate(config)
        except InvalidConfiguration:
            return False
        return True

    def key(self, config: Mapping[str, Any]) -> tuple[Any, ...]:
        """A hashable identity for duplicate detection (floats compared to 12 significant
        digits)."""
        parts: list[Any] = []
        for name, p in self.params.items():
            v = config[name] if name in config else getattr(p, "value", None)
            if isinstance(p, FloatParam):
                parts.append(float(f"{float(v):.12g}"))  # type: ignore[arg-type]
            else:
                parts.append(choice_key(v))
        return tuple(parts)

    def cardinality(self) -> int | None:
        """Number of distinct configurations, or None when a float parameter makes it infinite."""
        total = 1
        for p in self.params.values():
            if isinstance(p, FloatParam):
                return None
            if isinstance(p, IntParam):
                total *= p.high - p.low + 1
            elif isinstance(p, CategoricalParam):
                total *= len(p.choices)
        return total

    # ---- encoding ---------------------------------------------------------------------------

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        x = np.zeros(self.dim)
        for col in self.columns:
            p = self.params[col.name]
            v = config[col.name]
            if isinstance(p, FloatParam):
                x[col.start] = _to_unit(float(v), p.low, p.high, p.log)
            elif isinstance(p, IntParam):
                x[col.start] = _to_unit(float(v), p.low - 0.5, p.high + 0.5, p.log)
            elif isinstance(p, CategoricalParam):
                idx = [choice_key(c) for c in p.choices].index(choice_key(v))
                x[col.start + idx] = 1.0
        return x

    def encode_many(self, configs: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """`encode` for a batch, one column at a time (shape (n, dim))."""
        configs = list(configs)
        X = np.zeros((len(configs), self.dim))
        if not configs:
            return X
        for col in self.columns:
            p = self.params[col.name]
            values = [c[col.name] for c in configs]
            if isinstance(p, FloatParam):
                v = np.array(values, dtype=float)
                X[:, col.start] = _to_unit_array(v, p.low, p.high, p.log)
            elif isinstance(p, IntParam):
                v = np.array(values, dtype=float)
                X[:, col.start] = _to_unit_array(v, p.low - 0.5, p.high + 0.5, p.log)
            elif isinstance(p, CategoricalParam):
                index = {choice_key(c): i for i, c in enumerate(p.choices)}
                idx = np.array([index[choice_key(v)] for v in values])
                X[np.arange(len(configs)), col.start + idx] = 1.0
        return X

    def decode(self, x: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """Maps a point of the unit cube (values outside are clipped) to a valid configuration."""
        x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if isinstance(p, FixedParam):
                out[name] = p.value
        for col in self.columns:
            p = self.params[col.name]
            if isinstance(p, FloatParam):
                v = _from_unit(float(x[col.start]), p.low, p.high, p.log)
                out[col.name] = float(min(max(v, p.low), p.high))
            elif isinstance(p, IntParam):
                v = _from_unit(float(x[col.start]), p.low - 0.5, p.high + 0.5, p.log)
                out[col.name] = int(min(max(round(v), p.low), p.high))
            elif isinstance(p, CategoricalParam):
                out[col.name] = p.choices[int(np.argmax(x[col.start : col.stop]))]
        return {name: out[name] for name in self.params}

    def snap(self, x: np.ndarray) -> np.ndarray:
        """Rounds an encoded point to the encoding of the configuration it decodes to."""
        return self.encode(self.decode(x))

    def snap_many(self, X: np.ndarray) -> np.ndarray:
        """Vectorized `snap` for a batch (n, dim): floats clipped, integers rounded in their
        warped scale, categorical blocks set to the one-hot of their largest entry."""
        X = np.clip(np.array(X, dtype=float), 0.0, 1.0).reshape(-1, self.dim)
        for col in self.columns:
            p = self.params[col.name]
            if isinstance(p, IntParam):
                lo, hi = p.low - 0.5, p.high + 0.5
                v = _from_unit_array(X[:, col.start], lo, hi, p.log)
                r = np.clip(np.round(v), p.low, p.high)
                X[:, col.start] = _to_unit_array(r, lo, hi, p.log)
            elif col.kind == "categorical":
                block = X[:, col.start : col.stop]
                idx = np.argmax(block, axis=1)
                block[:] = 0.0
                block[np.arange(len(X)), idx] = 1.0
        return X

    def enumerate_configs(self, limit: int) -> list[dict[str, Any]] | None:
        """Every configuration of a finite space in a fixed order; None when there are more
        than `limit` (or infinitely many)."""
        total = self.cardinality()
        if total is None or total > limit:
            return None
        axes: list[list[Any]] = []
        for p in self.params.values():
            if isinstance(p, IntParam):
                axes.append(list(range(p.low, p.high + 1)))
            elif isinstance(p, CategoricalParam):
                axes.append(list(p.choices))
            else:
                axes.append([getattr(p, "value", None)])
        return [dict(zip(self.names, combo, strict=True)) for combo in itertools.product(*axes)]

    def sample(self, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
        """Independent uniform samples (in each parameter's own scale)."""
        return [self.decode(self._random_unit(rng)) for _ in range(n)]

    def _random_unit(self, rng: np.random.Generator) -> np.ndarray:
        x = rng.random(self.dim)
        for col in self.columns:
            if col.kind == "categorical":
                x[col.start : col.stop] = 0.0
                x[col.start + rng.integers(col.stop - col.start)] = 1.0
        return x


def _to_unit(v: float, low: float, high: float, log: bool) -> float:
    if log:
        return (math.log(v) - math.log(low)) / (math.log(high) - math.log(low))
    return (v - low) / (high - low)


def _to_unit_array(v: np.ndarray, low: float, high: float, log: bool) -> np.ndarray:
    if log:
        return (np.log(v) - math.log(low)) / (math.log(high) - math.log(low))
    return (v - low) / (high - low)


def _from_unit_array(u: np.ndarray, low: float, high: float, log: bool) -> np.ndarray:
    if log:
        return np.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def _from_unit(u: float, low: float, high: float, log: bool) -> float:
    if log:
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def _coerce(p: Param, value: Any, where: str) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(p, FloatParam):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidConfiguration(f"{where}: expected a number, got {value!r}", field=where)
        v = float(value)
        if not math.isfinite(v) or not p.low <= v <= p.high:
            raise InvalidConfiguration(
                f"{where}: {value!r} is outside [{p.low}, {p.high}]", field=where
            )
        return v
    if isinstance(p, IntParam):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidConfiguration(f"{where}: expected an integer, got {value!r}", field=where)
        if isinstance(value, float) and not value.is_integer():
            raise InvalidConfiguration(f"{where}: expected an integer, got {value!r}", field=where)
        iv = int(value)  # type: ignore[call-overload]
        if not p.low <= iv <= p.high:
            raise InvalidConfiguration(
                f"{where}: {value!r} is outside [{p.low}, {p.high}]", field=where
            )
        return iv
    if isinstance(p, CategoricalParam):
        for c in p.choices:
            if choice_key(c) == choice_key(value):
                return c
        raise InvalidConfiguration(f"{where}: {value!r} is not one of {p.choices}", field=where)
    if choice_key(value) != choice_key(p.value):
        raise InvalidConfiguration(f"{where}: fixed at {p.value!r}, got {value!r}", field=where)
    return p.value
