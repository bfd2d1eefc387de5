"""The gp strategy's step for two or three objectives: one GP per objective and the log
expected hypervolume improvement (service/optimizer/ehvi.py) of their joint posterior.

Rules:
- Models: each objective is modelled as a one-objective study of its own (`build_model`:
  the same output warp, failure imputation, refit schedule and pending-point conditioning),
  its fit kept in `state["objectives"][j]`. An observation whose value vector is missing,
  short or not finite counts as failed for the objectives it lacks.
- Hypervolume space: each objective's warped, standardized values, negated (minimized). The
  front is that of the feasible observations with a full, finite value vector; the
  reference point is the worst value per objective over every observation with a full
  vector (feasible or not) plus a tenth of that objective's range (one standard unit for a
  constant objective), close to Optuna's GPSampler (1.1 times the worst standardized loss).
- Pending points (kriging believer, as the one-objective step): every pending or already
  chosen point joins the front at its posterior mean, and every model's variance is
  conditioned on it, so the next suggestion looks for improvement elsewhere. Infeasible
  failures (`request.infeasible`) condition the variance but never join the front.
- Acquisition: log EHVI over `N_SAMPLES` (128) quasi-random normal draws (halved, down to
  32, while draws times boxes exceed 128 * 256: a large three-objective front), seeded by
  the request's seed (fixed within a call, so L-BFGS-B sees one deterministic surface),
  plus the log probability of feasibility (feasibility.py) when there are constraints or infeasible
  failures, as in the one-objective step. Maximized by maximize.py's `search`: scrambled
  Sobol candidates plus perturbations of the front's configurations, L-BFGS-B from the best,
  grid climbing for integer and categorical columns.
- Cost: scoring m candidates costs O(k m n^2) for the GPs plus O(m s b k) for the EHVI (b
  boxes: p + 1 for two objectives, at most (p + 1)^2 for three, p the front's size); the
  candidate count shrinks so that the EHVI term stays near `_WORK` (64 candidates at least).
  Measured (CPU seconds on a loaded 2-core machine, one BLAS thread, fits included): 2
  objectives, 100 observations: 0.3 to 1.5 for one suggestion, 0.7 to 2.2 for four; 3
  objectives, 100 observations (a front of 71 points, 800 boxes): 1.8 for one, 4.0 for four
  (8.9 with 128 draws throughout).
- Without any observation with a full, finite value vector there is no scale for the
  hypervolume: those suggestions continue the Sobol design.

Measured (`bench/multiobjective.py --quick --seeds 5`, 24 evaluations, README): mean rank
2.30 against GPSampler's and TPE's 2.43 (ParEGO had 2.63): first on ZDT1-3 and the digits
task, last on DTLZ2, whose corners (x0 at 0 or 1 zeroes an objective whatever the other
parameters) draw trials by the improvement the GP sees past the extreme, which the
benchmark's reference point does not count. Reference points at the front's nadir or at
60% of the range, no credit below the observed ideal, no output warping and a halved
posterior std did not fix that without a loss on ZDT1 (numbers in the README).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from service.domain import TrialState
from service.optimizer.base import (
    Observation,
    Suggestion,
    SuggestionInfo,
    SuggestRequest,
    SuggestResult,
)
from service.optimizer.ehvi import LogEHVI, nondominated_boxes, normal_draws
from service.optimizer.feasibility import fit_feasibility
from service.optimizer.gp import Surrogate
from service.optimizer.maximize import LogWeight, candidates, search
from service.optimizer.model import ModelSettings, StudyModel, build_model
from service.optimizer.pareto import nondominated
from service.optimizer.sampling import (
    SobolStrategy,
    out_of_time,
    random_fill,
    seen_keys,
)

N_SAMPLES = 128
REF_MARGIN = 0.1
_WORK = 4e7
_SAMPLE_BOXES = 128 * 256


def full_values(o: Observation, k: int) -> tuple[float, ...] | None:
    """The observation's k values when all are present and finite (and it did not fail)."""
    v = o.values
    if o.state == TrialState.FAILED or v is None or len(v) != k:
        return None
    if not all(isinstance(x, int | float) and math.isfinite(x) for x in v):
        return None
    return tuple(float(x) for x in v)


def _one_objective(request: SuggestRequest, j: int) -> SuggestRequest:
    """`request` as a one-objective study of objective j (no earlier studies)."""
    k = len(request.directions)
    observations = []
    for o in request.observations:
        v = o.values[j] if o.values is not None and len(o.values) == k else None
        value = float(v) if isinstance(v, int | float) and math.isfinite(v) else None
        observations.append(replace(o, value=value))
    return replace(
        request,
        direction=request.directions[j],
        directions=(),
        observations=observations,
        prior=(),
    )


def predict_losses(gps: Sequence[Surrogate], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, k) posterior means of the minimized objectives, and their stds."""
    preds = [gp.predict(X) for gp in gps]
    return -np.column_stack([p[0] for p in preds]), np.column_stack([p[1] for p in preds])


@dataclass(frozen=True)
class _Scorer:
    """log EHVI of the models' joint posterior, plus a log feasibility weight (maximize.py's
    `Scorer`). Objectives are the negated warped values (minimized)."""

    gps: Sequence[Surrogate]
    ehvi: LogEHVI
    weight: LogWeight | None

    def score(self, X: np.ndarray) -> np.ndarray:
        loss, std = predict_losses(self.gps, X)
        value = self.ehvi.value(loss, std)
        return value if self.weight is None else value + self.weight.log_value(X)

    def score_and_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = [gp.predict_with_grad(X) for gp in self.gps]
        loss = -np.column_stack([p[0] for p in preds])
        std = np.column_stack([p[1] for p in preds])
        value, d_loss, d_std = self.ehvi.value_and_grad(loss, std)
        grad = np.zeros_like(X, dtype=float)
        for j, (_, _, dmean, dstd) in enumerate(preds):
            grad += -d_loss[:, j : j + 1] * dmean + d_std[:, j : j + 1] * dstd
        if self.weight is not None:
            log_w, dlog_w = self.weight.log_value_and_grad(X)
            value, grad = value + log_w, grad + dlog_w
        return value, grad


def suggest_ehvi(
    request: SuggestRequest,
    state: Mapping[str, Any],
    rng: np.random.Generator,
    *,
    settings: ModelSettings,
    n_candidates: int,
    n_starts: int,
    time_budget_s: float,
) -> SuggestResult:
    """`request.count` suggestions for a study with `request.directions` (2 or 3), by the
    module's rules. Raises numpy's LinAlgError or ValueError when the data cannot be
    modelled (the gp strategy then falls back to random)."""
    space, k = request.space, len(request.directions)
    rows = [i for i, o in enumerate(request.observations) if full_values(o, k) is not None]
    if not rows:
        return SobolStrategy().suggest(request)
    deadline = time.monotonic() + time_budget_s
    stored = state.get("objectives")
    previous = list(stored) if isinstance(stored, list) and len(stored) == k else [{}] * k
    models: list[StudyModel] = []
    for j in range(k):
        prior_state = previous[j] if isinstance(previous[j], Mapping) else {}
        models.append(
            build_model(_one_objective(request, j), prior_state, rng, settings=settings, earlier=[])
        )
    # Minimized, warped values of the observations with a full vector.
    losses = -np.column_stack([m.data.warp.y[rows] for m in models])
    feasible = np.array([request.observations[i].feasible is not False for i in rows])
    front = losses[feasible]
    ref = reference_point(losses)
    # The maximizer perturbs the front's configurations (the observed, feasible ones).
    good = [request.observations[i].params for i, ok in zip(rows, feasible, strict=True) if ok]
    on_front = nondominated(front) if len(front) else np.zeros(0, dtype=bool)
    incumbents = (
        space.encode_many([c for c, top in zip(good, on_front, strict=True) if top])
        if on_front.any()
        else np.zeros((0, space.dim))
    )
    infeasible = {space.key(p) for p in request.infeasible}
    believed = [p for p in request.pending if space.key(p) not in infeasible]
    if believed:
        plain = [m.surrogate for m in models]
        front = np.vstack([front, predict_losses(plain, space.encode_many(believed))[0]])
    normals = normal_draws(N_SAMPLES, k, request.seed)
    weight = fit_feasibility(request)
    gps: list[Surrogate] = [m.with_pending for m in models]
    seen = seen_keys(request)
    out: list[Suggestion] = []
    warnings = [w for m in models for w in m.warnings]
    for _ in range(request.count):
        if time.monotonic() > deadline:
            left = request.count - len(out)
            out += random_fill(request, out, left)
            warnings.append(out_of_time(time_budget_s, left, request.count))
            break
        lower, upper = nondominated_boxes(_front(front, ref), ref)
        draws = normals[: _n_samples(len(lower))]
        scorer = _Scorer(gps, LogEHVI(lower, upper, draws), weight)
        X, exhaustive = candidates(
            space,
            incumbents=_sample_rows(incumbents, rng, 16),
            rng=rng,
            n_candidates=_pool_size(n_candidates, len(lower), k, len(models[0].data.y), space.dim),
        )
        found = search(
            space, scorer, X, scorer.score(X), seen=seen, exhaustive=exhaustive, n_starts=n_starts
        )
        if found is None:
            out += random_fill(request, out, 1)
            continue
        out.append(Suggestion(found.config, _info(found.score, found.x, models, request)))
        seen.add(space.key(found.config))
        if len(out) < request.count:
            x = found.x[None, :]
            front = np.vstack([front, predict_losses([m.surrogate for m in models], x)[0]])
            gps = [gp.condition_on_pending(x) for gp in gps]
    return SuggestResult(out, state={"objectives": [m.state for m in models]}, warnings=warnings)


def reference_point(losses: np.ndarray) -> np.ndarray:
    """The worst of `losses` per objective plus a tenth of its range (one standard unit for
    a constant objective)."""
    worst, span = losses.max(axis=0), np.ptp(losses, axis=0)
    return worst + np.where(span > 0, REF_MARGIN * span, 1.0)


def _front(points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    inside = points[np.all(np.isfinite(points), axis=1) & np.all(points < ref, axis=1)]
    return inside[nondominated(inside)] if len(inside) else inside


def _sample_rows(X: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    if len(X) <= n:
        return X
    return X[rng.choice(len(X), size=n, replace=False)]


def _n_samples(boxes: int) -> int:
    """N_SAMPLES, halved (down to 32) while samples times boxes exceed `_SAMPLE_BOXES`: a
    prefix of a scrambled Sobol sequence whose length is a power of two stays balanced."""
    n = N_SAMPLES
    while n > 32 and n * boxes > _SAMPLE_BOXES:
        n //= 2
    return n


def _pool_size(cap: int, boxes: int, k: int, n: int, d: int) -> int:
    """Candidates such that the EHVI's work (m s b k) and each GP's (m n (n + d), as in the
    one-objective step) stay bounded; a power of two (Sobol's balance), 64 at least."""
    n, d = max(n, 1), max(d, 1)
    m = min(_WORK / (_n_samples(boxes) * max(boxes, 1) * k), 2e5 / n, 2e7 / (n * d))
    m = int(np.clip(m, 64, cap))
    return 1 << (m.bit_length() - 1)


def _info(
    score: float, x: np.ndarray, models: Sequence[StudyModel], request: SuggestRequest
) -> SuggestionInfo:
    """The log EHVI (with the feasibility weight) and the first objective's prediction, in its
    own units and direction."""
    first = models[0]
    mean, std = first.surrogate.predict(x[None, :])
    mean_o, std_o = first.data.warp.to_original(mean, std)
    sign = request.directions[0].sign
    return SuggestionInfo(
        source="gp",
        acquisition="log_ehvi",
        acquisition_value=_finite(score),
        mean=_finite(sign * mean_o[0]),
        std=_finite(std_o[0]),
    )


def _finite(v: Any) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None
