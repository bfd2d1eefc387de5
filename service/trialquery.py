"""Filters and orders over a study's trials by parameter and by value, for the trials table
and its CSV (GET /studies/{id}/trials and /trials.csv).

Rules:
- A condition is `value>=X`, `value<=X`, `params.NAME>=X`, `params.NAME<=X` or
  `params.NAME=X`; NAME is one of the study's parameters (the longest that fits, so names
  may contain dots or operators). `>=` and `<=` need a number; `=` compares a categorical
  (or any) parameter as text, with JSON spelling for non-strings (`true`, `3`, `0.5`).
- A trial without a value, or without the parameter, never satisfies a condition on it.
- An order is one of the table's columns or `params.NAME`; trials without the parameter
  sort last, ties by trial number (ascending, in either direction).
- Float and int parameters with plain names (`numeric_params`) are compared and ordered in
  SQL (JSON extraction); the others in Python over the matching trials. Both give the same
  answers: numeric parameters only ever hold numbers.
Errors are InvalidRequest naming the query field (`where`, `order`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.errors import InvalidRequest

COLUMN_ORDERS = ("number", "value", "state", "updated_at", "started_at", "finished_at")
PARAM_PREFIX = "params."
MAX_CONDITIONS = 32

Operator = Literal[">=", "<=", "="]
SQL_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


@dataclass(frozen=True)
class Condition:
    """`param` None means the trial's value."""

    param: str | None
    op: Operator
    operand: float | str

    def accepts(self, params: Mapping[str, Any], value: float | None) -> bool:
        if self.param is None:
            subject: Any = value
        elif self.param in params:
            subject = params[self.param]
        else:
            return False
        if subject is None:
            return False
        if self.op == "=":
            return as_text(subject) == self.operand
        if isinstance(subject, bool) or not isinstance(subject, int | float):
            return False
        assert isinstance(self.operand, float)
        return subject >= self.operand if self.op == ">=" else subject <= self.operand


def as_text(value: Any) -> str:
    """A parameter value as the table and the CSV show it and `=` compares it."""
    return value if isinstance(value, str) else json.dumps(value)


def _split(expr: str, names: Sequence[str]) -> tuple[str | None, str] | None:
    """(parameter or None for the value, the rest starting with the operator)."""
    if expr.startswith("value"):
        return None, expr[len("value") :]
    if not expr.startswith(PARAM_PREFIX):
        return None
    body = expr[len(PARAM_PREFIX) :]
    fits = [n for n in names if body.startswith(n) and body[len(n) : len(n) + 1] in ("<", ">", "=")]
    if not fits:
        return None
    name = max(fits, key=len)
    return name, body[len(name) :]


def parse_condition(expr: str, names: Sequence[str]) -> Condition:
    split = _split(expr, names)
    if split is None:
        known = ", ".join(f"params.{n}" for n in names)
        raise InvalidRequest(
            f"where: {expr!r} is not value or params.NAME followed by >=, <= or = "
            f"(parameters: {known})",
            field="where",
        )
    param, rest = split
    op: Operator
    if rest.startswith(">="):
        op, operand = ">=", rest[2:]
    elif rest.startswith("<="):
        op, operand = "<=", rest[2:]
    elif rest.startswith("="):
        op, operand = "=", rest[1:]
    else:
        raise InvalidRequest(f"where: {expr!r} needs >=, <= or =", field="where")
    if op == "=" and param is None:
        raise InvalidRequest(f"where: {expr!r}: the value takes >= or <=", field="where")
    if op == "=":
        return Condition(param, op, operand)
    try:
        number = float(operand)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise InvalidRequest(f"where: {expr!r} needs a finite number after {op}", field="where")
    return Condition(param, op, number)


def parse_conditions(exprs: Sequence[str], names: Sequence[str]) -> list[Condition]:
    if len(exprs) > MAX_CONDITIONS:
        raise InvalidRequest(f"where: at most {MAX_CONDITIONS} conditions", field="where")
    return [parse_condition(e, names) for e in exprs]


def parse_order(order: str, names: Sequence[str]) -> tuple[str, str | None]:
    """(column, parameter): the column is `param` when ordering by a parameter."""
    if order in COLUMN_ORDERS:
        return order, None
    if order.startswith(PARAM_PREFIX) and order[len(PARAM_PREFIX) :] in names:
        return "param", order[len(PARAM_PREFIX) :]
    choices = ", ".join([*COLUMN_ORDERS, *(f"params.{n}" for n in names)])
    raise InvalidRequest(f"order: {order!r} is not one of {choices}", field="order")


def numeric_params(space: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
    """The float and int parameters that SQL may compare and order (plain names only, so a
    name never has to be quoted inside a JSON path)."""
    return frozenset(
        name
        for name, spec in space.items()
        if spec.get("type") in ("float", "int") and SQL_SAFE_NAME.match(name)
    )


SortKey = tuple[int, float, str]


def sort_key(param: str) -> Callable[[Mapping[str, Any]], SortKey]:
    """Orders trials by one parameter: numbers before text (a stable sort keeps trial order
    among ties); trials without it are set apart by the caller."""

    def key(params: Mapping[str, Any]) -> SortKey:
        v = params[param]
        if isinstance(v, int | float) and not isinstance(v, bool):
            return (0, float(v), "")
        return (1, 0.0, as_text(v))

    return key
