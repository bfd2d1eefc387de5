"""The modelled probability that a configuration is feasible, learned from constraint
metrics and infeasible failures; the GP strategy multiplies its acquisition by it.

Two kinds of model, multiplied:
- One GP per constrained metric (`SuggestRequest.constraints`), on the metric's observed
  values (standardized), once two observations carry it:
  P(min <= metric <= max | x) = Phi((max - m) / s) - Phi((min - m) / s), with one-sided
  bounds as one Phi term. The metric's value says how far inside or outside the bound a
  trial was, which a pass/fail label cannot (a parameter count, a latency).
- A classifier of whether a configuration runs at all, once some did not: labels -1 for
  failures marked infeasible (`SuggestRequest.infeasible`, e.g. out of memory) and for
  observations whose `feasible` is False without the metrics to say why, +1 for the other
  completed or pruned trials; other failures teach nothing. A GP regression on the labels
  (a least-squares classifier, Rasmussen & Williams 2006, section 6.5) read through a
  probit link: P = Phi(kappa m(x) / sqrt(1 + kappa^2 s(x)^2)), kappa = 3, so P is about
  Phi(3) = 0.999 next to a feasible point, 0.001 next to an infeasible one and 0.5 far
  from both.

With neither there is no model and the acquisition is unchanged. The maximizer adds the
weight (`LogWeight`)

    log P - STEEP * max(0, log DELTA - log P),   DELTA = 0.5, STEEP = 50,

which is the log of EI x P (or PI x P) for the log-EI and log-PI forms it maximizes wherever
P >= DELTA, and below DELTA a steep (continuous) penalty: the probabilistic constraint of
Gelbart et al. (2014), "more likely feasible than not", softened for L-BFGS-B (regions no
trial has reached keep P = 0.5 and stay open). EI x P alone was not enough: when the optimum
lies on the edge of an out-of-memory region, the objective's GP extrapolates its trend into
the region (it has no values there), its EI beats the confident EI near the incumbent by
e^20, and the strategy kept probing the region (with DELTA = 0.1 or 0.25, 6 to 10 of 15
late suggestions on the test's problem were infeasible; with 0.5, 4 to 6, most of them just
past the edge, where the optimum is).

Shapes: X (n, d) encoded configurations, labels (n,), Xq (m, d); value (m,), grad (m, d).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

from service.domain import TrialState
from service.optimizer.base import Observation, SuggestRequest
from service.optimizer.gp import GaussianProcess, GPParams, fit_params
from service.optimizer.model import StudyModel
from service.specs import ConstraintSpec

KAPPA = 3.0
DELTA = 0.5
STEEP = 50.0
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_MIN_STD = 1e-9


def _dlog_ndtr(z: np.ndarray) -> np.ndarray:
    """d/dz log Phi(z), stable for any z."""
    return np.exp(-0.5 * z * z - _LOG_SQRT_2PI - log_ndtr(z))


def _measured(o: Observation, constraints: tuple[ConstraintSpec, ...]) -> bool:
    metrics = o.metrics or {}
    return all(
        isinstance(metrics.get(c.metric), int | float) and math.isfinite(metrics[c.metric])
        for c in constraints
    )


def labelled(request: SuggestRequest) -> tuple[list[dict[str, object]], np.ndarray]:
    """The classifier's configurations and labels (+1 ran, -1 could not), see the rules."""
    constraints = tuple(request.constraints)
    configs: list[dict[str, object]] = []
    labels: list[float] = []
    for o in request.observations:
        if o.feasible is False and not (constraints and _measured(o, constraints)):
            configs.append(dict(o.params))
            labels.append(-1.0)
        elif o.state in (TrialState.COMPLETE, TrialState.PRUNED):
            configs.append(dict(o.params))
            labels.append(1.0)
    for params in request.infeasible:
        configs.append(dict(params))
        labels.append(-1.0)
    return configs, np.array(labels)


@dataclass(frozen=True)
class _MetricModel:
    """A GP of one constrained metric, standardized; bounds in the same units (None: open)."""

    gp: GaussianProcess
    low: float | None
    high: float | None

    def log_p(self, Xq: np.ndarray, *, grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if grad:
            mean, std, dmean, dstd = self.gp.predict_with_grad(Xq)
        else:
            mean, std = self.gp.predict(Xq)
        s = np.maximum(std, _MIN_STD)
        if self.low is not None and self.high is not None:
            # P = Phi(b) - Phi(a); computed directly (both bounds is the rare case).
            zb, za = (self.high - mean) / s, (mean - self.low) / s
            p = np.clip(np.exp(log_ndtr(zb)) + np.exp(log_ndtr(za)) - 1.0, 1e-300, 1.0)
            log_p = np.log(p)
            if not grad:
                return log_p, None
            phib = np.exp(-0.5 * zb * zb - _LOG_SQRT_2PI)
            phia = np.exp(-0.5 * za * za - _LOG_SQRT_2PI)
            dp_dm = (-phib + phia) / s
            dp_ds = (-phib * zb - phia * za) / s
            g = (dp_dm / p)[:, None] * dmean + (dp_ds / p)[:, None] * dstd
            return log_p, g
        upper = self.high is not None
        bound = self.high if upper else self.low
        assert bound is not None
        z = (bound - mean) / s if upper else (mean - bound) / s
        log_p = log_ndtr(z)
        if not grad:
            return log_p, None
        dz_dm = (-1.0 if upper else 1.0) / s
        dz_ds = -z / s
        d = _dlog_ndtr(z)
        return log_p, (d * dz_dm)[:, None] * dmean + (d * dz_ds)[:, None] * dstd


class FeasibilityModel:
    """P(feasible) over the encoded space, with the gradient of its (penalized) log."""

    def __init__(
        self, classifier: GaussianProcess | None, metrics: list[_MetricModel]
    ) -> None:
        self.classifier = classifier
        self.metrics = metrics

    def _log_p(self, Xq: np.ndarray, *, grad: bool) -> tuple[np.ndarray, np.ndarray]:
        total = np.zeros(len(Xq))
        g = np.zeros_like(Xq, dtype=float)
        if self.classifier is not None:
            if grad:
                mean, std, dmean, dstd = self.classifier.predict_with_grad(Xq)
            else:
                mean, std = self.classifier.predict(Xq)
            root = np.sqrt(1.0 + (KAPPA * std) ** 2)
            z = KAPPA * mean / root
            total += log_ndtr(z)
            if grad:
                d = _dlog_ndtr(z)
                dz_dm = KAPPA / root
                dz_ds = -(KAPPA**3) * mean * std / root**3
                g += (d * dz_dm)[:, None] * dmean + (d * dz_ds)[:, None] * dstd
        for m in self.metrics:
            lp, lg = m.log_p(Xq, grad=grad)
            total += lp
            if lg is not None:
                g += lg
        return total, g

    def probability(self, Xq: np.ndarray) -> np.ndarray:
        return np.exp(self._log_p(Xq, grad=False)[0])

    def log_value(self, Xq: np.ndarray) -> np.ndarray:
        log_p, _ = self._log_p(Xq, grad=False)
        return log_p - STEEP * np.maximum(0.0, math.log(DELTA) - log_p)

    def log_value_and_grad(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        log_p, g = self._log_p(Xq, grad=True)
        slope = 1.0 + STEEP * (log_p < math.log(DELTA))
        return log_p - STEEP * np.maximum(0.0, math.log(DELTA) - log_p), slope[:, None] * g


def _fit(X: np.ndarray, y: np.ndarray) -> GaussianProcess:
    start = GPParams.default(X.shape[1])
    params = fit_params(X, y, starts=[start]) or start
    return GaussianProcess(X, y, params)


def _metric_model(request: SuggestRequest, c: ConstraintSpec) -> _MetricModel | None:
    rows = [
        (o.params, float(o.metrics[c.metric]))
        for o in request.observations
        if o.metrics
        and isinstance(o.metrics.get(c.metric), int | float)
        and math.isfinite(o.metrics[c.metric])
    ]
    if len(rows) < 2:
        return None
    values = np.array([v for _, v in rows])
    with np.errstate(all="ignore"):
        centre, spread = float(values.mean()), float(values.std())
        scale = spread if spread > 0 else max(abs(centre), 1.0)
        y = (values - centre) / scale
        low = None if c.min is None else (c.min - centre) / scale
        high = None if c.max is None else (c.max - centre) / scale
    if not (np.all(np.isfinite(y)) and all(b is None or math.isfinite(b) for b in (low, high))):
        return None  # values near the float limits: no usable model of this metric
    return _MetricModel(_fit(request.space.encode_many(p for p, _ in rows), y), low, high)


def fit_feasibility(request: SuggestRequest) -> FeasibilityModel | None:
    """The feasibility model of `request`, or None when there is nothing to model."""
    metrics = [m for c in request.constraints if (m := _metric_model(request, c)) is not None]
    configs, labels = labelled(request)
    classifier = None
    if len(labels) and np.any(labels < 0):
        classifier = _fit(request.space.encode_many(configs), labels)
    if classifier is None and not metrics:
        return None
    return FeasibilityModel(classifier, metrics)


def feasible_incumbent(model: StudyModel, request: SuggestRequest) -> float:
    """The model's incumbent (standardized; from `model.fitted`, as in `build_model`) over
    feasible observations only: improving on an infeasible value is no improvement. Pending
    points' believed values still raise it (as in `build_model`), but not those of
    infeasible configurations (`request.infeasible`, pending for the wrapped strategy): they
    never ran and never will, so their believed values are no incumbent. The GP extrapolates
    a trend into a region it has no values from; on an optimum at the edge of an
    out-of-memory region that belief sat above every feasible value, and EI then preferred
    far, uncertain points to refining the edge. With no feasible observation, the lowest
    modelled value."""
    y = model.fitted
    if not len(y):
        return model.best
    ok = np.array([o.feasible is not False for o in request.observations])[model.data.rows]
    best = float(y[ok].max()) if np.any(ok) else float(y.min())
    space = request.space
    never = {space.key(p) for p in request.infeasible}
    pending = [p for p in request.pending if space.key(p) not in never]
    if pending:
        believed, _ = model.surrogate.predict(space.encode_many(pending))
        best = max(best, float(believed.max()))
    return best
