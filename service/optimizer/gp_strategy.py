"""The `gp` strategy: seed -> data -> fit -> maximize the acquisition, once per suggestion.

Rules:
- Initial design: the first `n_initial` trials (default `default_n_initial`: twice the number
  of searchable parameters, clipped to [5, 10]) come from scrambled Sobol, as do all
  suggestions while no trial has a finite value. Enqueued trials count toward it.
- Data: observations in the maximization convention; failed/NaN values are imputed as bad
  (`OutputWarp`); pruned trials count with their last reported value (they were stopped
  because that value looked bad, and it keeps the search away from that region; a pruned
  trial with no value is treated as failed).
- Fit: MAP hyperparameters (`gp.fit_params`) from the previous fit (kept in `state`) and the
  prior mode. A full refit happens every call up to `always_refit_below` observations, then
  every `n // refit_divisor` new observations; in between the stored hyperparameters are
  reused. Past `fit_cap` (200) observations the refit uses a seeded random subset of that
  size (a full refit on 200 points measured ~0.07 s of CPU at d = 6, ~0.2 s at n = 1,000,
  d = 20 with the cap); past `predict_cap` (2,000) the model keeps the best quarter plus a
  random rest. When every fit fails, the previous (or prior-mode) parameters are used and a
  warning is returned; when the GP step itself fails, the call falls back to random search
  with a warning.
- Pending trials and `count` > 1: every pending or already chosen point conditions the GP's
  variance with its mean unchanged (kriging believer == GP-BUCB); for EI/PI the incumbent
  also rises to the believed values.
- Warm start (`request.prior` holds earlier studies with usable trials): the model is the
  transfer model of `transfer.py` for the whole study, a residual GP over the earlier
  studies' prior mean. No Sobol design: the prior has located the good region, so every
  suggestion is model-based (the best earlier configurations are enqueued first by the
  scheduler). The rank warp of the study's own values waits for `2 * n_initial` of them:
  the first trials cluster around the prior's optimum, and warping their tiny differences
  into the whole output range made the residual GP read them as noise. The maximizer's local
  candidates also perturb the earlier studies' best points; before the first own value the
  incumbent is the prior's best prediction. The earlier levels' hyperparameters live in
  `state["prior_gp"]`.
- `auto`: GP-Hedge (Hoffman et al., 2011) over UCB, PI and EI. Each arm nominates a point
  (the chosen arm after L-BFGS-B, the others from the shared candidate pool); the choice is a
  softmax over gains (rate `hedge_eta` = 0.1: skopt's 1.0 locks onto the greediest arm
  within a few steps and lost on our benchmark), and on the next call each nominee's
  posterior mean (standardized) is added to its arm's gain. Gains and nominees live in
  `state`, so nothing is lost on restart.
- Never re-suggests an observed, pending or already chosen configuration unless the space is
  exhausted.

`Suggestion.info`: source, acquisition, acquisition_value (EI / PI / UCB in standardized
units), mean and std in the objective's own units and direction.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from service.optimizer.acquisition import Acquisition
from service.optimizer.base import (
    AcquisitionName,
    Suggestion,
    SuggestRequest,
    SuggestResult,
)
from service.optimizer.gp import GaussianProcess, GPParams, Surrogate, fit_params
from service.optimizer.maximize import CandidatePool, build_pool, maximize
from service.optimizer.sampling import (
    RandomStrategy,
    SobolStrategy,
    seen_keys,
)
from service.optimizer.transfer import PriorStack, Source, TransferGP, first_residuals, fit_prior
from service.optimizer.transfer import sources as prior_sources
from service.optimizer.warping import OutputWarp
from service.space import SearchSpace

logger = logging.getLogger(__name__)

ARMS = (AcquisitionName.UCB, AcquisitionName.PI, AcquisitionName.EI)
_MAX_NOMINEES = 64


def default_n_initial(space: SearchSpace) -> int:
    searchable = sum(1 for _ in space.columns)
    return min(10, max(5, 2 * searchable))


@dataclass(frozen=True)
class _Data:
    X: np.ndarray
    y: np.ndarray
    warp: OutputWarp


class GPStrategy:
    def __init__(
        self,
        *,
        n_candidates: int = 1024,
        n_starts: int = 5,
        always_refit_below: int = 64,
        refit_divisor: int = 16,
        fit_cap: int = 200,
        predict_cap: int = 2000,
        prior_cap: int = 500,
        hedge_eta: float = 0.1,
    ) -> None:
        self.n_candidates = n_candidates
        self.n_starts = n_starts
        self.always_refit_below = always_refit_below
        self.refit_divisor = refit_divisor
        self.fit_cap = fit_cap
        self.predict_cap = predict_cap
        self.prior_cap = prior_cap
        self.hedge_eta = hedge_eta

    def suggest(self, request: SuggestRequest) -> SuggestResult:
        space = request.space
        n_initial = request.spec.n_initial or default_n_initial(space)
        n_trials = len(request.observations) + len(request.pending)
        has_value = any(_value(o) is not None for o in request.observations)
        earlier = prior_sources(request, cap=self.prior_cap)
        if earlier:
            # The prior has located the good region: no space-filling design.
            n_sobol = 0
        elif has_value:
            n_sobol = min(request.count, max(0, n_initial - n_trials))
        else:
            n_sobol = request.count
        state: dict[str, Any] = dict(request.state)
        out: list[Suggestion] = []
        warnings: list[str] = []
        if n_sobol:
            sobol = SobolStrategy().suggest(replace(request, count=n_sobol))
            state.update(sobol.state)
            out += sobol.suggestions
        if n_sobol < request.count:
            pending = [*request.pending, *(s.params for s in out)]
            rest = replace(request, count=request.count - n_sobol, pending=pending)
            try:
                result = self._suggest_gp(rest, state, earlier, n_initial)
            except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
                logger.warning("GP suggestion failed, using random search: %s", exc)
                result = RandomStrategy().suggest(rest)
                result = replace(result, warnings=[f"GP step failed ({exc}); used random"])
            state.update(result.state)
            out += result.suggestions
            warnings += result.warnings
        return SuggestResult(out, state=state, warnings=warnings)

    # ---- the GP step ------------------------------------------------------------------------

    def _suggest_gp(
        self,
        request: SuggestRequest,
        state: Mapping[str, Any],
        earlier: list[Source],
        n_initial: int,
    ) -> SuggestResult:
        space, spec = request.space, request.spec
        rng = np.random.default_rng(request.seed)
        n_obs = len(request.observations)
        # A warm study's first trials cluster around the prior's optimum by design; the rank
        # warp would take their tiny differences for the whole range of the objective (the
        # residual GP then calls them noise), so it waits for twice a cold design's values.
        rank_warp = spec.output_warping and (not earlier or n_obs >= 2 * n_initial)
        data = self._data(request, rng, rank_warp=rank_warp)
        new_state: dict[str, Any] = {}
        gp: Surrogate
        if earlier:
            prior, new_state["prior_gp"] = fit_prior(
                earlier, state.get("prior_gp"), fit_cap=self.fit_cap
            )
            gp, fit_state, warnings = self._transfer(data, prior, state, rng, n_obs)
            prior_top = np.vstack([s.top for s in earlier])
        else:
            params, fit_state, warnings = self._params(data, state, rng, n_obs)
            gp = GaussianProcess(data.X, data.y, params)
            prior_top = np.zeros((0, space.dim))
        pending_X = (
            space.encode_many(request.pending) if request.pending else np.zeros((0, space.dim))
        )
        gp_var = gp.condition_on_pending(pending_X)
        # Before the study's first value (warm start), the bar is the prior's best prediction.
        best = float(data.y.max()) if len(data.y) else float(gp.predict(prior_top)[0].max())
        if len(pending_X):
            best = max(best, float(gp.predict(pending_X)[0].max()))

        hedge = _Hedge.from_state(state.get("hedge"), space.dim)
        auto = spec.acquisition == AcquisitionName.AUTO
        if auto:
            hedge.update_gains(gp)
        top = np.argsort(-data.y)[: min(5, len(data.y))]
        incumbents = np.vstack([data.X[top], prior_top])
        seen = seen_keys(request)
        # Scoring m candidates costs O(m n^2): past n ~ 200 the pool shrinks (to 256 at least).
        n_candidates = int(np.clip(2e5 / max(len(data.y), 1), 256, self.n_candidates))
        n_candidates = 1 << (n_candidates.bit_length() - 1)
        suggestions: list[Suggestion] = []
        for _ in range(request.count):
            pool = build_pool(
                space, gp_var, incumbents=incumbents, rng=rng, n_candidates=n_candidates
            )
            name = hedge.choose(rng, self.hedge_eta) if auto else spec.acquisition
            acq = Acquisition(AcquisitionName(name), beta=spec.beta, xi=spec.xi, best=best)
            pick = maximize(space, gp_var, acq, pool, seen=seen, n_starts=self.n_starts)
            if pick is None:
                chosen = [*request.pending, *(s.params for s in suggestions)]
                filler = RandomStrategy().suggest(
                    replace(request, count=1, pending=chosen, seed=request.seed + len(chosen))
                )
                suggestions += filler.suggestions
                continue
            if auto:
                hedge.nominate(acq, pick.x, pool, spec.beta, spec.xi)
            suggestions.append(Suggestion(pick.config, _info(acq, pick, data.warp, request, hedge)))
            seen.add(space.key(pick.config))
            if len(suggestions) < request.count:
                gp_var = gp_var.condition_on_pending(pick.x[None, :])
                best = max(best, pick.mean)
        new_state["gp"] = fit_state
        if auto:
            new_state["hedge"] = hedge.to_state()
        return SuggestResult(suggestions, state=new_state, warnings=warnings)

    def _data(self, request: SuggestRequest, rng: np.random.Generator, *, rank_warp: bool) -> _Data:
        space = request.space
        sign = 1.0 if request.direction == "maximize" else -1.0
        obs = list(request.observations)
        values = np.array([sign * v if (v := _value(o)) is not None else np.nan for o in obs])
        X = space.encode_many(o.params for o in obs)
        warp = OutputWarp.fit(values, rank_warp=rank_warp)
        y = warp.y
        if len(y) > self.predict_cap:
            keep_best = np.argsort(-y)[: self.predict_cap // 4]
            rest = np.setdiff1d(np.arange(len(y)), keep_best)
            extra = rng.choice(rest, size=self.predict_cap - len(keep_best), replace=False)
            idx = np.concatenate([keep_best, extra])
            X, y = X[idx], y[idx]
        return _Data(X, y, warp)

    def _transfer(
        self,
        data: _Data,
        prior: PriorStack,
        state: Mapping[str, Any],
        rng: np.random.Generator,
        n_obs: int,
    ) -> tuple[TransferGP, dict[str, Any], list[str]]:
        """The warm-start model: the study's values as a residual over the earlier studies'.

        The residual GP's hyperparameters follow the same refit schedule as a cold study's
        GP (on the residuals), with the lengthscale prior centred on the earlier study's;
        before the study's first value there is nothing to fit and they stay at that centre.
        """
        centre = prior.lengthscale_centre()
        if not len(data.y):
            params = replace(GPParams.default(data.X.shape[1]), log_lengthscales=centre)
            return TransferGP.fit(prior, data.X, data.y, params), {}, []
        residuals = replace(data, y=first_residuals(prior, data.X, data.y))
        params, fit_state, warnings = self._params(residuals, state, rng, n_obs, centre)
        return TransferGP.fit(prior, data.X, data.y, params), fit_state, warnings

    def _params(
        self,
        data: _Data,
        state: Mapping[str, Any],
        rng: np.random.Generator,
        n_obs: int,
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
        interval = 1 if n_obs < self.always_refit_below else max(1, n_obs // self.refit_divisor)
        if previous is not None and n_obs - fitted_at < interval:
            return previous, dict(stored or {}), []
        X, y = data.X, data.y
        if len(y) > self.fit_cap:
            idx = rng.choice(len(y), size=self.fit_cap, replace=False)
            X, y = X[idx], y[idx]
        starts = [mode] if previous is None else [previous, mode]
        fitted = fit_params(X, y, starts=starts, lengthscale_centre=lengthscale_centre)
        warnings: list[str] = []
        if fitted is None:
            fitted = previous or mode
            warnings.append("GP hyperparameter fit failed; reused the previous/default kernel")
            logger.warning("GP hyperparameter fit failed on %d points", len(y))
        return fitted, {**fitted.to_state(), "n_fit": n_obs}, warnings


def _value(o: Any) -> float | None:
    v = o.value
    if v is None or not math.isfinite(v):
        return None
    if o.state == "failed":
        return None
    return float(v)


def _info(
    acq: Acquisition, pick: Any, warp: OutputWarp, request: SuggestRequest, hedge: _Hedge
) -> dict[str, Any]:
    mean, std = warp.to_original(np.array([pick.mean]), np.array([pick.std]))
    sign = 1.0 if request.direction == "maximize" else -1.0
    value = acq.value(np.array([pick.mean]), np.array([pick.std]))
    info: dict[str, Any] = {
        "source": "gp",
        "acquisition": acq.name.value,
        "acquisition_value": _finite(value[0]),
        "mean": _finite(sign * mean[0]),
        "std": _finite(std[0]),
    }
    if request.spec.acquisition == AcquisitionName.AUTO:
        info["portfolio"] = "auto"
        info["hedge_gains"] = {k: _finite(v) for k, v in hedge.gains.items()}
    return info


def _finite(v: Any) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None


class _Hedge:
    """GP-Hedge gains and the last nominees, round-tripped through the study state."""

    def __init__(self, gains: dict[str, float], nominees: list[dict[str, Any]], dim: int) -> None:
        self.gains = gains
        self.nominees = nominees
        self.dim = dim

    @classmethod
    def from_state(cls, raw: Any, dim: int) -> _Hedge:
        gains = {a.value: 0.0 for a in ARMS}
        nominees: list[dict[str, Any]] = []
        if isinstance(raw, Mapping):
            for k, v in (raw.get("gains") or {}).items():
                if k in gains and isinstance(v, int | float) and math.isfinite(v):
                    gains[k] = float(v)
            for n in raw.get("nominees") or []:
                if (
                    isinstance(n, Mapping)
                    and n.get("arm") in gains
                    and isinstance(n.get("x"), list)
                    and len(n["x"]) == dim
                ):
                    nominees.append({"arm": n["arm"], "x": [float(v) for v in n["x"]]})
        return cls(gains, nominees, dim)

    def update_gains(self, gp: Surrogate) -> None:
        if not self.nominees:
            return
        X = np.array([n["x"] for n in self.nominees])
        mean, _ = gp.predict(X)
        for n, m in zip(self.nominees, mean, strict=True):
            self.gains[n["arm"]] += float(m)
        self.nominees = []

    def choose(self, rng: np.random.Generator, eta: float) -> str:
        g = np.array([self.gains[a.value] for a in ARMS])
        p = np.exp(eta * (g - g.max()))
        p /= p.sum()
        return ARMS[int(rng.choice(len(ARMS), p=p))].value

    def nominate(
        self, chosen: Acquisition, x: np.ndarray, pool: CandidatePool, beta: float, xi: float
    ) -> None:
        for arm in ARMS:
            if arm == chosen.name:
                point = x
            else:
                other = Acquisition(arm, beta=beta, xi=xi, best=chosen.best)
                score, _, _ = other.value_and_grad(pool.mean, pool.std)
                point = pool.X[int(np.argmax(score))]
            self.nominees.append({"arm": arm.value, "x": [float(v) for v in point]})
        self.nominees = self.nominees[-_MAX_NOMINEES:]

    def to_state(self) -> dict[str, Any]:
        return {"gains": dict(self.gains), "nominees": self.nominees}
