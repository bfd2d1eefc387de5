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
   columns, integers relaxed, categorical columns held at the start's category.
3. Optimized points are snapped again and re-scored; the best-scoring configuration whose key
   is not in `seen` wins. None means every candidate was seen (the space is exhausted).

A `weight` (the log probability of feasibility, service/optimizer/feasibility.py) is added to
the maximized form everywhere: candidates, L-BFGS-B (with its gradient) and the re-scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc

from service.optimizer.acquisition import Acquisition
from service.optimizer.gp import Surrogate
from service.space import SearchSpace


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
            base[:, col.start] += scales[:, 0] * rng.standard_normal(n)
    return base


def free_columns(space: SearchSpace) -> np.ndarray:
    return np.array([c.start for c in space.columns if c.kind != "categorical"], dtype=np.intp)


def maximize(
    space: SearchSpace,
    gp: Surrogate,
    acq: Acquisition,
    pool: CandidatePool,
    *,
    seen: set[tuple[Any, ...]],
    n_starts: int = 5,
    max_iter: int = 50,
    weight: LogWeight | None = None,
) -> Pick | None:
    """The best unseen configuration under `acq` (plus `weight`), or None when every
    candidate was seen."""
    score, _, _ = acq.value_and_grad(pool.mean, pool.std)
    if weight is not None:
        score = score + weight.log_value(pool.X)
    order = np.argsort(-score, kind="stable")
    starts = pool.X[order[:n_starts]]
    free = free_columns(space)
    X = pool.X
    if len(free) and len(starts) and not pool.exhaustive:
        optimized = space.snap_many(_lbfgs(gp, acq, starts, free, max_iter, weight))
        opt_mean, opt_std = gp.predict(optimized)
        opt_score, _, _ = acq.value_and_grad(opt_mean, opt_std)
        if weight is not None:
            opt_score = opt_score + weight.log_value(optimized)
        X = np.vstack([optimized, pool.X])
        score = np.concatenate([opt_score, score])
        mean = np.concatenate([opt_mean, pool.mean])
        std = np.concatenate([opt_std, pool.std])
        order = np.argsort(-score, kind="stable")
    else:
        mean, std = pool.mean, pool.std
    for i in order:
        config = space.decode(X[i])
        if space.key(config) not in seen:
            return Pick(X[i], config, float(score[i]), float(mean[i]), float(std[i]))
    return None


def _lbfgs(
    gp: Surrogate,
    acq: Acquisition,
    starts: np.ndarray,
    free: np.ndarray,
    max_iter: int,
    weight: LogWeight | None = None,
) -> np.ndarray:
    s, f = len(starts), len(free)
    base = starts.copy()

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        Xq = base.copy()
        Xq[:, free] = z.reshape(s, f)
        mean, std, dmean, dstd = gp.predict_with_grad(Xq)
        a, da_dm, da_ds = acq.value_and_grad(mean, std)
        grad = da_dm[:, None] * dmean + da_ds[:, None] * dstd
        if weight is not None:
            log_w, dlog_w = weight.log_value_and_grad(Xq)
            a, grad = a + log_w, grad + dlog_w
        return -float(a.sum()), -grad[:, free].ravel()

    with np.errstate(all="ignore"):
        res = minimize(
            objective,
            starts[:, free].ravel(),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * (s * f),
            options={"maxiter": max_iter},
        )
    out = base.copy()
    z = res.x if np.all(np.isfinite(res.x)) else starts[:, free].ravel()
    out[:, free] = z.reshape(s, f)
    return out
