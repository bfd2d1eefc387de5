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
  also rises to the believed values. PI and UCB are also multiplied by a hard local
  penalizer around each such point (acquisition.py says why: PI collapsed a batch onto one x).
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
- Noisy objectives (fitted noise variance above `acquisition.NOISY`): the incumbent is the
  best posterior mean at an observation (model.py), and EI and PI carry the augmented-EI
  factor (acquisition.py); on a deterministic objective both are as before.
- Constraints and infeasible failures (feasibility.py): the acquisition is weighted by the
  modelled probability of feasibility, and the incumbent is the best feasible value (raised
  by pending points' believed values, but not by infeasible configurations').
- Two or three objectives (`request.directions`) without earlier studies: after the same
  Sobol design, one GP per objective and log expected hypervolume improvement
  (service/optimizer/mo_gp.py). With earlier studies, the ObjectiveAdapter scalarizes
  (ParEGO) and the step above models the scalarization with the transfer model.
- Never re-suggests an observed, pending or already chosen configuration unless the space is
  exhausted.
- Bounded work: a space that encodes to more than `max_columns` (512) columns (categorical
  choices are one column each) is searched at random, with a warning (a fit over thousands of
  lengthscales took minutes); the candidate pool shrinks with the number of observations
  and of columns; past `time_budget_s` (20 s) the rest of a batch is random, with a warning.

`Suggestion.info`: source, acquisition, acquisition_value (EI / PI / UCB in standardized
units), mean and std in the objective's own units and direction.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from service.optimizer.acquisition import Acquisition, LocalPenalty
from service.optimizer.base import (
    Suggestion,
    SuggestionInfo,
    SuggestRequest,
    SuggestResult,
)
from service.optimizer.feasibility import feasible_incumbent, fit_feasibility
from service.optimizer.gp import Surrogate
from service.optimizer.maximize import CandidatePool, build_pool, lipschitz, maximize
from service.optimizer.mo_gp import suggest_ehvi
from service.optimizer.model import (
    ModelSettings,
    StudyModel,
    build_model,
    default_n_initial,
    earlier_studies,
    observed_value,
)
from service.optimizer.sampling import (
    RandomStrategy,
    SobolStrategy,
    out_of_time,
    random_fill,
    seen_keys,
)
from service.optimizer.warping import OutputWarp
from service.specs import AcquisitionName

logger = logging.getLogger(__name__)

ARMS = (AcquisitionName.UCB, AcquisitionName.PI, AcquisitionName.EI)
_MAX_NOMINEES = 64


class GPStrategy:
    several_objectives = True
    """Models two or three objectives itself (service/optimizer/mo_gp.py), no warm start."""

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
        max_columns: int = 512,
        time_budget_s: float = 20.0,
    ) -> None:
        self.max_columns = max_columns
        self.time_budget_s = time_budget_s
        self.n_candidates = n_candidates
        self.n_starts = n_starts
        self.model_settings = ModelSettings(
            always_refit_below=always_refit_below,
            refit_divisor=refit_divisor,
            fit_cap=fit_cap,
            predict_cap=predict_cap,
            prior_cap=prior_cap,
        )
        self.hedge_eta = hedge_eta

    def suggest(self, request: SuggestRequest) -> SuggestResult:
        space = request.space
        n_initial = request.spec.n_initial or default_n_initial(space)
        n_trials = len(request.observations) + len(request.pending)
        has_value = any(observed_value(o) is not None for o in request.observations)
        earlier = earlier_studies(request, self.model_settings)
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
            rng = np.random.default_rng(rest.seed)
            if space.dim > self.max_columns:
                result = RandomStrategy().suggest(rest)
                warning = (
                    f"the space encodes to {space.dim} columns (each categorical choice is "
                    f"one); the GP models at most {self.max_columns}: suggestions are random"
                )
                return SuggestResult(
                    out + result.suggestions, state=state, warnings=[*warnings, warning]
                )
            try:
                if len(rest.directions) >= 2 and not earlier:
                    result = suggest_ehvi(
                        rest,
                        state,
                        rng,
                        settings=self.model_settings,
                        n_candidates=self.n_candidates,
                        n_starts=self.n_starts,
                        time_budget_s=self.time_budget_s,
                    )
                else:
                    model = build_model(
                        rest, state, rng, settings=self.model_settings, earlier=earlier
                    )
                    result = self._suggest_gp(rest, state, model, rng)
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
        model: StudyModel,
        rng: np.random.Generator,
    ) -> SuggestResult:
        space, spec = request.space, request.spec
        deadline = time.monotonic() + self.time_budget_s
        gp_var, best = model.with_pending, feasible_incumbent(model, request)
        noise = math.exp(model.params.log_noise)
        feasibility = fit_feasibility(request)
        hedge = _Hedge.from_state(state.get("hedge"), space.dim)
        auto = spec.acquisition == AcquisitionName.AUTO
        if auto:
            hedge.update_gains(model.surrogate)
        y = model.data.y
        top = np.argsort(-model.fitted)[: min(5, len(y))]
        incumbents = np.vstack([model.data.X[top], model.prior_top])
        seen = seen_keys(request)
        # Scoring m candidates costs O(m n (n + d)): past n ~ 200, or with many columns, the
        # pool shrinks (to 64 at least).
        n, d = max(len(y), 1), space.dim
        n_candidates = int(np.clip(min(2e5 / n, 2e7 / (n * d)), 64, self.n_candidates))
        n_candidates = 1 << (n_candidates.bit_length() - 1)
        suggestions: list[Suggestion] = []
        warnings = list(model.warnings)
        centers = [space.encode_many(request.pending)] if request.pending else []
        slope: float | None = None
        for _ in range(request.count):
            if time.monotonic() > deadline:
                left = request.count - len(suggestions)
                suggestions += random_fill(request, suggestions, left)
                warnings.append(out_of_time(self.time_budget_s, left, request.count))
                break
            pool = build_pool(
                space, gp_var, incumbents=incumbents, rng=rng, n_candidates=n_candidates
            )
            name = hedge.choose(rng, self.hedge_eta) if auto else spec.acquisition
            acq = Acquisition(
                AcquisitionName(name), beta=spec.beta, xi=spec.xi, best=best, noise=noise
            )
            penalty = None
            if acq.penalized and centers:
                if slope is None:
                    slope = lipschitz(model.surrogate, pool.X[:256])
                Xc = np.vstack(centers)
                c_mean, c_std = model.surrogate.predict(Xc)
                penalty = LocalPenalty.around(Xc, c_mean, c_std, best=best, lipschitz=slope)
            pick = maximize(
                space, gp_var, acq, pool, seen=seen, n_starts=self.n_starts, penalty=penalty,
                weight=feasibility,
            )
            if pick is None:
                suggestions += random_fill(request, suggestions, 1)
                continue
            if auto:
                hedge.nominate(acq, pick.x, pool, spec.beta, spec.xi)
            info = _info(acq, pick, model.data.warp, request, hedge)
            suggestions.append(Suggestion(pick.config, info))
            seen.add(space.key(pick.config))
            centers.append(pick.x[None, :])
            if len(suggestions) < request.count:
                gp_var = gp_var.condition_on_pending(pick.x[None, :])
                best = max(best, pick.mean)
        new_state = dict(model.state)
        if auto:
            new_state["hedge"] = hedge.to_state()
        return SuggestResult(suggestions, state=new_state, warnings=warnings)


def _info(
    acq: Acquisition, pick: Any, warp: OutputWarp, request: SuggestRequest, hedge: _Hedge
) -> SuggestionInfo:
    mean, std = warp.to_original(np.array([pick.mean]), np.array([pick.std]))
    value = acq.value(np.array([pick.mean]), np.array([pick.std]))
    auto = request.spec.acquisition == AcquisitionName.AUTO
    return SuggestionInfo(
        source="gp",
        acquisition=acq.name.value,
        acquisition_value=_finite(value[0]),
        mean=_finite(request.direction.sign * mean[0]),
        std=_finite(std[0]),
        portfolio="auto" if auto else None,
        hedge_gains={k: _finite(v) for k, v in hedge.gains.items()} if auto else None,
    )


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
                other = Acquisition(arm, beta=beta, xi=xi, best=chosen.best, noise=chosen.noise)
                score, _, _ = other.value_and_grad(pool.mean, pool.std)
                point = pool.X[int(np.argmax(score))]
            self.nominees.append({"arm": arm.value, "x": [float(v) for v in point]})
        self.nominees = self.nominees[-_MAX_NOMINEES:]

    def to_state(self) -> dict[str, Any]:
        return {"gains": dict(self.gains), "nominees": self.nominees}
