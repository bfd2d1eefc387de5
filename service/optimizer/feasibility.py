"""The modelled probability that a configuration is feasible, learned from constraint
outcomes and infeasible failures; the GP strategy multiplies its acquisition by it.

Labels: a completed or pruned trial is feasible unless a constraint failed (`feasible`
False); a trial that failed as infeasible (`SuggestRequest.infeasible`, e.g. out of memory)
is infeasible; other failures teach nothing about feasibility. With no infeasible label
there is nothing to learn and no model (the acquisition is unchanged).

Model: a GP regression on labels +1 / -1 (a least-squares classifier, Rasmussen & Williams
2006, section 6.5) with the GP's usual MAP fit, read through a probit link:

    P(feasible | x) = Phi(kappa * m(x) / sqrt(1 + kappa^2 s(x)^2)),   kappa = 2

so P is about Phi(3) = 0.999 next to a feasible point, 0.001 next to an infeasible one and
0.5 far from both. The acquisition maximizer adds the weight (`LogWeight`)

    log P - STEEP * max(0, log DELTA - log P),   DELTA = 0.5, STEEP = 50,

which is the log of EI x P (or PI x P) for the log-EI and log-PI forms it maximizes wherever
P >= DELTA, and below DELTA a steep (continuous) penalty: the probabilistic constraint of
Gelbart et al. (2014), "more likely feasible than not", softened for L-BFGS-B (regions no
trial has reached keep P = 0.5 and stay open). EI x P alone was
not enough: when the optimum lies on the edge of an out-of-memory region, the objective's
GP extrapolates its trend into the region (it has no values there), its EI beats the
confident EI near the incumbent by e^20, and the strategy kept probing the region (with
DELTA = 0.1 or 0.25, 6 to 10 of 15 late suggestions on the test's problem were infeasible;
with 0.5, 4 to 6, most of them just past the edge, where the optimum is).

Shapes: X (n, d) encoded configurations, labels (n,), Xq (m, d); value (m,), grad (m, d).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import log_ndtr

from service.domain import TrialState
from service.optimizer.base import SuggestRequest
from service.optimizer.gp import GaussianProcess, GPParams, fit_params
from service.optimizer.model import StudyModel

KAPPA = 3.0
DELTA = 0.5
STEEP = 50.0
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def labelled(request: SuggestRequest) -> tuple[list[dict[str, object]], np.ndarray]:
    """The configurations with a feasibility label and the labels (+1 feasible, -1 not)."""
    configs: list[dict[str, object]] = []
    labels: list[float] = []
    for o in request.observations:
        if o.feasible is False:
            configs.append(dict(o.params))
            labels.append(-1.0)
        elif o.state in (TrialState.COMPLETE, TrialState.PRUNED):
            configs.append(dict(o.params))
            labels.append(1.0)
    for params in request.infeasible:
        configs.append(dict(params))
        labels.append(-1.0)
    return configs, np.array(labels)


class FeasibilityModel:
    """P(feasible) over the encoded space, with the gradient of its log."""

    def __init__(self, gp: GaussianProcess) -> None:
        self.gp = gp

    def probability(self, Xq: np.ndarray) -> np.ndarray:
        mean, std = self.gp.predict(Xq)
        return np.exp(log_ndtr(self._z(mean, std)))

    @staticmethod
    def _z(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        return KAPPA * mean / np.sqrt(1.0 + (KAPPA * std) ** 2)

    def log_value(self, Xq: np.ndarray) -> np.ndarray:
        mean, std = self.gp.predict(Xq)
        log_p = log_ndtr(self._z(mean, std))
        return log_p - STEEP * np.maximum(0.0, math.log(DELTA) - log_p)

    def log_value_and_grad(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std, dmean, dstd = self.gp.predict_with_grad(Xq)
        root = np.sqrt(1.0 + (KAPPA * std) ** 2)
        z = KAPPA * mean / root
        log_p = log_ndtr(z)
        dlogp_dz = np.exp(-0.5 * z * z - _LOG_SQRT_2PI - log_p)
        dz_dmean = KAPPA / root
        dz_dstd = -KAPPA**3 * mean * std / root**3
        slope = 1.0 + STEEP * (log_p < math.log(DELTA))
        grad = (slope * dlogp_dz)[:, None] * (dz_dmean[:, None] * dmean + dz_dstd[:, None] * dstd)
        return log_p - STEEP * np.maximum(0.0, math.log(DELTA) - log_p), grad


def fit_feasibility(request: SuggestRequest) -> FeasibilityModel | None:
    """The feasibility model of `request`, or None when nothing was ever infeasible."""
    configs, labels = labelled(request)
    if not len(labels) or not np.any(labels < 0):
        return None
    X = request.space.encode_many(configs)
    start = GPParams.default(X.shape[1])
    params = fit_params(X, labels, starts=[start]) or start
    return FeasibilityModel(GaussianProcess(X, labels, params))


def feasible_incumbent(model: StudyModel, request: SuggestRequest) -> float:
    """The model's incumbent (standardized) over feasible observations only: improving on an
    infeasible value is no improvement. Pending points' believed values still raise it (as
    in `build_model`); with no feasible observation, the lowest modelled value."""
    y = model.data.y
    if not len(y):
        return model.best
    ok = np.array([o.feasible is not False for o in request.observations])[model.data.rows]
    observed = float(y.max())
    pending = model.best if model.best > observed else -math.inf
    best = float(y[ok].max()) if np.any(ok) else float(y.min())
    return max(best, pending)
