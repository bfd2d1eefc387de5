"""Study insights for the dashboard: history columns, learning curves, the GP view, importance.

Everything is rebuilt from the stored trials on each request and nothing is cached, as the
scheduler rebuilds its strategy (designer-per-request). The data come from the store's
reader; the GP view's model comes from the optimizer's one model builder
(`service.optimizer.model.build_model`) fed with the scheduler's own input
(`service.core.suggesting.suggest_input`), so it is the model that chooses the study's next
trial, warm-start prior included.

Rules:
- History: trials in number order with their value, state and the best-so-far (over complete
  trials only, computed on every trial even when the answer is downsampled). Beyond
  `max_points` trials the answer keeps every open (queued/running) trial, every trial that
  improved the best, the best tenth of `max_points`, and an even stride over the rest.
- GP view: the `gp` strategy's model of the study as the scheduler would build it for the
  next suggestion (same observations, pending points, warm-start prior, stored fit and
  refit schedule, subsampling and seed). The band is the posterior mean +- 2 std without
  pending points, mapped back through the output warp; the acquisition is computed the way
  the scheduler would compute it now (variance reduced by pending points, incumbent the best
  feasible value raised to their predicted means, and with constraints or infeasible
  failures weighted by the feasibility model as the strategy weights it). Other parameters
  are held at the incumbent: the best complete trial that is not infeasible. With a
  feasibility model, `feasibility` is its probability feasible over the same slice (None
  otherwise). Studies of any strategy get a view (a diagnostic surrogate; a warning says so
  for non-`gp` studies). Fewer than `MIN_GP_OBSERVATIONS` finite values
  raise Conflict (HTTP 409).
- Importance: permutation importance of a random forest fitted on the ranks of the finite
  values of finished trials (ranks keep an exploding loss from dominating), on at most
  `IMPORTANCE_CAP` trials drawn with the study's seed; shares sum to 1.
  Fewer than `MIN_IMPORTANCE_TRIALS` such trials raise Conflict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from scipy.stats import rankdata
from sqlalchemy.orm import Session

from service.core.suggesting import infeasible_failure, suggest_input
from service.domain import OPEN_STATES, Direction, TrialState
from service.errors import Conflict, InvalidRequest
from service.optimizer.acquisition import Acquisition
from service.optimizer.feasibility import (
    FeasibilityModel,
    feasible_incumbent,
    fit_feasibility,
)
from service.optimizer.gp_strategy import GPStrategy
from service.optimizer.model import StudyModel, build_model, observed_value
from service.params import CategoricalParam, FixedParam, FloatParam, IntParam
from service.records import TrialRecord
from service.space import SearchSpace
from service.specs import AcquisitionName, StrategyName, StrategySpec
from service.store import reader
from service.store import repository as repo
from service.store.models import Study

ChosenAcquisition = Literal["ucb", "pi", "ei"]

MIN_GP_OBSERVATIONS = 2
MIN_IMPORTANCE_TRIALS = 4
IMPORTANCE_CAP = 1000
FOREST_TREES = 32

# ---- response models -----------------------------------------------------------------------


class StudyHistory(BaseModel):
    """Compact columns, one entry per returned trial, in trial-number order."""

    study_id: int
    direction: Direction
    count: int
    downsampled: bool
    trial_id: list[int]
    number: list[int]
    state: list[TrialState]
    value: list[float | None]
    best: list[float | None]
    params: dict[str, list[Any]]
    source: list[str]
    acquisition: list[str | None]
    acquisition_value: list[float | None]
    predicted_mean: list[float | None]
    predicted_std: list[float | None]


class Curve(BaseModel):
    trial_id: int
    number: int
    state: TrialState
    steps: list[int]
    values: list[float]


class StudyCurves(BaseModel):
    study_id: int
    data: list[Curve]


class ModelAxis(BaseModel):
    name: str
    kind: Literal["float", "int", "categorical"]
    log: bool
    values: list[Any]


class ModelPoint(BaseModel):
    """A trial on the model: `mean` is the model's posterior mean at its configuration now,
    in the objective's units (for a trial still running, what the model expected of it when
    it was suggested, since pending points leave the mean unchanged)."""

    trial_id: int
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None
    mean: float | None


class ModelCurve(BaseModel):
    """Along `x`: posterior mean and std, the band and the acquisition.

    `lower`/`upper` are mean -+ 2 std taken in the model's (warped, standardized) units and
    mapped back through the output warp, so the band follows the warp instead of scaling a
    local slope; `std` is the local slope's scaling of the model's std.
    """

    mean: list[float]
    std: list[float]
    lower: list[float]
    upper: list[float]
    acquisition: list[float] = Field(
        description="The acquisition as the strategy would use it now: pending points "
        "reduce the variance, and with a feasibility model it is weighted as the strategy "
        "weights it: EI and PI times the weight (the probability feasible, and near 0 where "
        "that is below one half), UCB plus the weight's log."
    )
    feasibility: list[float] | None = Field(
        default=None,
        description="The modelled probability that a configuration is feasible (constraints, "
        "out-of-memory failures); None while no trial was infeasible.",
    )


class ModelSurface(BaseModel):
    """Over (`y`, `x`): row i is y.values[i], column j is x.values[j]."""

    mean: list[list[float]]
    std: list[list[float]]
    acquisition: list[list[float]]
    feasibility: list[list[float]] | None = None


class ModelView(BaseModel):
    study_id: int
    strategy: str
    direction: Direction
    acquisition: ChosenAcquisition
    n_observations: int
    x: ModelAxis
    y: ModelAxis | None
    curve: ModelCurve | None
    surface: ModelSurface | None
    incumbent: ModelPoint | None
    observed: list[ModelPoint]
    pending: list[ModelPoint]
    lengthscales: dict[str, float]
    warnings: list[str]


class ParamImportance(BaseModel):
    name: str
    importance: float
    std: float


class StudyImportance(BaseModel):
    study_id: int
    method: str
    n_trials: int
    data: list[ParamImportance]


# ---- loading -------------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _records(session: Session, study_id: int) -> list[TrialRecord]:
    return reader.trial_history(session, study_id, with_suggestion=True)


# ---- history -------------------------------------------------------------------------------


def history(session: Session, study_id: int, *, max_points: int) -> StudyHistory:
    """The study's trials as columns, downsampled beyond `max_points` (see the module rules)."""
    study = repo.get_study(session, study_id)
    rows = _records(session, study_id)
    best: list[float | None] = []
    improved: list[int] = []
    current: float | None = None
    for i, r in enumerate(rows):
        value = _finite(r.value)
        if r.state == TrialState.COMPLETE and value is not None and (
            current is None or study.direction.better(value, current)
        ):
            current = value
            improved.append(i)
        best.append(current)
    keep = _downsample(rows, improved, study.direction, max_points)
    kept = [rows[i] for i in keep]
    names = list(study.space)
    return StudyHistory(
        study_id=study.id,
        direction=study.direction,
        count=len(rows),
        downsampled=len(keep) < len(rows),
        trial_id=[r.id for r in kept],
        number=[r.number for r in kept],
        state=[r.state for r in kept],
        value=[_finite(r.value) for r in kept],
        best=[best[i] for i in keep],
        params={name: [r.params.get(name) for r in kept] for name in names},
        source=[str(r.suggestion.get("source", "")) for r in kept],
        acquisition=[_str_or_none(r.suggestion.get("acquisition")) for r in kept],
        acquisition_value=[_finite(r.suggestion.get("acquisition_value")) for r in kept],
        predicted_mean=[_finite(r.suggestion.get("mean")) for r in kept],
        predicted_std=[_finite(r.suggestion.get("std")) for r in kept],
    )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _downsample(
    rows: Sequence[TrialRecord], improved: Sequence[int], direction: Direction, max_points: int
) -> list[int]:
    n = len(rows)
    if n <= max_points:
        return list(range(n))
    keep: set[int] = set(improved)
    keep.update(i for i, r in enumerate(rows) if r.state in OPEN_STATES)
    valued = [(i, v) for i, r in enumerate(rows) if (v := _finite(r.value)) is not None]
    valued.sort(key=lambda iv: direction.sort_key(iv[1]))
    keep.update(i for i, _ in valued[: max(1, max_points // 10)])
    room = max(max_points - len(keep), 1)
    keep.update(np.linspace(0, n - 1, room).round().astype(int).tolist())
    return sorted(keep)


# ---- learning curves -----------------------------------------------------------------------


def curves(session: Session, study_id: int, *, limit: int, max_points: int) -> StudyCurves:
    """Intermediate values of every running trial plus the latest `limit` other trials that
    reported any; each curve keeps at most `max_points` points (its last one always)."""
    repo.get_study(session, study_id)
    trials = reader.trials_by_id(session, reader.curve_trial_ids(session, study_id, recent=limit))
    values = repo.values_of(session, [t.id for t in trials])
    data: list[Curve] = []
    for trial in trials:
        points = [(s, v) for s, v in values[trial.id] if math.isfinite(v)]
        if not points:
            continue
        if len(points) > max_points:
            idx = np.linspace(0, len(points) - 1, max_points).round().astype(int)
            points = [points[i] for i in sorted(set(idx.tolist()))]
        data.append(
            Curve(
                trial_id=trial.id,
                number=trial.number,
                state=trial.state,
                steps=[s for s, _ in points],
                values=[v for _, v in points],
            )
        )
    return StudyCurves(study_id=study_id, data=data)


# ---- the GP view ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _View:
    """The study's model and the trials it is conditioned on (`observed`, as kept by the
    model past its cap) and waits for (`pending`)."""

    model: StudyModel
    space: SearchSpace
    spec: StrategySpec
    observed: list[TrialRecord]
    pending: list[TrialRecord]
    feasibility: FeasibilityModel | None
    best: float
    """The incumbent the strategy's acquisition improves on (`feasible_incumbent`)."""


def _study_view(session: Session, study: Study) -> _View:
    records = _records(session, study.id)
    given = suggest_input(session, study, 1, trials=records)
    request = given.request
    finite = [o for o in request.observations if observed_value(o) is not None]
    if len(finite) < MIN_GP_OBSERVATIONS:
        raise Conflict(
            f"study {study.id} has {len(finite)} finished trial(s) with a finite value; "
            f"the GP view needs at least {MIN_GP_OBSERVATIONS}"
        )
    # The scheduler's GP strategy builds its model with the same input, settings and seed.
    rng = np.random.default_rng(request.seed)
    model = build_model(
        request, request.state, rng, settings=GPStrategy().model_settings
    )
    # The rows of the model are the observations' (infeasible failures are not among them).
    finished = [r for r in records if r.state.is_finished() and not infeasible_failure(r)]
    return _View(
        model=model,
        space=request.space,
        spec=request.spec,
        observed=[finished[i] for i in sorted(model.data.rows.tolist())],
        pending=[r for r in records if r.state in OPEN_STATES],
        feasibility=fit_feasibility(request),
        best=feasible_incumbent(model, request),
    )


def _axis(space: SearchSpace, name: str, points: int) -> ModelAxis:
    p = space.params.get(name)
    if p is None:
        raise InvalidRequest(
            f"param: {name!r} is not a parameter of the study (known: {space.names})",
            field="param",
        )
    if isinstance(p, FixedParam):
        raise InvalidRequest(f"param: {name!r} is fixed; choose a searchable one", field="param")
    if isinstance(p, CategoricalParam):
        return ModelAxis(name=name, kind="categorical", log=False, values=list(p.choices))
    # The parameter alone (a conditional one may be inactive at the cube's centre).
    alone = SearchSpace({name: p.model_copy(update={"condition": None})})
    values: list[Any] = [alone.decode([u])[name] for u in np.linspace(0.0, 1.0, points)]
    if isinstance(p, IntParam):
        values = sorted(set(values))
        return ModelAxis(name=name, kind="int", log=p.log, values=values)
    assert isinstance(p, FloatParam)
    return ModelAxis(name=name, kind="float", log=p.log, values=values)


def _choose_acquisition(
    spec: StrategySpec, rows: Sequence[TrialRecord], requested: ChosenAcquisition | None
) -> ChosenAcquisition:
    """The requested one; else the study's; for `auto`, the one the latest GP trial used."""
    if requested is not None:
        return requested
    if spec.acquisition != AcquisitionName.AUTO:
        return spec.acquisition.value  # type: ignore[return-value]
    for row in reversed(rows):
        name = row.suggestion.get("acquisition")
        if row.suggestion.get("source") == "gp" and name in ("ucb", "pi", "ei"):
            return name
    return "ei"


def _points(rows: Sequence[TrialRecord], view: _View, direction: Direction) -> list[ModelPoint]:
    if not rows:
        return []
    X = view.space.encode_many(r.params for r in rows)
    mean, std = view.model.surrogate.predict(X)
    means = direction.sign * view.model.data.warp.to_original(mean, std)[0]
    return [
        ModelPoint(
            trial_id=r.id,
            number=r.number,
            state=r.state,
            params=r.params,
            value=_finite(r.value),
            mean=_finite(m),
        )
        for r, m in zip(rows, means, strict=True)
    ]


def model_view(
    session: Session,
    study_id: int,
    *,
    param: str,
    param2: str | None,
    points: int,
    acquisition: ChosenAcquisition | None,
) -> ModelView:
    """The GP posterior and acquisition along `param` (or over `param` x `param2`), every
    other parameter held at the incumbent (the best complete trial)."""
    study = repo.get_study(session, study_id)
    if param2 is not None and param2 == param:
        raise InvalidRequest("param2: must differ from param", field="param2")
    space = SearchSpace.from_spec(study.space)
    x_axis = _axis(space, param, points)
    y_axis = None if param2 is None else _axis(space, param2, points)
    view = _study_view(session, study)
    model, spec, direction = view.model, view.spec, study.direction
    incumbent: TrialRecord | None = None
    incumbent_value = 0.0
    for r in view.observed:
        value = _finite(r.value)
        if (
            r.state == TrialState.COMPLETE
            and r.feasible is not False
            and value is not None
            and (incumbent is None or direction.better(value, incumbent_value))
        ):
            incumbent, incumbent_value = r, value
    base = (
        dict(incumbent.params)
        if incumbent is not None
        else space.decode(model.data.X[int(np.argmax(model.data.y))])
    )
    name = _choose_acquisition(spec, [*view.observed, *view.pending], acquisition)
    acq = Acquisition(
        AcquisitionName(name),
        beta=spec.beta,
        xi=spec.xi,
        best=view.best,
        noise=math.exp(model.params.log_noise),
    )
    ys = y_axis.values if y_axis is not None else [None]
    configs = [
        {**base, param: xv, **({} if y_axis is None else {y_axis.name: yv})}
        for yv in ys
        for xv in x_axis.values
    ]
    Xq = space.encode_many(configs)
    mean_std, std_std = model.surrogate.predict(Xq)
    _, std_pending = model.with_pending.predict(Xq)
    acq_values = acq.value(mean_std, std_pending)
    feasible = None
    if view.feasibility is not None:
        feasible = view.feasibility.probability(Xq)
        # As the strategy weighs it (maximize.py adds the log weight to the maximized form:
        # log EI, log PI, UCB itself): times P, barred steeply where P < DELTA.
        log_weight = view.feasibility.log_value(Xq)
        if acq.name == AcquisitionName.UCB:
            acq_values = acq_values + log_weight
        else:
            acq_values = acq_values * np.exp(log_weight)
    warp, sign = model.data.warp, direction.sign
    mean_o, std_o = warp.to_original(mean_std, std_std)
    mean_o = sign * mean_o
    band_a = sign * warp.to_original(mean_std - 2 * std_std, std_std)[0]
    band_b = sign * warp.to_original(mean_std + 2 * std_std, std_std)[0]
    shape = (len(ys), len(x_axis.values))
    warnings = list(model.warnings)
    if study.objectives:
        warnings.append(
            f"the study has {len(study.objectives)} objectives: this view models the first "
            f"({study.metric}); the GP strategy models random scalarizations of all of them"
        )
    if spec.name != StrategyName.GP:
        warnings.append(
            f"the study uses strategy {spec.name.value!r}: this GP is a diagnostic surrogate, "
            "not the model that chose its trials"
        )
    curve = surface = None
    if y_axis is None:
        curve = ModelCurve(
            mean=_plain(mean_o),
            std=_plain(std_o),
            lower=_plain(np.minimum(band_a, band_b)),
            upper=_plain(np.maximum(band_a, band_b)),
            acquisition=_plain(acq_values),
            feasibility=None if feasible is None else _plain(feasible),
        )
    else:
        surface = ModelSurface(
            mean=_plain(mean_o.reshape(shape)),
            std=_plain(std_o.reshape(shape)),
            acquisition=_plain(acq_values.reshape(shape)),
            feasibility=None if feasible is None else _plain(feasible.reshape(shape)),
        )
    return ModelView(
        study_id=study.id,
        strategy=spec.name.value,
        direction=direction,
        acquisition=name,
        n_observations=len(view.observed),
        x=x_axis,
        y=y_axis,
        curve=curve,
        surface=surface,
        incumbent=None if incumbent is None else _points([incumbent], view, direction)[0],
        observed=_points(view.observed, view, direction),
        pending=_points(view.pending, view, direction),
        lengthscales=_lengthscales(space, model),
        warnings=warnings,
    )


def _lengthscales(space: SearchSpace, model: StudyModel) -> dict[str, float]:
    """Per parameter, in unit-cube units (the shortest of a categorical's columns)."""
    ls = np.exp(np.array(model.params.log_lengthscales))
    return {c.name: float(ls[c.start : c.stop].min()) for c in space.columns}


def _plain(a: np.ndarray) -> Any:
    """A JSON-safe nested list: non-finite entries become 0 (the GP never returns them)."""
    return np.nan_to_num(np.asarray(a, dtype=float), nan=0.0, posinf=0.0, neginf=0.0).tolist()


# ---- parameter importance ------------------------------------------------------------------


def importance(session: Session, study_id: int) -> StudyImportance:
    """Permutation importance of each searchable parameter (see the module rules)."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    study = repo.get_study(session, study_id)
    space = SearchSpace.from_spec(study.space)
    rows = [
        r
        for r in reader.trial_history(session, study_id)
        if r.state in (TrialState.COMPLETE, TrialState.PRUNED) and _finite(r.value) is not None
    ]
    if len(rows) < MIN_IMPORTANCE_TRIALS:
        raise Conflict(
            f"study {study.id} has {len(rows)} finished trial(s) with a finite value; "
            f"parameter importance needs at least {MIN_IMPORTANCE_TRIALS}"
        )
    if not space.columns:
        raise Conflict(f"study {study.id} has no searchable parameter")
    rng = np.random.default_rng(study.seed)
    if len(rows) > IMPORTANCE_CAP:
        rows = [rows[i] for i in sorted(rng.choice(len(rows), IMPORTANCE_CAP, replace=False))]
    encoded = space.encode_many(r.params for r in rows)
    X = np.column_stack(
        [
            np.argmax(encoded[:, c.start : c.stop], axis=1).astype(float)
            if c.kind == "categorical"
            else encoded[:, c.start]
            for c in space.columns
        ]
    )
    y = rankdata([r.value for r in rows]) / len(rows)
    seed = int(rng.integers(2**31 - 1))
    forest = RandomForestRegressor(
        n_estimators=FOREST_TREES, min_samples_leaf=2, random_state=seed, n_jobs=1
    ).fit(X, y)
    result = permutation_importance(forest, X, y, n_repeats=3, random_state=seed, n_jobs=1)
    means = np.clip(result.importances_mean, 0.0, None)
    total = float(means.sum())
    shares = means / total if total > 0 else means
    scale = 1.0 / total if total > 0 else 1.0
    data = [
        ParamImportance(name=c.name, importance=float(s), std=float(sd * scale))
        for c, s, sd in zip(space.columns, shares, result.importances_std, strict=True)
    ]
    data.sort(key=lambda p: -p.importance)
    return StudyImportance(
        study_id=study.id,
        method="permutation importance of a random forest fitted on value ranks",
        n_trials=len(rows),
        data=data,
    )
