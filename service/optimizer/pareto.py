"""Pareto fronts and hypervolume, in the minimization convention.

Shapes: Y (n, k) objective values, k in 1..3, every objective minimized (flip maximized ones
with `to_minimized` first); ref (k,).

Rules:
- NaN or infinite values are refused (ValueError): a front over undefined values means
  nothing, and callers drop failed trials before asking.
- A point is dominated when another is no worse in every objective and better in one; equal
  points (duplicates) do not dominate each other, so both stay on the front.
- The hypervolume counts only the region that points dominate inside the reference box;
  points not strictly better than `ref` in every objective add nothing. Exact for k <= 3
  (a sweep for 2, slices over the third objective for 3): O(n log n) and O(n^2 log n).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.domain import Direction


def _checked(Y: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2:
        raise ValueError(f"expected an (n, k) array of values, got shape {Y.shape}")
    if not np.all(np.isfinite(Y)):
        raise ValueError("objective values must be finite (no NaN or infinity)")
    return Y


def to_minimized(
    values: np.ndarray | Sequence[Sequence[float]], directions: Sequence[Direction]
) -> np.ndarray:
    """`values` with maximized objectives negated."""
    Y = _checked(values)
    if Y.shape[1] != len(directions):
        raise ValueError(f"{Y.shape[1]} objectives but {len(directions)} directions")
    signs = np.array([1.0 if Direction(d) == Direction.MINIMIZE else -1.0 for d in directions])
    return Y * signs


def nondominated(values: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """(n,) bool: which points no other point dominates."""
    Y = _checked(values)
    n = len(Y)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        no_worse = np.all(Y[i] >= Y, axis=1)
        better = np.any(Y[i] > Y, axis=1)
        if np.any(no_worse & better):
            keep[i] = False
    return keep


def hypervolume(
    values: np.ndarray | Sequence[Sequence[float]], ref: np.ndarray | Sequence[float]
) -> float:
    """The volume dominated by `values` and bounded by `ref` (0.0 for no useful point)."""
    Y = _checked(values)
    r = np.asarray(ref, dtype=float)
    if r.shape != (Y.shape[1],) or not np.all(np.isfinite(r)):
        raise ValueError(f"the reference point must be {Y.shape[1]} finite numbers")
    Y = Y[np.all(r > Y, axis=1)]
    if not len(Y):
        return 0.0
    Y = Y[nondominated(Y)]
    k = Y.shape[1]
    if k == 1:
        return float(r[0] - Y[:, 0].min())
    if k == 2:
        return _hv2(Y, r)
    if k == 3:
        return _hv3(Y, r)
    raise ValueError(f"hypervolume is computed for 1 to 3 objectives, not {k}")


def _hv2(Y: np.ndarray, r: np.ndarray) -> float:
    order = np.lexsort((Y[:, 1], Y[:, 0]))
    volume, y_prev = 0.0, r[1]
    for x, y in Y[order]:
        if y < y_prev:
            volume += (r[0] - x) * (y_prev - y)
            y_prev = y
    return float(volume)


def _hv3(Y: np.ndarray, r: np.ndarray) -> float:
    Y = Y[np.argsort(Y[:, 2], kind="stable")]
    volume = 0.0
    for i in range(len(Y)):
        top = Y[i + 1, 2] if i + 1 < len(Y) else r[2]
        if top > Y[i, 2]:
            volume += _hv2(Y[: i + 1, :2], r[:2]) * (top - Y[i, 2])
    return float(volume)


def hypervolume_history(
    values: np.ndarray | Sequence[Sequence[float]], ref: Sequence[float]
) -> list[float]:
    """The hypervolume of the first 1, 2, ..., n points (in trial order)."""
    Y = _checked(values)
    return [hypervolume(Y[: i + 1], ref) for i in range(len(Y))]
