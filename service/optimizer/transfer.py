"""Transfer from earlier studies: a stack of residual GPs (Golovin et al., 2017, Google Vizier).

Why a model and not extra points: an earlier study ran on a related but different function
(another dataset, another epoch count), so its values are on another scale and its optimum may
sit a little elsewhere. Mixed into the study's observations, its points blur exactly the
shifted optimum the study has to find. Here they form a prior mean, and the study's own values
are modelled as a residual over it, for the whole study:

    level i = each earlier study (oldest first), then the study itself on top:
        y_i(x)  = a_i mu_{i-1}(x) + b_i + r_i(x),        r_i ~ GP(0, k_i),  mu_0 = 0
        mu_i(x) = a_i mu_{i-1}(x) + b_i + E[r_i(x) | level i's points]

`y_i` are a level's values in the maximization convention through the robust output warp
(`OutputWarp`: failures imputed, standardized per study), so studies on different scales stack.

Mean: `(a_i, b_i)` map the level below onto this level's values (the earlier study measured
2 f + 1, or its values were standardized over a wider range). They are the posterior mode of
`y = a m + b + r`, `r ~ N(0, K)` (K the residual kernel plus noise), `a ~ N(1, PRIOR_SLOPE_SD^2)`,
`b` flat: generalized least squares, which counts clustered points for less than spread ones.
With no value of its own the study takes the prior as it is (a = 1, b = 0); with one, a = 1 and
b aligns the prior with that value; from two on the data decide more and more. A negative slope
(the earlier study ranks configurations the other way round) is clipped to 0: the prior is
then ignored rather than inverted, and the model is a plain GP on the study's values.

Standard deviation: Vizier's weighted geometric mean of the residual GP's and the prior's
(the top earlier level's GP), `std = std_top^w * std_prior^(1 - w)`. The weight follows the
degrees of freedom each was fitted with (`_top_weight`): with few points of its own the study
trusts the prior's uncertainty (small where the earlier study looked, so no trial is spent
re-exploring what it ruled out), and its own residual GP takes over as its points accumulate.
Pending points count as the study's own (kriging believer), so a batch spreads out.

Residual kernel: the study's residual GP centres its lengthscale prior on the lengthscales the
top earlier level fitted (same objective, so the same scales of variation): fitted on a few
clustered points, the default prior would call a shift of the optimum a smooth offset.

Expanded spaces: an earlier trial may lack parameters the new space added (or a conditional
parameter its branch now has). Its known part must belong to the space; the parameters it
lacks are marginalized: that study's level is fitted on, and predicts from, the columns all of
its trials know, so its prior mean is constant along the new dimensions (whatever the new
parameter does, the earlier study could not see it) and the study's residual GP learns them.
A parameter the earlier study held fixed is known: its trials carry the fixed value.

Inputs: only complete, finite earlier trials whose configuration belongs to the space count; a
study with fewer than `MIN_SOURCE_VALUES` of them, or with all values equal, adds nothing (its
model would be flat). Past `cap` points an earlier study keeps its best quarter plus a seeded
random rest, as the study's own data do past `predict_cap`. Lower levels are only asked for
their mean (`PosteriorMean`, O(m n d) per query); hyperparameters of the earlier levels are
MAP-fitted once and kept in the strategy state, keyed by the number of points, since finished
studies do not change.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from service.domain import TrialState
from service.errors import InvalidConfiguration
from service.optimizer.base import Observation, SuggestRequest
from service.optimizer.gp import GaussianProcess, GPParams, PosteriorMean, fit_params
from service.optimizer.warping import OutputWarp
from service.space import SearchSpace

PRIOR_SLOPE_SD = 1.0
MIN_SOURCE_VALUES = 2
# Vizier's `expected_base_stddev_mismatch`: the expected RMS fractional mismatch between the
# prior's and the study's standard deviations, in the weight of the combined std.
STD_MISMATCH = 1.0
_TOP = 5

Solve = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Source:
    """One earlier study's usable trials: encoded configurations and warped values (higher is
    better); `known`: the columns its level models (None: all of them), the others belong to
    parameters its trials lack and are filled with placeholders in X."""

    X: np.ndarray
    y: np.ndarray
    known: np.ndarray | None = None

    @property
    def top(self) -> np.ndarray:
        """Its best few points: extra candidates for the acquisition maximizer."""
        return self.X[np.argsort(-self.y, kind="stable")[:_TOP]]


def sources(request: SuggestRequest, *, cap: int = 500) -> list[Source]:
    """The earlier studies in `request.prior` that can inform a model, oldest first."""
    space = request.space
    sign = request.direction.sign
    out: list[Source] = []
    for index, observations in enumerate(request.prior):
        kept, lacking = _usable_part(observations, space)
        if len(kept) < MIN_SOURCE_VALUES:
            continue
        values = np.array([sign * float(o.value) for o in kept])  # type: ignore[arg-type]
        if np.ptp(values) <= 0:
            continue
        X = space.encode_many(space.filled(o.params) for o in kept)
        if len(values) > cap:
            rng = np.random.default_rng(index)
            best = np.argsort(-values, kind="stable")[: cap // 4]
            rest = np.setdiff1d(np.arange(len(values)), best)
            idx = np.concatenate([best, rng.choice(rest, size=cap - len(best), replace=False)])
            X, values = X[idx], values[idx]
        warp = OutputWarp.fit(values, rank_warp=request.spec.output_warping)
        known = None
        if lacking:
            known = np.ones(space.dim, dtype=bool)
            for col in space.columns:
                if col.name in lacking:
                    known[col.start : col.stop] = False
            if not known.any():
                continue
        out.append(Source(X, warp.y, known))
    return out


def _usable_part(
    observations: Sequence[Observation], space: SearchSpace
) -> tuple[list[Observation], set[str]]:
    """The complete, finite observations whose known part fits `space`, and the parameters
    they lack. A parameter counts as lacking only when no trial of the study has it (the
    study predates it); a trial that lacks one its study's other trials have is left out."""
    parts: list[tuple[Observation, list[str]]] = []
    for o in observations:
        if o.state != TrialState.COMPLETE or not o.is_finite:
            continue
        try:
            _, missing = space.validate_partial(o.params)
        except InvalidConfiguration:
            continue
        parts.append((o, missing))
    had = {name for o, _ in parts for name in o.params}
    kept = [o for o, missing in parts if not had.intersection(missing)]
    lacking = {name for _, missing in parts for name in missing} - had
    return kept, lacking


def _usable(o: Observation, space: SearchSpace) -> bool:
    return bool(_usable_part([o], space)[0])


def map_prior(m: np.ndarray, y: np.ndarray, solve: Solve | None = None) -> tuple[float, float]:
    """(a, b) of `y ~ a m + b` under the residual covariance: see the module docstring.

    `solve(B)` applies (K + noise I)^-1; None treats the residuals as independent with unit
    variance (a first estimate, before the residual kernel is known).
    """
    n = len(y)
    if n == 0:
        return 1.0, 0.0
    H = np.column_stack([m, np.ones(n)])
    KiH = H if solve is None else solve(H)
    ridge = 1.0 / PRIOR_SLOPE_SD**2
    A = H.T @ KiH + np.diag([ridge, 0.0])
    rhs = KiH.T @ y + np.array([ridge, 0.0])
    try:
        a, b = np.linalg.solve(A, rhs)
    except np.linalg.LinAlgError:
        a, b = 1.0, float(np.mean(y - m))
    if not (math.isfinite(a) and math.isfinite(b)):
        a, b = 1.0, float(np.mean(y - m))
    if a < 0:
        # GLS intercept alone: b = 1'K^-1 y / 1'K^-1 1.
        a, b = 0.0, float(KiH[:, 1] @ y / KiH[:, 1].sum())
    return float(a), float(b)


@dataclass(frozen=True)
class _Level:
    """One earlier study: its residual mean on its `known` columns (None: all)."""

    mean: PosteriorMean
    a: float
    b: float
    known: np.ndarray | None = None

    def value(self, Xq: np.ndarray) -> np.ndarray:
        return self.mean.mean(Xq if self.known is None else Xq[:, self.known])

    def value_with_grad(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.known is None:
            return self.mean.mean_with_grad(Xq)
        m, dm = self.mean.mean_with_grad(Xq[:, self.known])
        grad = np.zeros(Xq.shape)
        grad[:, self.known] = dm
        return m, grad


class _KnownColumns:
    """The top earlier level's GP seen from the full encoded space: it predicts from its
    `known` columns, and its gradient is 0 along the others."""

    def __init__(self, gp: GaussianProcess, known: np.ndarray | None) -> None:
        self.gp = gp
        self.known = known
        self.y = gp.y
        self.params = gp.params

    def predict(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.gp.predict(Xq if self.known is None else Xq[:, self.known])

    def predict_with_grad(
        self, Xq: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self.known is None:
            return self.gp.predict_with_grad(Xq)
        mean, std, dm, ds = self.gp.predict_with_grad(Xq[:, self.known])
        dmean, dstd = np.zeros(Xq.shape), np.zeros(Xq.shape)
        dmean[:, self.known], dstd[:, self.known] = dm, ds
        return mean, std, dmean, dstd


class PriorStack:
    """The earlier studies' levels: the prior mean `mu(x)` with its gradient, and the top
    level's GP for the prior's standard deviation."""

    def __init__(self, levels: Sequence[_Level], top: GaussianProcess) -> None:
        self.levels = list(levels)
        self.top = _KnownColumns(top, self.levels[-1].known if self.levels else None)

    @property
    def n_points(self) -> int:
        """How many points the top level was fitted on (its degrees of freedom)."""
        return len(self.top.y)

    def lengthscale_centre(self) -> tuple[float, ...]:
        """The top level's fitted log-lengthscales: where the study's residual GP centres its
        lengthscale prior (the default centre on columns the top level does not know)."""
        fitted = self.top.params.log_lengthscales
        known = self.top.known
        if known is None:
            return fitted
        centre = list(GPParams.default(len(known)).log_lengthscales)
        for j, value in zip(np.flatnonzero(known), fitted, strict=True):
            centre[j] = value
        return tuple(centre)

    def mean(self, Xq: np.ndarray) -> np.ndarray:
        m = np.zeros(len(Xq))
        for level in self.levels:
            m = level.a * m + level.b + level.value(Xq)
        return m

    def mean_with_grad(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m, dm = np.zeros(len(Xq)), np.zeros(Xq.shape)
        for level in self.levels:
            lm, ldm = level.value_with_grad(Xq)
            m, dm = level.a * m + level.b + lm, level.a * dm + ldm
        return m, dm


def fit_prior(
    stack_sources: Sequence[Source], cached: Any, *, fit_cap: int = 200
) -> tuple[PriorStack, list[dict[str, Any]]]:
    """Fits the earlier studies' levels, oldest first, reusing cached hyperparameters where a
    level's number of points is unchanged; returns the stack and the cache for the strategy
    state. `stack_sources` must not be empty."""
    stored = list(cached) if isinstance(cached, list) else []
    levels: list[_Level] = []
    states: list[dict[str, Any]] = []
    gp: GaussianProcess | None = None
    for i, src in enumerate(stack_sources):
        Xs = src.X if src.known is None else src.X[:, src.known]
        d = Xs.shape[1]
        m = PriorStack(levels, gp).mean(src.X) if gp is not None else np.zeros(len(src.y))
        entry = stored[i] if i < len(stored) and isinstance(stored[i], Mapping) else None
        previous = GPParams.from_state(entry, d) if entry else None
        if previous is not None and entry is not None and entry.get("n") == len(src.y):
            params = previous
        else:
            a0, b0 = map_prior(m, src.y)
            X, t = Xs, src.y - a0 * m - b0
            if len(t) > fit_cap:
                idx = np.random.default_rng(i).choice(len(t), size=fit_cap, replace=False)
                X, t = X[idx], t[idx]
            starts = [GPParams.default(d)] if previous is None else [previous, GPParams.default(d)]
            params = fit_params(X, t, starts=starts) or previous or GPParams.default(d)
        gp = GaussianProcess(Xs, src.y, params)
        a, b = map_prior(m, src.y, gp.solve)
        gp = gp.with_targets(src.y - a * m - b)
        levels.append(_Level(gp.posterior_mean(), a, b, src.known))
        states.append({**params.to_state(), "n": len(src.y)})
    if gp is None:
        raise ValueError("fit_prior needs at least one earlier study")
    return PriorStack(levels, gp), states


def first_residuals(prior: PriorStack, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The study's values minus the prior mapped by a first (a, b) estimate: what the residual
    GP's hyperparameters are fitted on."""
    m = prior.mean(X)
    a, b = map_prior(m, y)
    return y - a * m - b


class TransferGP:
    """The top level: mean `a mu_prior(x) + b + residual mean`; std the weighted geometric mean
    of the residual GP's and the prior's. Satisfies `Surrogate`, so the acquisition maximizer
    and GP-Hedge use it as they use a GP."""

    def __init__(
        self, prior: PriorStack, a: float, b: float, residual: GaussianProcess, n_pending: int = 0
    ) -> None:
        self.prior = prior
        self.a = a
        self.b = b
        self.residual = residual
        self.n_pending = n_pending

    @classmethod
    def fit(cls, prior: PriorStack, X: np.ndarray, y: np.ndarray, params: GPParams) -> TransferGP:
        """Maps the prior onto (X, y) under the residual kernel `params`; fits the residual."""
        m = prior.mean(X)
        gp = GaussianProcess(X, y, params)
        a, b = map_prior(m, y, gp.solve)
        return cls(prior, a, b, gp.with_targets(y - a * m - b))

    def _top_weight(self) -> float:
        """Vizier's weight w of the residual GP's std (1 - w goes to the prior's).

        dof(n) = max(n - h, n / (1 + h)) with h = d + 2 hyperparameters; beta^2 =
        dof_top / dof_prior * (1 + dof_prior + mismatch^2); w = beta^2 / (1 + beta^2). A
        prior whose slope was clipped to 0 is ignored: w = 1.
        """
        if self.a <= 0:
            return 1.0
        h = self.residual.X.shape[1] + 2
        n_top = len(self.residual.y) + self.n_pending
        dof_top = max(n_top - h, n_top / (1 + h))
        n_prior = self.prior.n_points
        dof_prior = max(n_prior - h, n_prior / (1 + h))
        beta2 = dof_top / dof_prior * (1.0 + dof_prior + STD_MISMATCH**2)
        return beta2 / (1.0 + beta2)

    def predict(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.residual.predict(Xq)
        w = self._top_weight()
        if w < 1.0:
            std = std**w * self.prior.top.predict(Xq)[1] ** (1.0 - w)
        return self.a * self.prior.mean(Xq) + self.b + mean, std

    def predict_with_grad(
        self, Xq: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        m, dm = self.prior.mean_with_grad(Xq)
        mean, std, dmean, dstd = self.residual.predict_with_grad(Xq)
        w = self._top_weight()
        if w < 1.0:
            _, p_std, _, p_dstd = self.prior.top.predict_with_grad(Xq)
            combined = std**w * p_std ** (1.0 - w)
            # d(s^w p^(1-w)) = s^w p^(1-w) (w ds / s + (1 - w) dp / p); both stds are >= 1e-6.
            dstd = combined[:, None] * (
                w * dstd / std[:, None] + (1.0 - w) * p_dstd / p_std[:, None]
            )
            std = combined
        return self.a * m + self.b + mean, std, self.a * dm + dmean, dstd

    def condition_on_pending(self, Xp: np.ndarray) -> TransferGP:
        return TransferGP(
            self.prior,
            self.a,
            self.b,
            self.residual.condition_on_pending(Xp),
            self.n_pending + len(Xp),
        )


def with_initial_prior(request: SuggestRequest, n_initial: int) -> SuggestRequest:
    """For strategies without a transfer model (tpe, skopt): during the first `n_initial`
    trials, the earlier studies' complete trials join the observations, values standardized
    per study and mapped onto the study's own mean and spread once it has two finite values.
    Later the study's own data rule, so a shifted optimum is not blurred by them."""
    if not request.prior or len(request.observations) + len(request.pending) >= n_initial:
        return request
    own = [
        float(o.value)  # type: ignore[arg-type]
        for o in request.observations
        if o.is_finite and o.state != TrialState.FAILED
    ]
    target = (statistics.fmean(own), statistics.pstdev(own) or 1.0) if len(own) >= 2 else None
    extra: list[Observation] = []
    for observations in request.prior:
        kept = [o for o in observations if _usable(o, request.space)]
        if not kept:
            continue
        values = [float(o.value) for o in kept]  # type: ignore[arg-type]
        mean, std = statistics.fmean(values), statistics.pstdev(values) or 1.0
        for o, value in zip(kept, values, strict=True):
            if target is not None:
                value = target[0] + (value - mean) / std * target[1]
            extra.append(Observation(params=o.params, value=value, state=TrialState.COMPLETE))
    return replace(request, observations=[*extra, *request.observations])
