"""Parameter specifications: the JSON form of a search space, validated with pydantic only.

This is the part of a search space that the wire contract (`service.schemas`) and the client
need; the encoder to and from the unit cube, which needs numpy, is `service.space`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.errors import InvalidSearchSpace

MAX_PARAMS = 64
MAX_CHOICES = 256
MAX_INT = 2**53  # integers beyond lose precision as floats (the GP, JSON readers)
MAX_CHOICE_CHARS = 200
MAX_GRID = 2**31  # grid points of one stepped parameter
GRID_TOLERANCE = 1e-9  # relative: (high - low) / step may miss an integer by this much

Int53 = Annotated[int, Field(ge=-MAX_INT, le=MAX_INT)]
Scalar = bool | int | float | Annotated[str, Field(max_length=MAX_CHOICE_CHARS)]


def _check_scalar(value: Scalar, what: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise ValueError(f"{what} must be an integer within +-2**53, got {value}")


Condition = Annotated[
    dict[Annotated[str, Field(max_length=MAX_CHOICE_CHARS)], list[Scalar]],
    Field(min_length=1, max_length=MAX_PARAMS),
]


class _ParamBase(BaseModel):
    """`condition` ({"PARENT": [values...]}, several parents: all must hold): the parameter
    is active only when each parent is active and takes one of the listed values. Which
    parents may be named (categorical or int parameters of the same space, no cycles) is
    checked against the whole space by `check_conditions`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    condition: Condition | None = None

    @field_validator("condition")
    @classmethod
    def _check_condition(cls, value: dict[str, list[Scalar]] | None) -> Any:
        for parent, values in (value or {}).items():
            if not values:
                raise ValueError(f"{parent}: list at least one value")
            keys = [choice_key(v) for v in values]
            if len(set(keys)) != len(keys):
                raise ValueError(f"{parent}: values must be distinct, got {values}")
        return value


def _check_step(step: float | None, info: ValidationInfo, *, integer: bool) -> None:
    """A step needs (high - low) to be a whole number of steps: the grid then ends at `high`
    exactly (a top that is not on the grid is refused, not moved, so the space a user reads
    is the space searched). Log scale with a step is refused: its grid would not be uniform
    in either scale."""
    if step is None:
        return
    low, high = info.data.get("low"), info.data.get("high")
    if info.data.get("log") and (step != 1 or not integer):
        raise ValueError("step cannot be combined with log (the grid would not be uniform)")
    if low is None or high is None or high < low:
        return  # the bounds' own error is reported
    steps = (high - low) / step
    if integer:
        if (high - low) % step:
            raise ValueError(
                f"high - low ({high - low}) must be a multiple of step ({step}); "
                f"e.g. high={low + int(steps) * int(step)}"
            )
    elif abs(steps - round(steps)) > GRID_TOLERANCE * max(1.0, steps):
        raise ValueError(
            f"high - low ({high - low}) must be a multiple of step ({step}); "
            f"e.g. high={low + math.floor(steps) * step:.12g}"
        )
    if steps > MAX_GRID and not (integer and step == 1):  # plain ints keep the +-2^53 range
        raise ValueError(f"step gives {steps:.3g} grid points; at most {MAX_GRID} are allowed")


class FloatParam(_ParamBase):
    type: Literal["float"] = "float"
    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)
    log: bool = False
    step: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("step")
    @classmethod
    def _valid_step(cls, step: float | None, info: ValidationInfo) -> float | None:
        _check_step(step, info, integer=False)
        return step

    @property
    def n_steps(self) -> int | None:
        """Grid points above `low` (the grid is low + k step, k = 0..n_steps), or None."""
        if self.step is None:
            return None
        return round((self.high - self.low) / self.step)

    def grid_value(self, k: int) -> float:
        """The k-th grid value, rounded to 12 significant digits (-1 + 3 * 0.05 is -0.85)."""
        step = self.step or 0.0
        return float(f"{min(self.low + k * step, self.high):.12g}")

    @model_validator(mode="after")
    def _check_bounds(self) -> FloatParam:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be less than high ({self.high})")
        if not math.isfinite(self.high - self.low):
            raise ValueError(f"high - low must be a finite number, got {self.high} - {self.low}")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got low={self.low}")
        return self


class IntParam(_ParamBase):
    type: Literal["int"] = "int"
    low: Int53
    high: Int53
    log: bool = False
    step: int = Field(default=1, ge=1, le=MAX_INT)

    @field_validator("step")
    @classmethod
    def _valid_step(cls, step: int, info: ValidationInfo) -> int:
        _check_step(step, info, integer=True)
        return step

    @property
    def n_steps(self) -> int:
        """Grid points above `low`: the values are low + k step, k = 0..n_steps."""
        return (self.high - self.low) // self.step

    @model_validator(mode="after")
    def _check_bounds(self) -> IntParam:
        if not self.low <= self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low >= 1, got low={self.low}")
        return self


class CategoricalParam(_ParamBase):
    type: Literal["categorical"] = "categorical"
    choices: list[Scalar] = Field(min_length=1, max_length=MAX_CHOICES)

    @model_validator(mode="after")
    def _check_choices(self) -> CategoricalParam:
        keys = [choice_key(c) for c in self.choices]
        if len(set(keys)) != len(keys):
            raise ValueError(f"choices must be distinct, got {self.choices}")
        for c in self.choices:
            _check_scalar(c, "choices")
        return self


class FixedParam(_ParamBase):
    type: Literal["fixed"] = "fixed"
    value: Scalar

    @model_validator(mode="after")
    def _check_value(self) -> FixedParam:
        _check_scalar(self.value, "value")
        return self


Param = Annotated[
    FloatParam | IntParam | CategoricalParam | FixedParam, Field(discriminator="type")
]
SpaceSpec = dict[str, Param]
_PARAM_TYPES = ("float", "int", "categorical", "fixed")
_SPACE_ADAPTER: TypeAdapter[dict[str, Param]] = TypeAdapter(dict[str, Param])


def choice_key(value: Any) -> tuple[str, Any]:
    """Distinguishes True from 1 and 1 from 1.0, which Python's == would merge."""
    return (type(value).__name__, value)


def parse_space(spec: Any, *, field: str = "space") -> dict[str, Param]:
    """Parses a space's JSON form; raises InvalidSearchSpace naming the offending field."""
    if not isinstance(spec, Mapping):
        raise InvalidSearchSpace(f"{field} must be an object of parameters", field=field)
    try:
        params = _SPACE_ADAPTER.validate_python(dict(spec))
    except ValidationError as exc:
        raise InvalidSearchSpace.from_validation(exc, prefix=field, tags=_PARAM_TYPES) from None
    check_conditions(params, field=field)
    return params


def in_domain(p: Param, value: Any) -> bool:
    """Whether `value` is one of the values a categorical or int parameter can take."""
    if isinstance(p, CategoricalParam):
        return choice_key(value) in {choice_key(c) for c in p.choices}
    if isinstance(p, IntParam):
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and p.low <= value <= p.high
            and (value - p.low) % p.step == 0
        )
    return False


def check_conditions(params: Mapping[str, Param], *, field: str = "space") -> None:
    """Refuses a condition naming an unknown parent, a parent that is not categorical or
    int, a value the parent cannot take, or a cycle; the error names
    `space.CHILD.condition.PARENT` (a cycle: `space.CHILD.condition`)."""
    for name, p in params.items():
        for parent, values in (p.condition or {}).items():
            where = f"{field}.{name}.condition.{parent}"
            if parent not in params:
                raise InvalidSearchSpace(
                    f"{where}: no parameter {parent!r} in the space", field=where
                )
            q = params[parent]
            if not isinstance(q, CategoricalParam | IntParam):
                raise InvalidSearchSpace(
                    f"{where}: a condition's parent must be categorical or int, "
                    f"{parent!r} is {q.type}",
                    field=where,
                )
            bad = [v for v in values if not in_domain(q, v)]
            if bad:
                raise InvalidSearchSpace(
                    f"{where}: {bad[0]!r} is not a value {parent!r} can take", field=where
                )
    conditional_order(params, field=field)


def conditional_order(params: Mapping[str, Param], *, field: str = "space") -> list[str]:
    """The parameter names with every parent before its children (otherwise in the space's
    order); raises InvalidSearchSpace naming `space.NAME.condition` on a cycle."""
    order: list[str] = []
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in done:
            return
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            where = f"{field}.{name}.condition"
            raise InvalidSearchSpace(f"{where}: conditions form a cycle ({cycle})", field=where)
        for parent in params[name].condition or {}:
            if parent in params:
                visit(parent, [*path, name])
        done.add(name)
        order.append(name)

    for name in params:
        visit(name, [])
    return order
