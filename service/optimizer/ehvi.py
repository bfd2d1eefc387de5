"""Log expected hypervolume improvement by quasi-Monte Carlo over a box decomposition of the
region the Pareto front does not dominate. Minimization convention throughout.

Shapes (p front points, b boxes, m query points, s samples, k objectives, k in 2..3):

    front: (p, k)     ref: (k,)     lower, upper: (b, k) box corners (lower may be -inf)
    mean, std: (m, k) posterior of each objective     normals: (s, k) fixed N(0, 1) draws
    samples y = mean + std * normals: (m, s, k)       value: (m,)   dmean, dstd: (m, k)

Box decomposition (`nondominated_boxes`), exact for any k at (p + 1)^(k - 1) boxes: a grid
over the first k - 1 objectives, cut at every front coordinate (and -inf, and ref). Inside
one grid cell, a point is dominated exactly when its last objective is at least

    t = min { f_k : f in front, f_j <= cell's lower corner_j for j < k }   (ref_k if none),

so each cell is one box, from -inf to t in the last objective. Consecutive cells with the
same t along the second-to-last axis are merged. The boxes are disjoint and their union is
the part of {y < ref} that the front does not dominate; the hypervolume improvement of a
point y is

    HVI(y) = sum_b prod_j max(0, upper_bj - max(lower_bj, y_j)).

`LogEHVI` averages it over the samples y = mean + std * z of the posterior with z fixed per
call (scrambled Sobol points through the normal quantile, seeded), so the acquisition
surface is deterministic for the maximizer, and returns its log with the gradient with
respect to mean and std (reparameterization). Where no sample improves, the log would be
-inf with no gradient; as in Optuna's LogEHVI, each factor is clamped from below at EPS,
so such regions still rank by how much of the other objectives' improvement they hold
(the log stays finite and smooth enough for L-BFGS-B).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri
from scipy.stats import qmc

EPS = 1e-12
_CHUNK = 1 << 20


def nondominated_boxes(front: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint boxes covering {y < ref} minus the region `front` dominates (see the module
    rules). Front points not strictly below `ref` in every objective are ignored; an empty
    front gives the single box (-inf, ref)."""
    ref = np.asarray(ref, dtype=float)
    k = len(ref)
    F = np.asarray(front, dtype=float).reshape(-1, k)
    F = F[np.all(np.isfinite(F), axis=1) & np.all(ref > F, axis=1)]
    grids = [np.concatenate([[-np.inf], np.unique(F[:, j]), [ref[j]]]) for j in range(k - 1)]
    shape = tuple(len(g) - 1 for g in grids)
    lows, highs, tops = [], [], []
    for cell in np.ndindex(*shape):
        corner = np.array([grids[j][i] for j, i in enumerate(cell)])
        dominating = np.all(F[:, : k - 1] <= corner, axis=1)
        top = float(F[dominating, k - 1].min()) if dominating.any() else float(ref[k - 1])
        lows.append(corner)
        highs.append([grids[j][i + 1] for j, i in enumerate(cell)])
        tops.append(top)
    lower = np.array(lows).reshape(-1, k - 1)
    upper = np.array(highs).reshape(-1, k - 1)
    top_arr = np.array(tops)
    lower, upper, top_arr = _merge_last_axis(lower, upper, top_arr)
    lower = np.hstack([lower, np.full((len(lower), 1), -np.inf)])
    upper = np.hstack([upper, top_arr[:, None]])
    return lower, upper


def _merge_last_axis(
    lower: np.ndarray, upper: np.ndarray, top: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joins runs of cells (in `np.ndindex` order, so neighbours along the last grid axis are
    consecutive) that share every other coordinate and their `top`."""
    keep_lower, keep_upper, keep_top = [lower[0]], [upper[0].copy()], [top[0]]
    for lo, hi, t in zip(lower[1:], upper[1:], top[1:], strict=True):
        prev_lo, prev_hi = keep_lower[-1], keep_upper[-1]
        same_row = np.array_equal(lo[:-1], prev_lo[:-1]) and lo[-1] == prev_hi[-1]
        if same_row and t == keep_top[-1]:
            prev_hi[-1] = hi[-1]
        else:
            keep_lower.append(lo)
            keep_upper.append(hi.copy())
            keep_top.append(t)
    return np.array(keep_lower), np.array(keep_upper), np.array(keep_top)


def improvement(Y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """HVI of each row of Y (n, k) over the boxes, exact."""
    side = upper[None] - np.maximum(lower[None], Y[:, None, :])
    return np.prod(np.maximum(side, 0.0), axis=2).sum(axis=1)


def normal_draws(n: int, k: int, seed: int) -> np.ndarray:
    """(n, k) quasi-random standard normal draws (scrambled Sobol through the quantile)."""
    u = qmc.Sobol(d=k, scramble=True, seed=seed).random(n)
    return ndtri(np.clip(u, 1e-10, 1 - 1e-10))


class LogEHVI:
    """log E[HVI(y)], y ~ N(mean, diag(std^2)), by the fixed draws `normals`."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray, normals: np.ndarray) -> None:
        self.lower = lower
        self.width = upper - lower  # inf where lower is -inf
        self.upper = upper
        self.normals = normals

    def value(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        return self.value_and_grad(mean, std, grad=False)[0]

    def value_and_grad(
        self, mean: np.ndarray, std: np.ndarray, *, grad: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m, k = mean.shape
        s, b = len(self.normals), len(self.upper)
        value = np.empty(m)
        dmean = np.zeros((m, k))
        dstd = np.zeros((m, k))
        step = max(1, _CHUNK // max(s * b, 1))
        for start in range(0, m, step):
            rows = slice(start, min(m, start + step))
            Y = mean[rows, None, :] + std[rows, None, :] * self.normals[None]  # (c, s, k)
            log_box = np.zeros((len(Y), s, b))
            factors = []
            for j in range(k):
                # Each factor: min(upper - y, width), clamped at EPS; (c, s, b).
                f = self.upper[None, None, :, j] - Y[:, :, j, None]
                np.minimum(f, self.width[:, j], out=f)
                np.maximum(f, EPS, out=f)
                if grad:
                    factors.append(f.copy())
                log_box += np.log(f, out=f)
            flat = log_box.reshape(len(Y), -1)
            top = flat.max(axis=1)
            total = top + np.log(np.exp(flat - top[:, None]).sum(axis=1))
            value[rows] = total - math.log(s)
            if grad:
                w = np.exp(log_box - total[:, None, None])  # (c, s, b)
                share = np.zeros_like(w)
                for j, f in enumerate(factors):
                    # d log / d y_j = -1 / factor_j where the factor is active (unclamped).
                    active = (f > EPS) & (f < self.width[:, j])
                    share.fill(0.0)
                    np.divide(w, f, out=share, where=active)
                    dy = -share.sum(axis=2)  # (c, s)
                    dmean[rows, j] = dy.sum(axis=1)
                    dstd[rows, j] = dy @ self.normals[:, j]
        return value, dmean, dstd
