"""Several objectives for every strategy that does not model them itself, by ParEGO
scalarizations (Knowles, 2006); and the infeasible failures every strategy must step around.

Rules:
- A strategy with `several_objectives = True` (the gp strategy: one GP per objective and
  log expected hypervolume improvement, service/optimizer/mo_gp.py) gets a request with
  `directions` as it is, but for `infeasible` joining `pending` (below); unless the request
  has earlier studies (warm start), which are scalarized as below.
- A request with `directions` (two or three objectives) is answered one suggestion at a
  time. Each draws a weight vector w from the simplex (Dirichlet with concentration 3,
  seeded by the request's seed and the suggestion's index) and hands the wrapped strategy
  a one-objective request whose values are the augmented Chebyshev scalarization of each
  observation's objectives,

      s(y) = max_j w_j z_j + rho * sum_j w_j z_j,   rho = 0.05,

  z the objectives flipped to minimization and normalized to [0, 1] over the study's
  observed values (a constant objective normalizes to 0). Minimizing s for every w reaches
  every Pareto-optimal point, concave fronts included. The wrapped strategy's own handling
  of pending points (the GP's variance reduction, for one) keeps a batch spread, and each
  suggestion is pending for the next. tpe is scalarized so, and the gp strategy with earlier
  studies (its transfer model then models s); random and sobol ignore values.
- Why concentration 3: uniform weights (concentration 1) often put almost all weight on
  one objective; minimizing one objective alone then ignores the rest (on DTLZ2, x0 at an
  end zeroes one objective whatever the other parameters) and the GP spent its trials in
  corners: mean hypervolume 0.058 on DTLZ2 with 2 objectives over 5 seeds of
  `bench/multiobjective.py --quick`, 0.113 with concentration 3 (ZDT1, ZDT2 and DTLZ2 with
  3 objectives within noise; rho = 0.2 instead of 0.05 was worse).
- Observations without a full, finite value vector (failed, pruned) keep no value, so the
  wrapped strategy treats them as it treats failures.
- Earlier studies (warm start) are scalarized with the same w, each normalized over its own
  values; their trials without a full value vector are left out.
- `infeasible` configurations join `pending` for the wrapped strategy: never suggested
  again, the GP's variance shrinks there, and no bad value is imputed for them (the gp
  strategy learns their region through service/optimizer/feasibility.py, and does not take
  their believed values for an incumbent: `feasible_incumbent`).
- A request with one objective and no infeasible configuration passes through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from service.domain import Direction
from service.optimizer.base import (
    Observation,
    Strategy,
    Suggestion,
    SuggestRequest,
    SuggestResult,
)
from service.optimizer.pareto import to_minimized

RHO = 0.05
CONCENTRATION = 3.0


def random_weights(seed: int, index: int, k: int) -> np.ndarray:
    """A weight vector drawn from the (k-1)-simplex, Dirichlet(CONCENTRATION)."""
    rng = np.random.default_rng([seed, index])
    return rng.dirichlet(np.full(k, CONCENTRATION))


def _full(o: Observation, k: int) -> bool:
    return (
        o.values is not None
        and len(o.values) == k
        and all(isinstance(v, int | float) and math.isfinite(v) for v in o.values)
    )


def scalarize(
    observations: Sequence[Observation], directions: Sequence[Direction], weights: np.ndarray
) -> list[Observation]:
    """`observations` with `value` set to their augmented Chebyshev scalarization (None for
    those without a full, finite value vector), to be minimized."""
    k = len(directions)
    rows = [i for i, o in enumerate(observations) if _full(o, k)]
    scalar: dict[int, float] = {}
    if rows:
        Y = to_minimized([list(observations[i].values or ()) for i in rows], directions)
        lo, span = Y.min(axis=0), np.ptp(Y, axis=0)
        Z = np.where(span > 0, (Y - lo) / np.where(span > 0, span, 1.0), 0.0)
        s = np.max(weights * Z, axis=1) + RHO * (Z @ weights)
        scalar = {i: float(v) for i, v in zip(rows, s, strict=True)}
    return [replace(o, value=scalar.get(i)) for i, o in enumerate(observations)]


class ObjectiveAdapter:
    """Wraps a one-objective strategy (see the module's rules)."""

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner

    def suggest(self, request: SuggestRequest) -> SuggestResult:
        pending = [*request.pending, *request.infeasible]
        if len(request.directions) < 2:
            if not request.infeasible:
                return self.inner.suggest(request)
            return self.inner.suggest(replace(request, pending=pending))
        if getattr(self.inner, "several_objectives", False) and not request.prior:
            return self.inner.suggest(replace(request, pending=pending))
        directions = request.directions
        state: dict[str, Any] = dict(request.state)
        out: list[Suggestion] = []
        warnings: list[str] = []
        for i in range(request.count):
            w = random_weights(request.seed, i, len(directions))
            one = replace(
                request,
                direction=Direction.MINIMIZE,
                directions=(),
                observations=scalarize(request.observations, directions, w),
                prior=[scalarize(p, directions, w) for p in request.prior],
                pending=[*pending, *(s.params for s in out)],
                count=1,
                seed=request.seed + i,
                state=state,
            )
            result = self.inner.suggest(one)
            state.update(result.state)
            out += result.suggestions
            warnings += [m for m in result.warnings if m not in warnings]
        return SuggestResult(out, state=state, warnings=warnings)
