"""Parameter specifications: the JSON form of a search space, validated with pydantic only.

This is the part of a search space that the wire contract (`service.schemas`) and the client
need; the encoder to and from the unit cube, which needs numpy, is `service.space`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from service.errors import InvalidSearchSpace

MAX_PARAMS = 64
MAX_CHOICES = 256
MAX_INT = 2**53  # integers beyond lose precision as floats (the GP, JSON readers)
MAX_CHOICE_CHARS = 200

Int53 = Annotated[int, Field(ge=-MAX_INT, le=MAX_INT)]
Scalar = bool | int | float | Annotated[str, Field(max_length=MAX_CHOICE_CHARS)]


def _check_scalar(value: Scalar, what: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise ValueError(f"{what} must be an integer within +-2**53, got {value}")


class _ParamBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatParam(_ParamBase):
    type: Literal["float"] = "float"
    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)
    log: bool = False

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
        return _SPACE_ADAPTER.validate_python(dict(spec))
    except ValidationError as exc:
        raise InvalidSearchSpace.from_validation(exc, prefix=field, tags=_PARAM_TYPES) from None
