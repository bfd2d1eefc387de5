"""Study insights for the dashboard: history columns, learning curves, the GP view, importance.

Everything is rebuilt from the stored trials on each request and nothing is cached, as the
scheduler rebuilds its strategy (designer-per-request). This module is the only dashboard
code that touches the GP engine's internals (`service.optimizer.gp`, `.acquisition`,
`.warping`): if they change, `_fit_surrogate` and `model_view` are what must follow.

Rules:
- History: trials in number order with their value, state and the best-so-far (over complete
  trials only, computed on every trial even when the answer is downsampled). Beyond
  `max_points` trials the answer keeps every open (queued/running) trial, every trial that
  improved the best, the best tenth of `max_points`, and an even stride over the rest.
- GP view: finished trials are the observations (failed and non-finite values imputed as
  bad, pruned trials count with their last value), queued and running trials are pending,
  exactly as the `gp` strategy sees them. The hyperparameters are refitted (from the
  strategy's last fit when it kept one). The band is the posterior mean +- 2 std without
  pending points, mapped back through the output warp; the acquisition is computed the way
  the scheduler would compute it now (variance reduced by pending points, incumbent raised
  to their predicted means). Studies
  of any strategy get a view (a diagnostic surrogate; a warning says so for non-`gp`
  studies). Past `VIEW_CAP` observations the view's GP keeps the best quarter and a seeded
  random rest (the strategy keeps up to 2000), so on big studies it approximates the
  scheduler's model at a fraction of the O(n^3) cost. Fewer than `MIN_GP_OBSERVATIONS`
  finite values raise Conflict (HTTP 409).
- Importance: permutation importance of a random forest fitted on the ranks of the finite
  values of finished trials (ranks keep an exploding loss from dominating), on at most
  `IMPORTANCE_CAP` trials drawn with the study's seed; shares sum to 1.
  Fewer than `MIN_IMPORTANCE_TRIALS` such trials raise Conflict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel
from scipy.stats import rankdata
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import Conflict, InvalidRequest
from service.optimizer.acquisition import Acquisition
from service.optimizer.base import AcquisitionName, StrategyName, StrategySpec
from service.optimizer.gp import GaussianProcess, GPParams, fit_params
from service.optimizer.warping import OutputWarp
from service.space import CategoricalParam, FixedParam, FloatParam, IntParam, SearchSpace
from service.store import repository as repo
from service.store.models import Study, Trial, TrialState

Direction = Literal["minimize", "maximize"]
ChosenAcquisition = Literal["ucb", "pi", "ei"]

MIN_GP_OBSERVATIONS = 2
MIN_IMPORTANCE_TRIALS = 4
FIT_CAP = 200
VIEW_CAP = 500
IMPORTANCE_CAP = 1000
FOREST_TREES = 32
OPEN_STATES = (TrialState.QUEUED.value, TrialState.RUNNING.value)

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
    trial_id: int
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None


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
    acquisition: list[float]


class ModelSurface(BaseModel):
    """Over (`y`, `x`): row i is y.values[i], column j is x.values[j]."""

    mean: list[list[float]]
    std: list[list[float]]
    acquisition: list[list[float]]


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


@dataclass(frozen=True)
class _Row:
    id: int
    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    suggestion: dict[str, Any]


def _rows(session: Session, study_id: int, states: Sequence[str] | None = None) -> list[_Row]:
    stmt = select(
        Trial.id, Trial.number, Trial.state, Trial.value, Trial.params, Trial.suggestion
    ).where(Trial.study_id == study_id)
    if states is not None:
        stmt = stmt.where(Trial.state.in_(list(states)))
    return [
        _Row(i, n, s, _finite(v), p or {}, g or {})
        for i, n, s, v, p, g in session.execute(stmt.order_by(Trial.number)).all()
    ]


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _better(direction: str) -> Any:
    return (lambda a, b: a < b) if direction == "minimize" else (lambda a, b: a > b)


# ---- history -------------------------------------------------------------------------------


def history(session: Session, study_id: int, *, max_points: int) -> StudyHistory:
    """The study's trials as columns, downsampled beyond `max_points` (see the module rules)."""
    study = repo.get_study(session, study_id)
    rows = _rows(session, study_id)
    better = _better(study.direction)
    best: list[float | None] = []
    improved: list[int] = []
    current: float | None = None
    for i, r in enumerate(rows):
        complete = r.state == TrialState.COMPLETE.value and r.value is not None
        if complete and (current is None or better(r.value, current)):
            current = r.value
            improved.append(i)
        best.append(current)
    keep = _downsample(rows, improved, study.direction, max_points)
    kept = [rows[i] for i in keep]
    names = list(study.space)
    return StudyHistory(
        study_id=study.id,
        direction=study.direction,  # type: ignore[arg-type]
        count=len(rows),
        downsampled=len(keep) < len(rows),
        trial_id=[r.id for r in kept],
        number=[r.number for r in kept],
        state=[TrialState(r.state) for r in kept],
        value=[r.value for r in kept],
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
    rows: Sequence[_Row], improved: Sequence[int], direction: str, max_points: int
) -> list[int]:
    n = len(rows)
    if n <= max_points:
        return list(range(n))
    keep: set[int] = set(improved)
    keep.update(i for i, r in enumerate(rows) if r.state in OPEN_STATES)
    valued = [i for i, r in enumerate(rows) if r.value is not None]
    sign = 1.0 if direction == "minimize" else -1.0
    valued.sort(key=lambda i: sign * (rows[i].value or 0.0))
    keep.update(valued[: max(1, max_points // 10)])
    room = max(max_points - len(keep), 1)
    keep.update(np.linspace(0, n - 1, room).round().astype(int).tolist())
    return sorted(keep)


# ---- learning curves -----------------------------------------------------------------------


def curves(session: Session, study_id: int, *, limit: int, max_points: int) -> StudyCurves:
    """Intermediate values of every running trial plus the latest `limit` other trials that
    reported any; each curve keeps at most `max_points` points (its last one always)."""
    repo.get_study(session, study_id)
    running = session.scalars(
        select(Trial.id).where(Trial.study_id == study_id, Trial.state == TrialState.RUNNING.value)
    ).all()
    recent = session.scalars(
        select(Trial.id)
        .where(
            Trial.study_id == study_id,
            Trial.step.is_not(None),
            Trial.state != TrialState.RUNNING.value,
        )
        .order_by(Trial.number.desc())
        .limit(limit)
    ).all()
    ids = sorted({*running, *recent})
    trials = {t.id: t for t in session.scalars(select(Trial).where(Trial.id.in_(ids))).all()}
    values = repo.values_of(session, ids)
    data: list[Curve] = []
    for trial_id in sorted(ids, key=lambda i: trials[i].number):
        points = [(s, v) for s, v in values[trial_id] if math.isfinite(v)]
        if not points:
            continue
        if len(points) > max_points:
            idx = np.linspace(0, len(points) - 1, max_points).round().astype(int)
            points = [points[i] for i in sorted(set(idx.tolist()))]
        trial = trials[trial_id]
        data.append(
            Curve(
                trial_id=trial.id,
                number=trial.number,
                state=TrialState(trial.state),
                steps=[s for s, _ in points],
                values=[v for _, v in points],
            )
        )
    return StudyCurves(study_id=study_id, data=data)


# ---- the GP view ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Surrogate:
    gp: GaussianProcess
    gp_pending: GaussianProcess
    warp: OutputWarp
    best: float
    sign: float
    observed: list[_Row]
    warnings: list[str]


def _observed_value(row: _Row) -> float | None:
    return None if row.state == TrialState.FAILED.value else row.value


def _fit_surrogate(
    study: Study, space: SearchSpace, spec: StrategySpec, finished: list[_Row], pending: list[_Row]
) -> _Surrogate:
    finite = [r for r in finished if _observed_value(r) is not None]
    if len(finite) < MIN_GP_OBSERVATIONS:
        raise Conflict(
            f"study {study.id} has {len(finite)} finished trial(s) with a finite value; "
            f"the GP view needs at least {MIN_GP_OBSERVATIONS}"
        )
    rng = np.random.default_rng(study.seed)
    sign = 1.0 if study.direction == "maximize" else -1.0
    rows = list(finished)
    if len(rows) > VIEW_CAP:
        raw = np.array(
            [sign * (v if (v := _observed_value(r)) is not None else -np.inf) for r in rows]
        )
        top = np.argsort(-raw)[: VIEW_CAP // 4]
        rest = np.setdiff1d(np.arange(len(rows)), top)
        extra = rng.choice(rest, size=VIEW_CAP - len(top), replace=False)
        rows = [rows[i] for i in sorted([*top.tolist(), *extra.tolist()])]
    values = np.array([sign * v if (v := _observed_value(r)) is not None else np.nan for r in rows])
    X = space.encode_many(r.params for r in rows)
    warp = OutputWarp.fit(values, rank_warp=spec.output_warping)
    d = space.dim
    stored = (study.strategy_state or {}).get("gp")
    previous = GPParams.from_state(stored, d) if isinstance(stored, Mapping) else None
    Xf, yf = X, warp.y
    if len(yf) > FIT_CAP:
        idx = rng.choice(len(yf), size=FIT_CAP, replace=False)
        Xf, yf = Xf[idx], yf[idx]
    starts = [GPParams.default(d)] if previous is None else [previous, GPParams.default(d)]
    warnings: list[str] = []
    params = fit_params(Xf, yf, starts=starts)
    if params is None:
        params = previous or GPParams.default(d)
        warnings.append("the GP hyperparameter fit failed; showing the previous/default kernel")
    gp = GaussianProcess(X, warp.y, params)
    pending_X = space.encode_many(r.params for r in pending) if pending else np.zeros((0, d))
    gp_pending = gp.condition_on_pending(pending_X)
    best = float(warp.y.max())
    if len(pending_X):
        best = max(best, float(gp.predict(pending_X)[0].max()))
    return _Surrogate(gp, gp_pending, warp, best, sign, rows, warnings)


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
    col = next(c for c in space.columns if c.name == name)
    x = np.full(space.dim, 0.5)
    values: list[Any] = []
    for u in np.linspace(0.0, 1.0, points):
        x[col.start] = u
        values.append(space.decode(x)[name])
    if isinstance(p, IntParam):
        values = sorted(set(values))
        return ModelAxis(name=name, kind="int", log=p.log, values=values)
    assert isinstance(p, FloatParam)
    return ModelAxis(name=name, kind="float", log=p.log, values=values)


def _choose_acquisition(
    spec: StrategySpec, rows: Sequence[_Row], requested: ChosenAcquisition | None
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


def _point(row: _Row) -> ModelPoint:
    return ModelPoint(
        trial_id=row.id,
        number=row.number,
        state=TrialState(row.state),
        params=row.params,
        value=row.value,
    )


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
    space = SearchSpace.from_spec(study.space)
    spec = StrategySpec.model_validate(study.strategy)
    rows = _rows(session, study_id)
    finished = [r for r in rows if TrialState(r.state).is_finished()]
    pending = [r for r in rows if r.state in OPEN_STATES]
    if param2 is not None and param2 == param:
        raise InvalidRequest("param2: must differ from param", field="param2")
    x_axis = _axis(space, param, points)
    y_axis = None if param2 is None else _axis(space, param2, points)
    model = _fit_surrogate(study, space, spec, finished, pending)
    better = _better(study.direction)
    incumbent: _Row | None = None
    for r in finished:
        if (
            r.state == TrialState.COMPLETE.value
            and r.value is not None
            and (incumbent is None or better(r.value, incumbent.value))
        ):
            incumbent = r
    base = (
        dict(incumbent.params)
        if incumbent is not None
        else space.decode(model.gp.X[int(np.argmax(model.gp.y))])
    )
    name = _choose_acquisition(spec, rows, acquisition)
    acq = Acquisition(AcquisitionName(name), beta=spec.beta, xi=spec.xi, best=model.best)
    ys = y_axis.values if y_axis is not None else [None]
    configs = [
        {**base, param: xv, **({} if y_axis is None else {y_axis.name: yv})}
        for yv in ys
        for xv in x_axis.values
    ]
    Xq = space.encode_many(configs)
    mean_std, std_std = model.gp.predict(Xq)
    _, std_pending = model.gp_pending.predict(Xq)
    acq_values = acq.value(mean_std, std_pending)
    mean_o, std_o = model.warp.to_original(mean_std, std_std)
    mean_o = model.sign * mean_o
    band_a = model.sign * model.warp.to_original(mean_std - 2 * std_std, std_std)[0]
    band_b = model.sign * model.warp.to_original(mean_std + 2 * std_std, std_std)[0]
    shape = (len(ys), len(x_axis.values))
    warnings = list(model.warnings)
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
        )
    else:
        surface = ModelSurface(
            mean=_plain(mean_o.reshape(shape)),
            std=_plain(std_o.reshape(shape)),
            acquisition=_plain(acq_values.reshape(shape)),
        )
    return ModelView(
        study_id=study.id,
        strategy=spec.name.value,
        direction=study.direction,  # type: ignore[arg-type]
        acquisition=name,
        n_observations=len(model.observed),
        x=x_axis,
        y=y_axis,
        curve=curve,
        surface=surface,
        incumbent=None if incumbent is None else _point(incumbent),
        observed=[_point(r) for r in model.observed],
        pending=[_point(r) for r in pending],
        lengthscales=_lengthscales(space, model.gp),
        warnings=warnings,
    )


def _lengthscales(space: SearchSpace, gp: GaussianProcess) -> dict[str, float]:
    """Per parameter, in unit-cube units (the shortest of a categorical's columns)."""
    ls = gp.lengthscales
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
    finished = [TrialState.COMPLETE.value, TrialState.PRUNED.value]
    rows = [r for r in _rows(session, study_id, finished) if r.value is not None]
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
