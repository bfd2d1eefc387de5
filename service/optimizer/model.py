"""The one model builder: the surrogate a GP suggestion is chosen with, and the one the
dashboard's GP view shows (service/insight.py), so the view is exactly the model that chose
the trials, warm-start prior included.

Recipe (rules in gp_strategy's docstring): observations in the maximization convention
through the robust output warp (rank warp off for a warm study's first `2 * n_initial`
values) -> subsample past `predict_cap` -> hyperparameters per the refit schedule (previous
fit kept in the strategy state) -> a plain GP, or with earlier studies (`request.prior`) the
transfer model over their prior stack -> conditioned on the pending points for the variance.

Shapes: X (n, d) encoded configurations, y (n,) warped values (higher is better).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from service.domain import TrialState
from service.optimizer.acquisition import NOISY
from service.optimizer.base import Observation, SuggestRequest
from service.optimizer.gp import GaussianProcess, GPParams, Surrogate, fit_params
from service.optimizer.transfer import PriorStack, Source, TransferGP, first_residuals, fit_prior
from service.optimizer.transfer import sources as prior_sources
from service.optimizer.warping import OutputWarp
from service.space import SearchSpace

logger = logging.getLogger(__name__)


def default_n_initial(space: SearchSpace) -> int:
    searchable = sum(1 for _ in space.columns)
    return min(10, max(5, 2 * searchable))


@dataclass(frozen=True)
class ModelSettings:
    """Caps and the refit schedule (see gp_strategy's rules)."""

    always_refit_below: int = 64
    refit_divisor: int = 16
    fit_cap: int = 200
    predict_cap: int = 2000
    prior_cap: int = 500


DEFAULT_SETTINGS = ModelSettings()


def earlier_studies(
    request: SuggestRequest, settings: ModelSettings = DEFAULT_SETTINGS
) -> list[Source]:
    """The earlier studies (warm start) that can inform the model, oldest first."""
    return prior_sources(request, cap=settings.prior_cap)


@dataclass(frozen=True)
class ModelData:
    """The observations the model is conditioned on: `rows` are their indices in
    `request.observations` (all of them, unless subsampled past `predict_cap`)."""

    X: np.ndarray
    y: np.ndarray
    warp: OutputWarp
    rows: np.ndarray


@dataclass(frozen=True)
class StudyModel:
    """A fitted model of one study.

    `surrogate` predicts without pending points; `with_pending` has its variance reduced by
    them (kriging believer). `fitted` holds the values the incumbent is chosen from, one per
    observation (`data.X`): on a noisy objective (fitted noise variance above
    `acquisition.NOISY`) the posterior mean there, since an observed value is then a draw
    around the mean and the luckiest draw would set a bar nothing can clear; otherwise the
    observed values (on a deterministic objective the fitted noise is the output warp's
    roughness, and smoothing it lowered the bar enough to lose Branin and Hartmann-6's
    global optimum). `best` is the incumbent in model units, the largest of them, raised to
    the pending points' predicted means (or, before the study's first value, the prior's
    best prediction).
    `prior_top` holds the earlier studies' best points (encoded). `params`: the kernel's
    hyperparameters (of the residual GP with a prior). `state` is what the strategy stores for
    the next call (the fit, the earlier levels' fits).
    """

    data: ModelData
    surrogate: Surrogate
    with_pending: Surrogate
    fitted: np.ndarray
    best: float
    prior_top: np.ndarray
    params: GPParams
    state: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def observed_value(o: Observation) -> float | None:
    """The value the model sees: None for failed trials and non-finite values (imputed as bad
    by the output warp); pruned trials count with their last value."""
    v = o.value
    if v is None or not math.isfinite(v) or o.state == TrialState.FAILED:
        return None
    return float(v)


def build_model(
    request: SuggestRequest,
    state: Mapping[str, Any],
    rng: np.random.Generator,
    *,
    settings: ModelSettings = DEFAULT_SETTINGS,
    earlier: Sequence[Source] | None = None,
) -> StudyModel:
    """The study's model for `request` (its observations, pending points and prior), reusing
    the fit stored in `state` per the refit schedule. `earlier`: `earlier_studies(request)`
    when the caller has computed it already. Raises numpy's LinAlgError or ValueError when
    the data cannot be modelled (the strategy falls back to random)."""
    space, spec = request.space, request.spec
    n_obs = len(request.observations)
    n_initial = spec.n_initial or default_n_initial(space)
    if earlier is None:
        earlier = earlier_studies(request, settings)
    # A warm study's first trials cluster around the prior's optimum by design; the rank
    # warp would take their tiny differences for the whole range of the objective (the
    # residual GP then calls them noise), so it waits for twice a cold design's values.
    rank_warp = spec.output_warping and (not earlier or n_obs >= 2 * n_initial)
    data = _data(request, rng, rank_warp=rank_warp, cap=settings.predict_cap)
    new_state: dict[str, Any] = {}
    surrogate: Surrogate
    if earlier:
        prior, new_state["prior_gp"] = fit_prior(
            earlier, state.get("prior_gp"), fit_cap=settings.fit_cap
        )
        surrogate, fit_state, warnings = _transfer(data, prior, state, rng, n_obs, settings)
        params = surrogate.residual.params
        prior_top = np.vstack([src.top for src in earlier])
    else:
        params, fit_state, warnings = _params(data, state, rng, n_obs, settings)
        surrogate = GaussianProcess(data.X, data.y, params)
        prior_top = np.zeros((0, space.dim))
    new_state["gp"] = fit_state
    pending_X = space.encode_many(request.pending) if request.pending else np.zeros((0, space.dim))
    with_pending = surrogate.condition_on_pending(pending_X)
    noisy = math.exp(params.log_noise) > NOISY
    fitted = surrogate.predict(data.X)[0] if noisy and len(data.y) else data.y
    best = float(fitted.max()) if len(data.y) else float(surrogate.predict(prior_top)[0].max())
    if len(pending_X):
        best = max(best, float(surrogate.predict(pending_X)[0].max()))
    return StudyModel(
        data, surrogate, with_pending, fitted, best, prior_top, params, new_state, warnings
    )


def _data(
    request: SuggestRequest, rng: np.random.Generator, *, rank_warp: bool, cap: int
) -> ModelData:
    space = request.space
    sign = request.direction.sign
    obs = list(request.observations)
    values = np.array([sign * v if (v := observed_value(o)) is not None else np.nan for o in obs])
    X = space.encode_many(o.params for o in obs)
    warp = OutputWarp.fit(values, rank_warp=rank_warp)
    y = warp.y
    rows = np.arange(len(y))
    if len(y) > cap:
        keep_best = np.argsort(-y)[: cap // 4]
        rest = np.setdiff1d(rows, keep_best)
        extra = rng.choice(rest, size=cap - len(keep_best), replace=False)
        rows = np.concatenate([keep_best, extra])
        X, y = X[rows], y[rows]
    return ModelData(X, y, warp, rows)


def _transfer(
    data: ModelData,
    prior: PriorStack,
    state: Mapping[str, Any],
    rng: np.random.Generator,
    n_obs: int,
    settings: ModelSettings,
) -> tuple[TransferGP, dict[str, Any], list[str]]:
    """The warm-start model: the study's values as a residual over the earlier studies'.

    The residual GP's hyperparameters follow the same refit schedule as a cold study's GP
    (on the residuals), with the lengthscale prior centred on the earlier study's; before the
    study's first value there is nothing to fit and they stay at that centre.
    """
    centre = prior.lengthscale_centre()
    if not len(data.y):
        params = replace(GPParams.default(data.X.shape[1]), log_lengthscales=centre)
        return TransferGP.fit(prior, data.X, data.y, params), {}, []
    residuals = replace(data, y=first_residuals(prior, data.X, data.y))
    params, fit_state, warnings = _params(residuals, state, rng, n_obs, settings, centre)
    return TransferGP.fit(prior, data.X, data.y, params), fit_state, warnings


def _params(
    data: ModelData,
    state: Mapping[str, Any],
    rng: np.random.Generator,
    n_obs: int,
    settings: ModelSettings,
    lengthscale_centre: Sequence[float] | None = None,
) -> tuple[GPParams, dict[str, Any], list[str]]:
    """Hyperparameters per the refit schedule. `lengthscale_centre` (warm start) moves the
    lengthscale prior, and the start that is otherwise the prior mode."""
    d = data.X.shape[1]
    mode = GPParams.default(d)
    if lengthscale_centre is not None:
        mode = replace(mode, log_lengthscales=tuple(lengthscale_centre))
    stored = state.get("gp") if isinstance(state.get("gp"), Mapping) else None
    previous = GPParams.from_state(stored, d) if stored else None
    fitted_at = int(stored.get("n_fit", 0)) if stored else 0
    interval = 1 if n_obs < settings.always_refit_below else max(1, n_obs // settings.refit_divisor)
    if previous is not None and n_obs - fitted_at < interval:
        return previous, dict(stored or {}), []
    X, y = data.X, data.y
    if len(y) > settings.fit_cap:
        idx = rng.choice(len(y), size=settings.fit_cap, replace=False)
        X, y = X[idx], y[idx]
    starts = [mode] if previous is None else [previous, mode]
    fitted = fit_params(X, y, starts=starts, lengthscale_centre=lengthscale_centre)
    warnings: list[str] = []
    if fitted is None:
        fitted = previous or mode
        warnings.append("GP hyperparameter fit failed; reused the previous/default kernel")
        logger.warning("GP hyperparameter fit failed on %d points", len(y))
    return fitted, {**fitted.to_state(), "n_fit": n_obs}, warnings
