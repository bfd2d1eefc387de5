"""Search spaces: configurations checked against parameters, and the one encoder to and from
the unit cube (the parameters' JSON form and its validation are in `service.params`).

Every strategy sees configurations only through `SearchSpace.encode` / `SearchSpace.decode`:

    float (linear)      1 column, (v - low) / (high - low)
    float (log)         1 column, (log v - log low) / (log high - log low)
    int (linear / log)  1 column over [low - 0.5, high + 0.5] (log: [low - 0.5, high + 0.5]
                        mapped through log), decoded by rounding, so each integer owns an
                        equal share of the column (in the warped scale)
    stepped (int with step > 1, float with step)
                        1 column over the grid index k = 0..K (value low + k step), each
                        index owning an equal share: (k + 0.5) / (K + 1); decoded by rounding
                        to the grid, so the GP sees only grid points and every candidate the
                        maximizer scores is one
    categorical         k one-hot columns, decoded by argmax
    fixed               no column

Conditional parameters (`condition`): a parameter whose condition does not hold is inactive.
A configuration omits it; its columns are imputed with a fixed value outside the cube,
`INACTIVE` (-0.5) for a numeric column and all zeros for a categorical block. Why imputation
(Levesque et al., 2017) rather than a kernel that skips a dimension unless it is active in
both points (Swersky et al., 2014): the whole stack (ARD Matern kernel, its gradients,
pending-point conditioning, the transfer model) stays one stationary kernel, and imputation
has the property that matters: every pair of points where a parameter is inactive has
distance 0 along it (the GP never reads the dead dimension's arbitrary value as noise), while
an active point is always at least 0.5 away from an inactive one (never confused with an
active value at the edge of the range). The parent's own columns already say which branch a
point is in, so no indicator column is needed.

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
    check_conditions,
    choice_key,
    conditional_order,
    parse_space,
)

INACTIVE = -0.5
_ENUMERATE_CONDITIONAL = 5_000


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
        check_conditions(self.params)
        self.order = conditional_order(self.params)
        self.conditional = any(p.condition for p in self.params.values())
        self._cardinality: int | Literal[False] | None = False  # not counted yet
        self._condition_keys = {
            name: {q: {choice_key(v) for v in vs} for q, vs in p.condition.items()}
            for name, p in self.params.items()
            if p.condition
        }
        # The grid indices (categorical: choice indices) of each parent's allowed values.
        self._allowed_indices = {
            name: {q: _indices(self.params[q], keys) for q, keys in conditions.items()}
            for name, conditions in self._condition_keys.items()
        }
        columns: list[Column] = []
        start = 0
        for name, p in self.params.items():
            if isinstance(p, FloatParam) and p.step is None:
                columns.append(Column(name, start, start + 1, "continuous"))
                start += 1
            elif isinstance(p, FloatParam | IntParam):
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
        """The JSON form; `step` and `condition` appear only where they were given."""
        out: dict[str, dict[str, Any]] = {}
        for name, p in self.params.items():
            spec = p.model_dump(exclude_none=True)
            if isinstance(p, IntParam) and p.step == 1:
                del spec["step"]
            out[name] = spec
        return out

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
        of the wrong type, out of range or off a stepped parameter's grid. Fixed parameters
        may be omitted. Inactive parameters (a condition that does not hold) are left out of
        the result; a value given for one is ignored (an import or a client may send every
        parameter).
        """
        out, missing = self.validate_partial(config, field=field)
        if missing:
            where = f"{field}.{missing[0]}"
            raise InvalidConfiguration(f"{where}: missing", field=where)
        return out

    def validate_partial(
        self, config: Mapping[str, Any], *, field: str = "params"
    ) -> tuple[dict[str, Any], list[str]]:
        """`validate` for a configuration that may lack parameters (an earlier study's trial,
        before the space gained them): returns the coerced known part and the names of the
        active parameters it lacks, with the children of a lacking parent (whether they are
        active is unknown). Raises InvalidConfiguration for anything else `validate` refuses."""
        if not isinstance(config, Mapping):
            raise InvalidConfiguration(f"{field} must be an object", field=field)
        unknown = sorted(set(config) - set(self.params))
        if unknown:
            raise InvalidConfiguration(
                f"{field}.{unknown[0]}: not a parameter of the space (known: {self.names})",
                field=f"{field}.{unknown[0]}",
            )
        out: dict[str, Any] = {}
        missing: list[str] = []
        for name in self.order:
            p = self.params[name]
            if any(parent in missing for parent in p.condition or {}):
                missing.append(name)
                continue
            if not self.is_active(name, out):
                continue
            if name in config:
                out[name] = _coerce(p, config[name], f"{field}.{name}")
            elif isinstance(p, FixedParam):
                out[name] = p.value
            else:
                missing.append(name)
        ordered = {name: out[name] for name in self.params if name in out}
        return ordered, [name for name in self.params if name in missing]

    def filled(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """`config` with a value for every parameter, active or not: those it lacks at the
        middle of their range (grid) or their first choice. For encoding a partial
        configuration whose missing columns the caller ignores."""
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if isinstance(p, FloatParam | IntParam):
                out[name] = _value_of(p, 0.5)
            elif isinstance(p, CategoricalParam):
                out[name] = p.choices[0]
            else:
                out[name] = p.value
        return {**out, **config}

    def is_active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Whether `name`'s condition holds in `config` (whose parents were already decided:
        an inactive parent is absent, which makes its children inactive too)."""
        for parent, keys in self._condition_keys.get(name, {}).items():
            if parent not in config or choice_key(config[parent]) not in keys:
                return False
        return True

    def active_names(self, config: Mapping[str, Any]) -> list[str]:
        """The parameters active in `config`, in the space's order."""
        active: dict[str, Any] = {}
        for name in self.order:
            if self.is_active(name, active):
                p = self.params[name]
                active[name] = config.get(name, getattr(p, "value", None))
        return [name for name in self.params if name in active]

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
        active = set(self.active_names(config)) if self.conditional else self.params
        for name, p in self.params.items():
            if name not in active:
                parts.append(None)
                continue
            v = config[name] if name in config else getattr(p, "value", None)
            if isinstance(p, FloatParam):
                parts.append(float(f"{float(v):.12g}"))  # type: ignore[arg-type]
            else:
                parts.append(choice_key(v))
        return tuple(parts)

    def cardinality(self) -> int | None:
        """Number of distinct configurations, or None when a float parameter without a step
        makes it infinite. With conditions it is exact up to 5,000 combinations of all the
        parameters' values (counted once per space), an upper bound beyond."""
        if self._cardinality is not False:
            return self._cardinality
        self._cardinality = self._count()
        return self._cardinality

    def _count(self) -> int | None:
        total = 1
        for p in self.params.values():
            if isinstance(p, FloatParam) and p.step is None:
                return None
            if isinstance(p, FloatParam | IntParam):
                total *= (p.n_steps or 0) + 1
            elif isinstance(p, CategoricalParam):
                total *= len(p.choices)
        if self.conditional and total <= _ENUMERATE_CONDITIONAL:
            return len(self._enumerate())
        return total

    # ---- encoding ---------------------------------------------------------------------------

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        return self.encode_many([config])[0]

    def encode_many(self, configs: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """`encode` for a batch, one column at a time (shape (n, dim)); inactive parameters'
        columns are imputed (see the module docstring)."""
        configs = list(configs)
        X = np.zeros((len(configs), self.dim))
        if not configs:
            return X
        if self.conditional:
            active = [set(self.active_names(c)) for c in configs]
        for col in self.columns:
            p = self.params[col.name]
            rows = np.arange(len(configs))
            if self.conditional:
                rows = np.array([i for i, a in enumerate(active) if col.name in a], dtype=np.intp)
                if col.kind != "categorical":
                    X[:, col.start] = INACTIVE
            values = [configs[i][col.name] for i in rows]
            if not len(rows):
                continue
            if isinstance(p, FloatParam | IntParam):
                X[rows, col.start] = _unit_of(p, np.array(values, dtype=float))
            elif isinstance(p, CategoricalParam):
                index = {choice_key(c): i for i, c in enumerate(p.choices)}
                idx = np.array([index[choice_key(v)] for v in values])
                X[rows, col.start + idx] = 1.0
        return X

    def decode(self, x: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """Maps a point of the unit cube (values outside are clipped) to a valid configuration."""
        x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
        columns = {c.name: c for c in self.columns}
        out: dict[str, Any] = {}
        for name in self.order:
            p = self.params[name]
            if not self.is_active(name, out):
                continue
            if isinstance(p, FixedParam):
                out[name] = p.value
                continue
            col = columns[name]
            if isinstance(p, FloatParam | IntParam):
                out[name] = _value_of(p, float(x[col.start]))
            elif isinstance(p, CategoricalParam):
                out[name] = p.choices[int(np.argmax(x[col.start : col.stop]))]
        return {name: out[name] for name in self.params if name in out}

    def snap(self, x: np.ndarray) -> np.ndarray:
        """Rounds an encoded point to the encoding of the configuration it decodes to."""
        return self.encode(self.decode(x))

    def snap_many(self, X: np.ndarray) -> np.ndarray:
        """Vectorized `snap` for a batch (n, dim): floats clipped, integers and stepped
        parameters rounded to their grid (integers in their warped scale), categorical blocks
        set to the one-hot of their largest entry, inactive parameters' columns imputed (and
        an imputed column whose parameter became active set to the middle of its range)."""
        X = np.array(X, dtype=float).reshape(-1, self.dim)
        # A column that a category switch made active starts from the middle of its range.
        X[X == INACTIVE] = 0.5
        X = np.clip(X, 0.0, 1.0)
        columns = {c.name: c for c in self.columns}
        values: dict[str, np.ndarray] = {}
        active: dict[str, np.ndarray] = {}
        for name in self.order:
            p = self.params[name]
            on = np.ones(len(X), dtype=bool)
            for parent, allowed in self._allowed_indices.get(name, {}).items():
                on &= active[parent] & np.isin(values[parent], allowed)
            active[name] = on
            col = columns.get(name)
            if col is None:
                continue
            if isinstance(p, FloatParam | IntParam):
                if col.kind == "integer":
                    index = _index_of_unit(p, X[:, col.start])
                    X[:, col.start] = _unit_of_index(p, index)
                    values[name] = index
                X[~on, col.start] = INACTIVE
            elif isinstance(p, CategoricalParam):
                block = X[:, col.start : col.stop]
                idx = np.argmax(block, axis=1)
                block[:] = 0.0
                block[np.arange(len(X)), idx] = 1.0
                block[~on] = 0.0
                values[name] = idx
        return X

    def neighbors(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The discrete neighbourhood of snapped points X (n, dim): each integer or stepped
        column one grid step down and up, each categorical block switched to each other
        choice; snapped (conditions applied). Returns (neighbours (m, dim), the row of X
        each came from (m,))."""
        parts: list[np.ndarray] = []
        origin: list[np.ndarray] = []
        rows = np.arange(len(X))
        for col in self.columns:
            p = self.params[col.name]
            if isinstance(p, FloatParam | IntParam) and col.kind == "integer":
                on = X[:, col.start] != INACTIVE
                index = _index_of_unit(p, X[on, col.start])
                for delta in (-1, 1):
                    moved = index + delta
                    ok = (moved >= 0) & (moved <= p.n_steps)
                    Y = X[on][ok].copy()
                    Y[:, col.start] = _unit_of_index(p, moved[ok])
                    parts.append(Y)
                    origin.append(rows[on][ok])
            elif col.kind == "categorical":
                on = X[:, col.start : col.stop].sum(1) > 0
                for j in range(col.stop - col.start):
                    switch = on & (X[:, col.start + j] == 0)
                    Y = X[switch].copy()
                    Y[:, col.start : col.stop] = 0.0
                    Y[:, col.start + j] = 1.0
                    parts.append(Y)
                    origin.append(rows[switch])
        if not parts:
            return np.zeros((0, self.dim)), np.zeros(0, dtype=np.intp)
        return self.snap_many(np.vstack(parts)), np.concatenate(origin).astype(np.intp)

    def enumerate_configs(self, limit: int) -> list[dict[str, Any]] | None:
        """Every configuration of a finite space in a fixed order; None when there are more
        than `limit` (or infinitely many)."""
        total = self.cardinality()
        if total is None or total > limit:
            return None
        return self._enumerate()

    def _enumerate(self) -> list[dict[str, Any]]:
        axes: list[list[Any]] = []
        for p in self.params.values():
            if isinstance(p, IntParam):
                axes.append(list(range(p.low, p.high + 1, p.step)))
            elif isinstance(p, FloatParam):
                axes.append([p.grid_value(k) for k in range((p.n_steps or 0) + 1)])
            elif isinstance(p, CategoricalParam):
                axes.append(list(p.choices))
            else:
                axes.append([p.value])
        configs = [dict(zip(self.names, combo, strict=True)) for combo in itertools.product(*axes)]
        if not self.conditional:
            return configs
        out: dict[tuple[Any, ...], dict[str, Any]] = {}
        for c in configs:
            active = self.active_names(c)
            out.setdefault(self.key(c), {name: c[name] for name in active})
        return list(out.values())

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


def _indices(p: Param, keys: set[tuple[str, Any]]) -> np.ndarray:
    """Indices (choice index, or grid index of an int) of a parent's values in `keys`."""
    if isinstance(p, CategoricalParam):
        return np.array([i for i, c in enumerate(p.choices) if choice_key(c) in keys])
    if isinstance(p, IntParam):
        return np.array([(v - p.low) // p.step for _, v in keys])
    return np.zeros(0)


def _unit_of(p: FloatParam | IntParam, v: np.ndarray) -> np.ndarray:
    """Values of a numeric parameter to their column (see the module docstring)."""
    if isinstance(p, FloatParam) and p.step is None:
        return _to_unit_array(v, p.low, p.high, p.log)
    if isinstance(p, IntParam) and p.step == 1:
        return _to_unit_array(v, p.low - 0.5, p.high + 0.5, p.log)
    return _unit_of_index(p, np.round((v - p.low) / _step(p)))


def _step(p: FloatParam | IntParam) -> float:
    return float(p.step or 1.0)


def _unit_of_index(p: FloatParam | IntParam, index: np.ndarray) -> np.ndarray:
    if isinstance(p, IntParam) and p.step == 1:
        return _to_unit_array(p.low + index, p.low - 0.5, p.high + 0.5, p.log)
    return (index + 0.5) / ((p.n_steps or 0) + 1)


def _index_of_unit(p: FloatParam | IntParam, u: np.ndarray) -> np.ndarray:
    """The grid index (int step 1: value - low) a column value rounds to."""
    if isinstance(p, IntParam) and p.step == 1:
        v = _from_unit_array(u, p.low - 0.5, p.high + 0.5, p.log)
        return np.clip(np.round(v), p.low, p.high) - p.low
    k = p.n_steps or 0
    return np.clip(np.floor(u * (k + 1)), 0, k)


def _value_of(p: FloatParam | IntParam, u: float) -> Any:
    """The configuration value of a column value (clipped to the cube)."""
    if isinstance(p, FloatParam):
        if p.step is None:
            v = _from_unit(u, p.low, p.high, p.log)
            return float(min(max(v, p.low), p.high))
        return p.grid_value(int(_index_of_unit(p, np.array([u]))[0]))
    return int(p.low + int(_index_of_unit(p, np.array([u]))[0]) * p.step)


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
        if p.step is None:
            return v
        k = round((v - p.low) / p.step)
        if abs((v - p.low) / p.step - k) > 1e-6:
            raise InvalidConfiguration(
                f"{where}: {value!r} is not on the grid {p.low} + k * {p.step}", field=where
            )
        return p.grid_value(k)
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
        if (iv - p.low) % p.step:
            raise InvalidConfiguration(
                f"{where}: {value!r} is not on the grid {p.low} + k * {p.step}", field=where
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
