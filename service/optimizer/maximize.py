"""Acquisition maximization over a mixed space, returning only valid, unseen configurations.

Shapes (m candidates, s starts, d encoded columns, f free columns):

    candidates: (m, d) snapped encodings   values: (m,)
    starts: (s, d)                         z: (s * f,) the L-BFGS-B variable

Recipe:
1. Candidates: the whole space when it is finite and small (at most `enumerate_limit`
   configurations), else scrambled Sobol points plus local perturbations of the incumbents
   (Gaussian steps in the numeric columns, random category switches; a quarter as many as
   the Sobol points), all snapped
   (`SearchSpace.snap_many`) so each candidate is a configuration.
2. The `n_starts` best distinct candidates start one batched L-BFGS-B run (the sum of
   independent acquisitions, so one scipy call serves every start) over the float and integer
   columns, integers and stepped parameters relaxed, categorical columns held at the start's
   category, inactive (conditional) columns held at their imputed value.
3. Optimized points are snapped again and re-scored. With integer, stepped or categorical
   columns, the `n_starts` best points then climb on the grid itself (`SearchSpace.neighbors`:
   one grid step per column, one category switch per block) while a neighbour scores higher,
   so the relaxed optimum's rounding is not the last word. The best-scoring configuration
   whose key is not in `seen` wins. None means every candidate was seen (the space is
   exhausted).

With a `LocalPenalty` (PI and UCB with pending points, see acquisition.py), every score is the
log-form acquisition plus the penalty, in the pool, in L-BFGS-B and on the grid. A `weight`
(the log probability of feasibility, service/optimizer/feasibility.py) is added to the
maximized form everywhere too: candidates, L-BFGS-B (with its gradient), re-scoring, climbing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc

from service.optimizer.acquisition import Acquisition, LocalPenalty
from service.optimizer.gp import Surrogate
from service.space import INACTIVE, SearchSpace

_CLIMB_ROUNDS = 8


class LogWeight(Protocol):
    """A log-scale factor on the acquisition: (m,) values and their (m, d) gradients."""

    def log_value(self, Xq: np.ndarray) -> np.ndarray: ...

    def log_value_and_grad(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class Pick:
    """The chosen point, its configuration, and the prediction there (standardized units)."""

    x: np.ndarray
    config: dict[str, Any]
    score: float
    mean: float
    std: float


@dataclass(frozen=True)
class CandidatePool:
    """Snapped candidates and the GP's prediction on them, shared by every acquisition."""

    X: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    exhaustive: bool = False


def build_pool(
    space: SearchSpace,
    gp: Surrogate,
    *,
    incumbents: np.ndarray,
    rng: np.random.Generator,
    n_candidates: int = 1024,
    enumerate_limit: int = 2048,
) -> CandidatePool:
    """`n_candidates` Sobol points plus a quarter as many local ones (or the whole space)."""
    configs = space.enumerate_configs(enumerate_limit)
    if configs is not None:
        X = space.encode_many(configs)
        mean, std = gp.predict(X)
        return CandidatePool(X, mean, std, exhaustive=True)
    else:
        sobol = qmc.Sobol(d=space.dim, scramble=True, seed=rng).random(n_candidates)
        parts = [space.snap_many(sobol)]
        if len(incumbents):
            parts.append(space.snap_many(_perturb(space, incumbents, rng, n_candidates // 4)))
        X = np.vstack(parts)
    mean, std = gp.predict(X)
    return CandidatePool(X, mean, std)


def _perturb(
    space: SearchSpace, incumbents: np.ndarray, rng: np.random.Generator, n: int
) -> np.ndarray:
    base = incumbents[rng.integers(len(incumbents), size=n)].copy()
    scales = rng.choice([0.01, 0.05, 0.2], size=(n, 1))
    for col in space.columns:
        if col.kind == "categorical":
            switch = rng.random(n) < 1.0 / max(len(space.columns), 2)
            choice = rng.integers(col.stop - col.start, size=n)
            block = base[:, col.start : col.stop]
            block[switch] = 0.0
            block[np.flatnonzero(switch), choice[switch]] = 1.0
        else:
            on = base[:, col.start] != INACTIVE
            base[on, col.start] += scales[on, 0] * rng.standard_normal(int(on.sum()))
    return base


def free_columns(space: SearchSpace) -> np.ndarray:
    return np.array([c.start for c in space.columns if c.kind != "categorical"], dtype=np.intp)


def _score(
    acq: Acquisition,
    mean: np.ndarray,
    std: np.ndarray,
    X: np.ndarray,
    penalty: LocalPenalty | None,
    weight: LogWeight | None,
) -> np.ndarray:
    if penalty is None:
        score = acq.value_and_grad(mean, std)[0]
    else:
        score = acq.log_value_and_grad(mean, std)[0] + penalty.value_and_grad(X)[0]
    return score if weight is None else score + weight.log_value(X)


def maximize(
    space: SearchSpace,
    gp: Surrogate,
    acq: Acquisition,
    pool: CandidatePool,
    *,
    seen: set[tuple[Any, ...]],
    n_starts: int = 5,
    max_iter: int = 50,
    penalty: LocalPenalty | None = None,
    weight: LogWeight | None = None,
) -> Pick | None:
    """The best unseen configuration under `acq` (times `penalty` and `weight`), or None when
    every candidate was seen."""
    score = _score(acq, pool.mean, pool.std, pool.X, penalty, weight)
    order = np.argsort(-score, kind="stable")
    starts = pool.X[order[:n_starts]]
    free = free_columns(space)
    X, mean, std = pool.X, pool.mean, pool.std
    if len(free) and len(starts) and not pool.exhaustive:
        optimized = space.snap_many(_lbfgs(gp, acq, starts, free, max_iter, penalty, weight))
        opt_mean, opt_std = gp.predict(optimized)
        X = np.vstack([optimized, pool.X])
        score = np.concatenate([_score(acq, opt_mean, opt_std, optimized, penalty, weight), score])
        mean = np.concatenate([opt_mean, pool.mean])
        std = np.concatenate([opt_std, pool.std])
    if not pool.exhaustive and any(c.kind != "continuous" for c in space.columns):
        top = np.argsort(-score, kind="stable")[:n_starts]
        climbed, c_mean, c_std, c_score = _climb(
            space, gp, acq, X[top], mean[top], std[top], score[top], penalty, weight
        )
        X = np.vstack([climbed, X])
        score = np.concatenate([c_score, score])
        mean = np.concatenate([c_mean, mean])
        std = np.concatenate([c_std, std])
    order = np.argsort(-score, kind="stable")
    for i in order:
        config = space.decode(X[i])
        if space.key(config) not in seen:
            return Pick(X[i], config, float(score[i]), float(mean[i]), float(std[i]))
    return None


def _climb(
    space: SearchSpace,
    gp: Surrogate,
    acq: Acquisition,
    X: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    score: np.ndarray,
    penalty: LocalPenalty | None,
    weight: LogWeight | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steepest-ascent hill climbing of each row of X over its grid neighbourhood."""
    X, mean, std, score = X.copy(), mean.copy(), std.copy(), score.copy()
    for _ in range(_CLIMB_ROUNDS):
        Y, origin = space.neighbors(X)
        if not len(Y):
            break
        y_mean, y_std = gp.predict(Y)
        y_score = _score(acq, y_mean, y_std, Y, penalty, weight)
        moved = False
        for row in range(len(X)):
            mine = np.flatnonzero(origin == row)
            if not len(mine):
                continue
            j = mine[int(np.argmax(y_score[mine]))]
            if y_score[j] > score[row] + 1e-12:
                X[row], mean[row], std[row], score[row] = Y[j], y_mean[j], y_std[j], y_score[j]
                moved = True
        if not moved:
            break
    return X, mean, std, score


def _lbfgs(
    gp: Surrogate,
    acq: Acquisition,
    starts: np.ndarray,
    free: np.ndarray,
    max_iter: int,
    penalty: LocalPenalty | None = None,
    weight: LogWeight | None = None,
) -> np.ndarray:
    s, f = len(starts), len(free)
    base = starts.copy()

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        Xq = base.copy()
        Xq[:, free] = z.reshape(s, f)
        mean, std, dmean, dstd = gp.predict_with_grad(Xq)
        if penalty is None:
            a, da_dm, da_ds = acq.value_and_grad(mean, std)
            grad = da_dm[:, None] * dmean + da_ds[:, None] * dstd
        else:
            a, da_dm, da_ds = acq.log_value_and_grad(mean, std)
            p, dp = penalty.value_and_grad(Xq)
            a = a + p
            grad = da_dm[:, None] * dmean + da_ds[:, None] * dstd + dp
        if weight is not None:
            log_w, dlog_w = weight.log_value_and_grad(Xq)
            a, grad = a + log_w, grad + dlog_w
        return -float(a.sum()), -grad[:, free].ravel()

    # An inactive (conditional) column stays at its imputed value: a fixed variable.
    held = starts[:, free] == INACTIVE
    bounds = [(INACTIVE, INACTIVE) if h else (0.0, 1.0) for h in held.ravel()]
    with np.errstate(all="ignore"):
        res = minimize(
            objective,
            starts[:, free].ravel(),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iter},
        )
    out = base.copy()
    z = res.x if np.all(np.isfinite(res.x)) else starts[:, free].ravel()
    out[:, free] = z.reshape(s, f)
    return out


def lipschitz(gp: Surrogate, X: np.ndarray) -> float:
    """The median norm of the posterior mean's gradient over X: the L of `LocalPenalty`.

    Gonzalez et al. take the largest norm; over a pool that samples the steep walls of the
    function it gave radii so small that PI's batches stayed 3x tighter than EI's on Branin,
    while the median spreads them as far as EI's (tests/optimizer/test_batch_spread.py)."""
    if not len(X):
        return 0.0
    _, _, dmean, _ = gp.predict_with_grad(X)
    norms = np.linalg.norm(dmean, axis=1)
    norms = norms[np.isfinite(norms)]
    return float(np.median(norms)) if len(norms) else 0.0
