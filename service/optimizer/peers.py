"""Peer strategies behind the same seam: Optuna's TPE and scikit-optimize's GP `Optimizer`.

Both are stateless: each call rebuilds the peer's optimizer from the observations and the
pending trials, seeded by `request.seed`, and asks it for `request.count` points. Optuna and
scikit-optimize are optional (dev/bench extras) and imported lazily; `peer_available` says
which one is missing. Peer outputs (numpy scalars, label indices) are converted to plain
Python values and validated against the space. A peer suggestion that repeats a seen
configuration is replaced by a uniformly random unseen one.

Value mapping: failed trials are FAIL for Optuna (it ignores them) and the worst value for
skopt (it cannot); pruned trials are PRUNED with their last value at their last step for
Optuna, and complete with that value for skopt. Warm start: neither peer has a transfer
model, so earlier studies' trials join the observations during the first `n_initial` trials
only, mapped onto the study's scale (`transfer.with_initial_prior`).

Steps and conditions: Optuna gets stepped distributions and asks define-by-run, one parameter
at a time in the space's parent-first order, only while its condition holds (each trial's
distributions are its active parameters). scikit-optimize has neither: a stepped parameter
is an Integer over its grid index, and it searches every column, inactive ones included,
told the parameter's lowest value where a trial left it out; its answer is validated, which
drops what is inactive.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from service.domain import TrialState
from service.optimizer.base import Suggestion, SuggestionInfo, SuggestRequest, SuggestResult
from service.optimizer.model import default_n_initial
from service.optimizer.sampling import RandomStrategy, seen_keys
from service.optimizer.transfer import with_initial_prior
from service.params import CategoricalParam, FixedParam, FloatParam, IntParam
from service.space import SearchSpace
from service.specs import AcquisitionName


def peer_available(module: str) -> str | None:
    """None when `module` can be imported, else the warning for the fallback."""
    if importlib.util.find_spec(module) is not None:
        return None
    extra = "optuna" if module == "optuna" else "scikit-optimize"
    return f"{extra} is not installed (pip install tunesmith[dev]); using 'gp' instead"


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _dedupe(request: SuggestRequest, configs: list[dict[str, Any]], source: str) -> SuggestResult:
    space = request.space
    seen = seen_keys(request)
    out: list[Suggestion] = []
    for i, raw in enumerate(configs):
        config = space.validate({k: _plain(v) for k, v in raw.items()})
        if space.key(config) in seen:
            pending = [*request.pending, *(s.params for s in out)]
            fill = RandomStrategy().suggest(
                replace(request, count=1, pending=pending, seed=request.seed + 1 + i)
            )
            out += [Suggestion(s.params, s.info) for s in fill.suggestions]
        else:
            out.append(Suggestion(config, SuggestionInfo(source)))
        seen.add(space.key(out[-1].params))
    return SuggestResult(out)


def optuna_distributions(space: SearchSpace) -> dict[str, Any]:
    """Optuna's distribution for each searchable parameter (fixed ones have none)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dists: dict[str, Any] = {}
    for name, p in space.params.items():
        if isinstance(p, FloatParam):
            dists[name] = FloatDistribution(p.low, p.high, log=p.log, step=p.step)
        elif isinstance(p, IntParam):
            dists[name] = IntDistribution(p.low, p.high, log=p.log, step=p.step)
        elif isinstance(p, CategoricalParam):
            dists[name] = CategoricalDistribution(p.choices)
    return dists


class TPEStrategy:
    """Optuna's TPESampler, constant liar on: pending trials are running trials it avoids."""

    def suggest(self, request: SuggestRequest) -> SuggestResult:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        request = _with_prior(request)
        space = request.space
        dists = optuna_distributions(space)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna_study(request, dists)
            configs = [_ask_by_run(study, space, dists) for _ in range(request.count)]
        return _dedupe(request, configs, "tpe")


def optuna_study(request: SuggestRequest, dists: dict[str, Any]) -> Any:
    """An in-memory Optuna study with a seeded TPESampler that holds the request's history:
    complete trials with their value, pruned ones with their last value at their last step,
    failed or non-finite ones as FAIL (TPE ignores them), and each pending configuration
    asked and left running (the constant liar's input)."""
    import optuna
    from optuna.trial import TrialState as OptunaState
    from optuna.trial import create_trial

    sampler = optuna.samplers.TPESampler(
        seed=request.seed, n_startup_trials=request.spec.n_initial or 10, constant_liar=True
    )
    study = optuna.create_study(direction=request.direction.value, sampler=sampler)
    for o in request.observations:
        params = {k: o.params[k] for k in dists if k in o.params}
        active = {k: dists[k] for k in params}
        if o.state == TrialState.PRUNED and o.is_finite:
            trial = create_trial(
                state=OptunaState.PRUNED,
                params=params,
                distributions=active,
                intermediate_values={o.step or 0: float(o.value)},  # type: ignore[arg-type]
            )
        elif o.state == TrialState.COMPLETE and o.is_finite:
            trial = create_trial(
                value=float(o.value),  # type: ignore[arg-type]
                params=params,
                distributions=active,
            )
        else:
            trial = create_trial(state=OptunaState.FAIL, params=params, distributions=active)
        study.add_trial(trial)
    for config in request.pending:
        study.enqueue_trial({k: config[k] for k in dists if k in config}, skip_if_exists=False)
        _ask_by_run(study, request.space, dists)
    return study


class SkoptStrategy:
    """scikit-optimize's `Optimizer` (GP, the study's acquisition; `auto` is gp_hedge).

    Pending trials are told with the best value so far (constant liar, "cl_min") and `count`
    > 1 uses skopt's own cl_min batch.
    """

    def suggest(self, request: SuggestRequest) -> SuggestResult:
        from skopt import Optimizer

        request = _with_prior(request)
        space = request.space
        dims, names = _skopt_dimensions(space)
        spec = request.spec
        acq = {
            AcquisitionName.UCB: "LCB",
            AcquisitionName.PI: "PI",
            AcquisitionName.EI: "EI",
            AcquisitionName.AUTO: "gp_hedge",
        }[spec.acquisition]
        xs, ys = skopt_history(request, names)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            opt = Optimizer(
                dims,
                base_estimator="GP",
                n_initial_points=spec.n_initial or 10,
                acq_func=acq,
                acq_func_kwargs={"xi": spec.xi, "kappa": spec.beta},
                random_state=request.seed % (2**32),
            )
            if xs:
                opt.tell(xs, ys)
            points = opt.ask(n_points=request.count) if request.count > 1 else [opt.ask()]
        configs = [_from_skopt(space, names, x) for x in points]
        return _dedupe(request, configs, "skopt")


def skopt_history(request: SuggestRequest, names: list[str]) -> tuple[list[list[Any]], list[float]]:
    """What skopt is told, minimizing: each observation's value sign-flipped to a loss (a
    pruned trial's last value counts as its result); failed or non-finite ones 1 worse than
    the worst finite loss, since skopt cannot skip them; each pending configuration the best
    loss so far (constant liar, cl_min)."""
    space = request.space
    sign = -request.direction.sign
    xs = [_to_skopt(space, names, o.params) for o in request.observations]
    ys = [sign * (math.nan if o.value is None else o.value) for o in request.observations]
    finite = [y for y in ys if math.isfinite(y)]
    worst = max(finite) + 1.0 if finite else 0.0
    ys = [y if math.isfinite(y) else worst for y in ys]
    if request.pending:
        lie = min(finite) if finite else 0.0
        xs += [_to_skopt(space, names, p) for p in request.pending]
        ys += [lie] * len(request.pending)
    return xs, ys


def _ask_by_run(study: Any, space: SearchSpace, dists: dict[str, Any]) -> dict[str, Any]:
    """One define-by-run trial of `study`."""
    config = suggest_by_run(study.ask(), space, dists)
    return {n: config[n] for n in space.names if n in config}


def suggest_by_run(trial: Any, space: SearchSpace, dists: dict[str, Any]) -> dict[str, Any]:
    """Asks an Optuna `trial` for each parameter, parents first, only while it is active: how
    Optuna users write a conditional space (define-by-run)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    config: dict[str, Any] = {}
    for name in space.order:
        p = space.params[name]
        if not space.is_active(name, config):
            continue
        if isinstance(p, FixedParam):
            config[name] = p.value
            continue
        d = dists[name]
        if isinstance(d, CategoricalDistribution):
            config[name] = trial.suggest_categorical(name, d.choices)
        elif isinstance(d, FloatDistribution):
            config[name] = trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
        else:
            config[name] = trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    return config


def _with_prior(request: SuggestRequest) -> SuggestRequest:
    return with_initial_prior(request, request.spec.n_initial or default_n_initial(request.space))


def _fixed(space: SearchSpace) -> dict[str, Any]:
    return {n: p.value for n, p in space.params.items() if isinstance(p, FixedParam)}


def _skopt_dimensions(space: SearchSpace) -> tuple[list[Any], list[str]]:
    from skopt.space import Categorical, Integer, Real

    dims: list[Any] = []
    names: list[str] = []
    for name, p in space.params.items():
        prior = "log-uniform" if getattr(p, "log", False) else "uniform"
        if isinstance(p, FloatParam | IntParam) and (p.step or 1) != 1:
            dims.append(Integer(0, p.n_steps or 0, name=name))
        elif isinstance(p, FloatParam):
            dims.append(Real(p.low, p.high, prior=prior, name=name))
        elif isinstance(p, IntParam):
            if p.low == p.high:
                dims.append(Categorical([str(p.low)], name=name))
            else:
                dims.append(Integer(p.low, p.high, prior=prior, name=name))
        elif isinstance(p, CategoricalParam):
            dims.append(Categorical([str(i) for i in range(len(p.choices))], name=name))
        else:
            continue
        names.append(name)
    return dims, names


def _to_skopt(space: SearchSpace, names: list[str], config: Any) -> list[Any]:
    out: list[Any] = []
    for name in names:
        p = space.params[name]
        v: Any = config.get(name)
        if v is None:  # inactive: skopt needs a value, any fixed one will do
            v = p.choices[0] if isinstance(p, CategoricalParam) else p.low  # type: ignore[union-attr]
        if isinstance(p, FloatParam | IntParam) and (p.step or 1) != 1:
            out.append(round((float(v) - p.low) / (p.step or 1)))
        elif isinstance(p, CategoricalParam):
            keys = [(type(c).__name__, c) for c in p.choices]
            out.append(str(keys.index((type(v).__name__, v))))
        elif isinstance(p, IntParam) and p.low == p.high:
            out.append(str(p.low))
        else:
            out.append(v)
    return out


def _from_skopt(space: SearchSpace, names: list[str], x: list[Any]) -> dict[str, Any]:
    config = _fixed(space)
    for name, v in zip(names, x, strict=True):
        p = space.params[name]
        v = _plain(v)
        if isinstance(p, FloatParam) and p.step is not None:
            config[name] = p.grid_value(int(v))
        elif isinstance(p, IntParam) and p.step != 1:
            config[name] = p.low + int(v) * p.step
        elif isinstance(p, CategoricalParam):
            config[name] = p.choices[int(v)]
        elif isinstance(p, IntParam):
            config[name] = int(v)
        else:
            config[name] = min(max(float(v), p.low), p.high)  # type: ignore[union-attr]
    return space.validate(config)
