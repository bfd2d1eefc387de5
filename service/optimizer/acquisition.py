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

Noisy objectives (a fitted noise variance `noise` above `NOISY`, in standardized units where
the signal variance is about 1): EI and PI are multiplied by the augmented-EI factor of
Huang et al. (2006), 1 - sqrt(noise / (std^2 + noise)). Where the model already knows the
mean to within the noise, another evaluation mostly measures the noise: the factor goes to 0
there, and EI/PI stop re-sampling the incumbent's neighbourhood (on a noisy CV task the
default spent its last 50 of 80 trials within a few percent of one configuration). Below
`NOISY` the noise term is the prior's floor on a deterministic objective and the factor is
left out: it would only slow the final refinement.

Pending points under PI and UCB: the kriging believer (variance reduced at the pending points,
the incumbent raised to their predicted means) is enough for EI, whose value scales with the
remaining std, but not for PI or UCB: a fitted noise floor leaves a std of about
sqrt(noise) at a pending point, and PI there stays near Phi(-xi / sqrt(noise)), higher than
anywhere else, so a batch of 4 collapsed onto one x (within 2e-9). `LocalPenalty` multiplies
them by hard local penalizers around every pending point (Alvi et al., 2019, "Asynchronous
batch Bayesian optimisation with improved local penalisation", after Gonzalez et al., 2016):
in log form, `log a(x) + sum_j log phi_j(x)` with

    phi_j(x) = (1 + (r_j / |x - x_j|)^p)^(-1/p),   r_j = (max(best - mean_j, 0) + std_j) / L

(p = 5, L the median norm of the mean's gradient over the candidate pool, mean_j and std_j
the prediction at x_j without pending points), so phi_j is 0 at x_j and about 1 beyond r_j.
UCB enters as log softplus(UCB) (positive, same ordering), PI as log PI; EI keeps the
believer alone (`Acquisition.penalized`).

Shapes: mean, std: (m,); every returned array: (m,).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import erfcx, expit, log_ndtr, ndtr

from service.specs import AcquisitionName

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_SQRT_PI_2 = 0.5 * math.log(math.pi / 2.0)
_INV_SQRT_EPS = 1.0 / math.sqrt(np.finfo(float).eps)
_MIN_STD = 1e-12
NOISY = 0.05


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


def log_noise_factor(std: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """log(1 - sqrt(noise / (s^2 + noise))) and its derivative in s, computed as
    log(s^2 / (r (r + sqrt(noise)))), r = sqrt(s^2 + noise), which has no cancellation."""
    s = np.maximum(std, _MIN_STD)
    r = np.sqrt(s * s + noise)
    a = math.sqrt(noise)
    value = 2.0 * np.log(s) - np.log(r) - np.log(r + a)
    grad = 2.0 / s - s / (r * r) - (s / r) / (r + a)
    return value, grad


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
    noise: float = 0.0  # the model's noise variance (standardized); see the module docstring

    @property
    def noisy(self) -> bool:
        return self.name != AcquisitionName.UCB and self.noise > NOISY

    def value(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """The acquisition itself (EI, PI or UCB; EI and PI times the noise factor on a noisy
        objective), as reported to users."""
        if self.name == AcquisitionName.UCB:
            return ucb(mean, std, beta=self.beta)
        if self.name == AcquisitionName.PI:
            out = pi(mean, std, best=self.best, xi=self.xi)
        else:
            out = ei(mean, std, best=self.best, xi=self.xi)
        if self.noisy:
            out = out * np.exp(log_noise_factor(std, self.noise)[0])
        return out

    def value_and_grad(
        self, mean: np.ndarray, std: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, da/dmean, da/dstd) of the maximized form: UCB, log PI or log EI (plus the log
        noise factor on a noisy objective)."""
        if self.name == AcquisitionName.UCB:
            return ucb(mean, std, beta=self.beta), np.ones_like(mean), np.full_like(std, self.beta)
        s = np.maximum(std, _MIN_STD)
        z = (mean - self.best - self.xi) / s
        if self.name == AcquisitionName.PI:
            a = log_ndtr(z)
            dz = np.exp(-0.5 * z * z - _LOG_SQRT_2PI - a)
            a, da_dm, da_ds = a, dz / s, -dz * z / s
        else:
            lh = log_h(z)
            dz = np.exp(log_ndtr(z) - lh)
            a, da_dm, da_ds = np.log(s) + lh, dz / s, 1.0 / s - dz * z / s
        if self.noisy:
            f, df = log_noise_factor(std, self.noise)
            a, da_ds = a + f, da_ds + df
        return a, da_dm, da_ds

    @property
    def penalized(self) -> bool:
        """Whether pending points are also penalized locally (see the module docstring)."""
        return self.name in (AcquisitionName.PI, AcquisitionName.UCB)

    def log_value_and_grad(
        self, mean: np.ndarray, std: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like `value_and_grad`, with UCB as log softplus(UCB): the log of a positive
        acquisition, which a local penalty multiplies."""
        a, da_dm, da_ds = self.value_and_grad(mean, std)
        if self.name != AcquisitionName.UCB:
            return a, da_dm, da_ds
        soft = np.logaddexp(0.0, a)
        # d log softplus(a) / da = sigmoid(a) / softplus(a); both tails computed stably.
        dlog = np.where(a < -30.0, 1.0, expit(a) / np.maximum(soft, 1e-300))
        log_soft = np.where(a < -30.0, a, np.log(np.maximum(soft, 1e-300)))
        return log_soft, dlog * da_dm, dlog * da_ds


@dataclass(frozen=True)
class LocalPenalty:
    """Hard local penalizers around pending points, in log form (see the module docstring).

    centers: (k, d) encoded pending points; radii: (k,) in the encoded cube.
    """

    centers: np.ndarray
    radii: np.ndarray
    power: float = 5.0

    @classmethod
    def around(
        cls,
        centers: np.ndarray,
        mean: np.ndarray,
        std: np.ndarray,
        *,
        best: float,
        lipschitz: float,
        max_radius: float = 0.5,
    ) -> LocalPenalty:
        """Radii from the prediction (without pending points) at the centers."""
        L = max(float(lipschitz), 1e-6) if math.isfinite(lipschitz) else 1e-6
        gap = np.maximum(best - mean, 0.0)
        radii = np.clip((np.nan_to_num(gap) + np.nan_to_num(std)) / L, 1e-6, max_radius)
        return cls(np.asarray(centers, dtype=float), radii)

    def value_and_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """sum_j log phi_j(x): (m,), and its gradient with respect to x: (m, d)."""
        value = np.zeros(len(X))
        grad = np.zeros_like(X, dtype=float)
        p = self.power
        for c, r in zip(self.centers, self.radii, strict=True):
            diff = X - c
            dist2 = np.maximum((diff * diff).sum(1), 1e-24)
            u = p * (math.log(r) - 0.5 * np.log(dist2))
            value -= np.logaddexp(0.0, u) / p
            grad += (expit(u) / dist2)[:, None] * diff
        return value, grad
