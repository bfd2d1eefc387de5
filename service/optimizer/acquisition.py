"""Acquisition functions on a GP's prediction, in the maximization convention.

Everything here maximizes: the caller flips the sign of a minimized objective before fitting,
so `mean` is "higher is better" and `best` is the highest value seen. With that convention the
formulas are exactly those of the source document:

    UCB(x)    = mean + beta * std                 (the lower bound mean - beta * std of the
                                                   minimized objective, negated)
    PI(x)     = Phi(z)                            z = (mean - best - xi) / std
    EI(x)     = (mean - best - xi) Phi(z) + std phi(z)   (0 where std = 0)
    logEI(x)  = log(std) + log h(z),  h(z) = phi(z) + z Phi(z), computed without underflow
                (Ament et al., 2023, "Unexpected improvements to expected improvement")

Maximizers use `value_and_grad`, which returns a monotone transform that is safe in flat
regions (log PI, log EI, UCB itself) and its derivatives with respect to mean and std.

Shapes: mean, std: (m,); every returned array: (m,).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import erfcx, log_ndtr, ndtr

from service.specs import AcquisitionName

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_SQRT_PI_2 = 0.5 * math.log(math.pi / 2.0)
_INV_SQRT_EPS = 1.0 / math.sqrt(np.finfo(float).eps)
_MIN_STD = 1e-12


def _phi(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z - _LOG_SQRT_2PI)


def ucb(mean: np.ndarray, std: np.ndarray, *, beta: float) -> np.ndarray:
    return mean + beta * std


def pi(mean: np.ndarray, std: np.ndarray, *, best: float, xi: float) -> np.ndarray:
    """Probability of improvement; 0 where std is 0 (as scikit-optimize's gaussian_pi)."""
    out = np.zeros_like(mean, dtype=float)
    mask = std > 0
    out[mask] = ndtr((mean[mask] - best - xi) / std[mask])
    return out


def ei(mean: np.ndarray, std: np.ndarray, *, best: float, xi: float) -> np.ndarray:
    """Expected improvement; 0 where std is 0 (as scikit-optimize's gaussian_ei)."""
    out = np.zeros_like(mean, dtype=float)
    mask = std > 0
    improve = mean[mask] - best - xi
    z = improve / std[mask]
    out[mask] = improve * ndtr(z) + std[mask] * _phi(z)
    return out


def log_h(z: np.ndarray) -> np.ndarray:
    """log(phi(z) + z Phi(z)) for any finite z, without underflow or cancellation."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    mid = z > -1.0
    zm = z[mid]
    out[mid] = np.log(_phi(zm) + zm * ndtr(zm))
    tail = (~mid) & (z > -_INV_SQRT_EPS)
    zt = z[tail]
    # h(z) = phi(z) (1 - |z| Phi(z)/phi(z)) and Phi(z)/phi(z) = sqrt(pi/2) erfcx(-z/sqrt 2).
    log_ratio = np.log(erfcx(-zt / math.sqrt(2.0)) * np.abs(zt)) + _LOG_SQRT_PI_2
    out[tail] = -0.5 * zt * zt - _LOG_SQRT_2PI + np.log(-np.expm1(log_ratio))
    far = z <= -_INV_SQRT_EPS
    zf = z[far]
    out[far] = -0.5 * zf * zf - _LOG_SQRT_2PI - 2.0 * np.log(np.abs(zf))
    return out


def log_ei(mean: np.ndarray, std: np.ndarray, *, best: float, xi: float) -> np.ndarray:
    """log EI; finite wherever std > 0 (about -z^2/2 far from the incumbent, not -inf)."""
    s = np.maximum(std, _MIN_STD)
    return np.log(s) + log_h((mean - best - xi) / s)


@dataclass(frozen=True)
class Acquisition:
    """One acquisition with its settings, applied to a prediction in standardized units."""

    name: AcquisitionName
    beta: float = 2.0
    xi: float = 0.01
    best: float = 0.0

    def value(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """The acquisition itself (EI, PI or UCB), as reported to users."""
        if self.name == AcquisitionName.UCB:
            return ucb(mean, std, beta=self.beta)
        if self.name == AcquisitionName.PI:
            return pi(mean, std, best=self.best, xi=self.xi)
        return ei(mean, std, best=self.best, xi=self.xi)

    def value_and_grad(
        self, mean: np.ndarray, std: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, da/dmean, da/dstd) of the maximized form: UCB, log PI or log EI."""
        if self.name == AcquisitionName.UCB:
            return ucb(mean, std, beta=self.beta), np.ones_like(mean), np.full_like(std, self.beta)
        s = np.maximum(std, _MIN_STD)
        z = (mean - self.best - self.xi) / s
        if self.name == AcquisitionName.PI:
            a = log_ndtr(z)
            dz = np.exp(-0.5 * z * z - _LOG_SQRT_2PI - a)
            return a, dz / s, -dz * z / s
        lh = log_h(z)
        dz = np.exp(log_ndtr(z) - lh)
        return np.log(s) + lh, dz / s, 1.0 / s - dz * z / s
