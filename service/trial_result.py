"""What a worker makes of a trainer's return or exception: the fields of its complete, or
why it failed, and whether that failure means the configuration cannot run.

Rules:
- A trainer returns one value or a dict of named metrics. With several objectives the
  values are the dict's entries for the objectives' metrics, in order; with one, the entry
  for the study's metric (a plain value serves only a study with one objective and no
  constraints). Every finite number in the dict is also sent as `metrics` (the study's
  constraints read them); a missing or non-finite objective fails the trial with the reason.
- Out of memory is infeasible, not a bad value: MemoryError, TensorFlow's
  ResourceExhaustedError, PyTorch's OutOfMemoryError, or any exception whose message says
  "out of memory" (CUDA, cuDNN) or RESOURCE_EXHAUSTED (JAX/XLA).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from service.schemas import LeasePublic

MAX_METRICS = 100
_OOM_NAMES = ("MemoryError", "ResourceExhaustedError", "OutOfMemoryError")
_OOM_TEXT = ("out of memory", "resource_exhausted", "resource exhausted")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` (or an exception it was raised from) says memory ran out."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names = {cls.__name__ for cls in type(current).__mro__}
        if names.intersection(_OOM_NAMES):
            return True
        text = str(current).lower()
        if any(t in text for t in _OOM_TEXT):
            return True
        current = current.__cause__ or current.__context__
    return False


def complete_fields(
    result: float | Mapping[str, float], lease: LeasePublic
) -> dict[str, Any] | str:
    """The fields of the trial's complete (`value` or `values`, `metrics`), or the reason it
    fails (a string)."""
    if not isinstance(result, Mapping):
        if lease.objectives:
            names = ", ".join(o.metric for o in lease.objectives)
            return f"the study has several objectives ({names}): the trainer must return a dict"
        if lease.constraints:
            names = ", ".join(c.metric for c in lease.constraints)
            return f"the study's constraints need metrics ({names}): the trainer must return a dict"
        if not math.isfinite(result):
            return f"diverged: objective returned {result}"
        return {"value": float(result)}
    metrics = {
        str(k): float(v)
        for k, v in result.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }
    if len(metrics) > MAX_METRICS:
        return f"the trainer returned {len(metrics)} metrics; at most {MAX_METRICS}"
    wanted = [o.metric for o in lease.objectives] if lease.objectives else [lease.metric]
    for name in wanted:
        if name not in result:
            return f"the trainer's metrics lack {name!r} (it returned {sorted(result)})"
        if name not in metrics:
            return f"diverged: {name} is {result[name]}"
    fields: dict[str, Any] = {"metrics": metrics}
    if lease.objectives:
        fields["values"] = [metrics[name] for name in wanted]
    else:
        fields["value"] = metrics[wanted[0]]
    return fields
