"""Frechet distance between two Gaussian fits of feature sets (numpy only).

Shapes: a and b are (n, d) feature matrices; n may differ between them, n >= 2.
FD = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)).
The trace of the matrix root is computed as sum(sqrt(eig(R S_b R))) with R = S_a^(1/2), a
symmetric positive semi-definite form that stays exact when a covariance is singular (as
ReLU features with dead units make it).
"""

from __future__ import annotations

import numpy as np


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Returns NaN when either input holds a non-finite value (a diverged generator)."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not (np.isfinite(a64).all() and np.isfinite(b64).all()):
        return float("nan")
    mu_a, mu_b = a64.mean(axis=0), b64.mean(axis=0)
    s_a, s_b = np.atleast_2d(np.cov(a64, rowvar=False)), np.atleast_2d(np.cov(b64, rowvar=False))
    root_a = _psd_sqrt(s_a)
    middle = root_a @ s_b @ root_a
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)))
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2.0 * cross)
    return max(value, 0.0)
