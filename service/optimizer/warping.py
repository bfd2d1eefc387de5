"""Robust output transform: failed values imputed, bad half rank-warped, then standardized.

Shapes: values, y: (n,) in the maximization convention (higher is better).

Rules, applied in order (in the spirit of Vizier's output warper):
1. Failed (None/NaN/inf) values become the worst finite value minus half the finite range
   (minus 1 when the range is 0): failed regions look bad, the fit never sees a NaN.
2. Half-rank warping: values below the median are replaced by
   median + s * Phi^-1(q), q = (rank - 0.5) / n, s = the RMS distance of the upper half to the
   median. A loss that blows up by 10^6 then weighs like a value a few s below the median, so
   an outlier no longer flattens the good region. Values at or above the median are kept.
3. Standardize to mean 0, std 1 (std 1 when all values are equal).

`to_original` maps a prediction (mean, std) in warped units back to the input units, by
piecewise-linear interpolation of the monotone warp (linear extrapolation above the best
value, where the warp is affine); NaN when there were no values (nothing sets the scale).

Extreme but finite values (up to +-1.8e308, where a range, a mean or a square overflows)
are handled in units of the largest magnitude (`unit`), and mapped back only at the end: a
prediction beyond the largest float comes back as +-inf, never as NaN or an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

UNIT_ABOVE = 1e100


@dataclass(frozen=True)
class OutputWarp:
    """`y`: the warped, standardized values; `original`: the values (failures imputed) in
    units of `unit`; `scale`: the standardization's std, in those units."""

    y: np.ndarray
    original: np.ndarray
    scale: float
    unit: float = 1.0

    @classmethod
    def fit(cls, values: np.ndarray, *, rank_warp: bool = True) -> OutputWarp:
        v = np.asarray(values, dtype=float).copy()
        if not len(v):
            return cls(y=v, original=v, scale=1.0)
        finite = np.isfinite(v)
        largest = float(np.abs(v[finite]).max()) if finite.any() else 0.0
        unit = largest if largest > UNIT_ABOVE else 1.0
        v = v / unit
        if finite.any():
            lo, hi = float(v[finite].min()), float(v[finite].max())
            v[~finite] = lo - (0.5 * (hi - lo) if hi > lo else 1.0)
        else:
            v[:] = 0.0
        w = v.copy()
        if rank_warp and len(v) >= 3:
            med = float(np.median(v))
            upper = v[v >= med]
            spread = float(np.sqrt(np.mean((upper - med) ** 2)))
            if spread > 0:
                q = (rankdata(v) - 0.5) / len(v)
                low = v < med
                w[low] = np.minimum(med + spread * ndtri(q[low]), med)
        mean = float(w.mean())
        std = float(w.std())
        std = std if std > 0 else 1.0
        return cls(y=(w - mean) / std, original=v, scale=std, unit=unit)

    def to_original(self, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.y):
            # No value of the study's own yet (a warm start's first suggestion): no scale.
            return np.full_like(mean, np.nan), np.full_like(std, np.nan)
        out, out_std = self._to_units(np.asarray(mean, dtype=float), np.asarray(std, dtype=float))
        with np.errstate(over="ignore"):
            return out * self.unit, out_std * self.unit

    def _to_units(self, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.y, kind="stable")
        ys, vs = self.y[order], self.original[order]
        ys, idx = np.unique(ys, return_index=True)
        vs = vs[idx]
        if len(ys) == 1:
            return vs[0] + mean * self.scale, std * self.scale
        out = np.interp(mean, ys, vs)
        above = mean > ys[-1]
        out[above] = vs[-1] + (mean[above] - ys[-1]) * self.scale
        below = mean < ys[0]
        slope_low = (vs[1] - vs[0]) / (ys[1] - ys[0])
        out[below] = vs[0] + (mean[below] - ys[0]) * slope_low
        seg = np.clip(np.searchsorted(ys, mean) - 1, 0, len(ys) - 2)
        slope = (vs[seg + 1] - vs[seg]) / (ys[seg + 1] - ys[seg])
        slope[above] = self.scale
        return out, std * np.abs(slope)
