"""Stepped numeric ranges (KerasTuner's `step`, Ray Tune's quantized domains) as parameters.

tunesmith spaces have no step yet, so a grid maps onto the space in one of two ways:

- at most MAX_CHOICES values: a categorical parameter whose choices are the grid's values.
  The server stores and shows exactly the values a trial ran with; the GP models the
  parameter one-hot, without using the order of the values.
- more values: a numeric parameter over the grid's range, on the grid's scale (log for a
  multiplicative grid or a log-sampled host domain), and `to_host` moves each suggested value
  to the nearest grid value. The server keeps the value it suggested, which is within half a
  step of the value the trial ran with.

Float grid values are rounded to 12 significant digits, so 0.1 * 3 is stored as 0.3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.params import MAX_CHOICES, CategoricalParam, FloatParam, IntParam, Param


def _tidy(value: float, integer: bool) -> int | float:
    return round(value) if integer else float(f"{value:.12g}")


@dataclass(frozen=True)
class Grid:
    """The values `start * step**i` (multiplicative) or `start + i * step`, i < `size`.

    Raises ValueError when the grid would be empty or its step cannot advance.
    """

    start: float
    step: float
    size: int
    multiplicative: bool = False
    integer: bool = False
    log: bool = False

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"a grid needs at least one value, got size {self.size}")
        if self.multiplicative and (self.step <= 1 or self.start <= 0):
            raise ValueError(
                f"a multiplicative grid needs start > 0 and step > 1, got {self.start}, {self.step}"
            )
        if not self.multiplicative and self.step <= 0:
            raise ValueError(f"a grid's step must be positive, got {self.step}")

    @classmethod
    def spanning(
        cls,
        low: float,
        high: float,
        step: float,
        *,
        multiplicative: bool = False,
        integer: bool = False,
        log: bool = False,
    ) -> Grid:
        """The grid from `low` by `step` that stays within `high` (both included)."""
        if multiplicative:
            size = math.floor(math.log(high / low) / math.log(step) + 1e-9) + 1
        else:
            size = math.floor((high - low) / step + 1e-9) + 1
        return cls(low, step, size, multiplicative=multiplicative, integer=integer, log=log)

    def value(self, index: int) -> int | float:
        raw = (
            self.start * self.step**index if self.multiplicative else self.start + index * self.step
        )
        return _tidy(raw, self.integer)

    @property
    def values(self) -> list[int | float]:
        return [self.value(i) for i in range(self.size)]

    def nearest(self, value: float) -> int | float:
        """The grid value nearest to `value` (on the grid's own scale)."""
        if self.multiplicative:
            position = math.log(max(value, self.start) / self.start) / math.log(self.step)
        else:
            position = (value - self.start) / self.step
        return self.value(min(max(round(position), 0), self.size - 1))

    @property
    def is_categorical(self) -> bool:
        return self.size <= MAX_CHOICES

    def param(self) -> Param:
        if self.is_categorical:
            return CategoricalParam(choices=list(self.values))
        low, high = self.value(0), self.value(self.size - 1)
        log = self.log or self.multiplicative
        if self.integer:
            return IntParam(low=int(low), high=int(high), log=log)
        return FloatParam(low=float(low), high=float(high), log=log)

    def to_host(self, value: int | float) -> int | float:
        """The value the host library gets for a value the server stored."""
        return value if self.is_categorical else self.nearest(float(value))
