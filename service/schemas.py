"""The REST contract: request and response models (also used by the Python client).

Field names here are fixed: clients and checks depend on them. Requests forbid unknown
fields, so a typo is a 422 that names it instead of a silently ignored setting.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.domain import AttemptOutcome, Direction, Role, StopKind, StudyState, TrialState
from service.params import MAX_PARAMS, Param
from service.specs import (
    MAX_CONSTRAINTS,
    MAX_OBJECTIVES,
    ConstraintSpec,
    ObjectiveSpec,
    PruningSpec,
    StoppingSpec,
    StrategySpec,
    WarmStartSpec,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._ -]*$"
MAX_ENQUEUE = 1000
MAX_PAGE = 1000
MAX_SUGGESTIONS = 64
M = TypeVar("M", bound=BaseModel)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _RowWith:
    """A row's attributes, with some of them given (derived fields)."""

    def __init__(self, row: object, derived: dict[str, Any]) -> None:
        self._row = row
        self._derived = derived

    def __getattr__(self, name: str) -> Any:
        if name in self._derived:
            return self._derived[name]
        return getattr(self._row, name)


def from_row(model: type[M], row: object, **derived: Any) -> M:
    """`model` validated from `row`'s attributes, with `derived` fields that the row lacks."""
    return model.model_validate(_RowWith(row, derived), from_attributes=True)


class _FromRow(BaseModel):
    """A response model that the server fills from a stored row's attributes (its fields
    that are not columns are derived next to the row: `from_row`)."""

    model_config = ConfigDict(from_attributes=True)


MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 64 * 1024


def bounded_json(max_bytes: int) -> AfterValidator:
    """A free-form JSON field's limits: nesting at most `MAX_JSON_DEPTH` deep, at most
    `max_bytes` serialized, finite numbers only. Every stored document must serialize again."""

    def check(value: Any) -> Any:
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, dict | list):
                if depth > MAX_JSON_DEPTH:
                    raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
        try:
            size = len(json.dumps(value, allow_nan=False))
        except ValueError:
            raise ValueError("numbers must be finite (no NaN or Infinity)") from None
        if size > max_bytes:
            raise ValueError(f"is {size} bytes as JSON; at most {max_bytes}")
        return value

    return AfterValidator(check)


FreeJSON = Annotated[dict[str, Any], bounded_json(MAX_JSON_BYTES)]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return value


MAX_METRICS = 100
FiniteFloat = Annotated[float, AfterValidator(_finite)]


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters (\\x00): text columns cannot store them")
    return text


# Free-form text stored in a text column: PostgreSQL refuses NUL characters in them.
Text = Annotated[str, AfterValidator(_no_nul)]
Metrics = dict[Annotated[str, Field(min_length=1, max_length=200)], FiniteFloat]
"""Named final metrics of a trial (what `constraints` bound), finite numbers only."""


class Budget(_Request):
    max_trials: int = Field(default=20, ge=1, le=100_000)
    max_parallel: int = Field(default=4, ge=1, le=1024)
    max_retries: int | None = Field(
        default=None, ge=0, le=100, description="Lost leases before a trial fails."
    )
    max_consecutive_failures: int = Field(
        default=10,
        ge=1,
        le=100_000,
        description="The study stops (with the reason) when this many trials in a row fail.",
    )


class StudyCreate(_Request):
    """A study specification. `metric`, `direction` and `space` default to the objective's own."""

    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    objective: str = Field(min_length=1, max_length=200)
    objective_args: FreeJSON = Field(default_factory=dict)
    metric: str | None = Field(default=None, min_length=1, max_length=200)
    direction: Direction | None = None
    space: dict[str, Param] | None = Field(default=None, max_length=MAX_PARAMS)
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    budget: Budget = Field(default_factory=Budget)
    pruning: PruningSpec | None = None
    stopping: StoppingSpec | None = None
    warm_start: WarmStartSpec | None = None
    enqueue: list[FreeJSON] = Field(default_factory=list, max_length=MAX_ENQUEUE)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    objectives: list[ObjectiveSpec] | None = Field(
        default=None,
        min_length=2,
        max_length=MAX_OBJECTIVES,
        description="Several objectives instead of `metric`/`direction`: trials complete with "
        "`values` (one per objective, in this order) and the study keeps a Pareto front.",
    )
    constraints: list[ConstraintSpec] = Field(
        default_factory=list,
        max_length=MAX_CONSTRAINTS,
        description="Bounds on metrics that trials report (`metrics`); only trials within "
        "all of them count for `best` and the Pareto front.",
    )

    @field_validator("objectives")
    @classmethod
    def _objectives(
        cls, value: list[ObjectiveSpec] | None, info: ValidationInfo
    ) -> list[ObjectiveSpec] | None:
        if value is None:
            return value
        if info.data.get("metric") is not None or info.data.get("direction") is not None:
            raise ValueError("give either `objectives` or `metric`/`direction`, not both")
        metrics = [o.metric for o in value]
        if len(set(metrics)) < len(metrics):
            raise ValueError(f"the objectives' metrics must differ, got {metrics}")
        return value


class BudgetUpdate(_Request):
    max_trials: int | None = Field(default=None, ge=1, le=100_000)
    max_parallel: int | None = Field(default=None, ge=1, le=1024)


MAX_NOTES_CHARS = 20_000


class StudyUpdate(_Request):
    """Changes to a study: a larger budget resumes a study that used its budget up; `notes`
    replaces the study's notes (markdown, at most `MAX_NOTES_CHARS` characters)."""

    budget: BudgetUpdate | None = None
    notes: Text | None = Field(default=None, max_length=MAX_NOTES_CHARS)

    @model_validator(mode="after")
    def _changes_something(self) -> StudyUpdate:
        if self.budget is None and self.notes is None:
            raise ValueError("give budget, notes or both")
        return self


class BestTrial(_FromRow):
    trial_id: int
    number: int
    value: float
    params: dict[str, Any]


class ParetoTrial(BaseModel):
    """A trial on the study's Pareto front: no feasible trial is at least as good in every
    objective and better in one."""

    trial_id: int
    number: int
    values: list[float]
    params: dict[str, Any]


class StudyPublic(_FromRow):
    id: int
    name: str
    objective: str
    objective_args: dict[str, Any]
    metric: str
    direction: Direction
    space: dict[str, Any]
    strategy: dict[str, Any]
    budget: dict[str, Any]
    pruning: dict[str, Any] | None
    stopping: dict[str, Any] | None
    warm_start: dict[str, Any] | None
    seed: int
    state: StudyState
    stop_kind: StopKind | None = Field(
        default=None,
        description="Why the study ended (None while it has not): budget, target, patience, "
        "ei_threshold, user, or, for a study that ended because its trials failed and should "
        "be shown as failed, not done: all_failed (every trial failed) and failures "
        "(`budget.max_consecutive_failures` trials in a row failed; the study is STOPPED). "
        "`stop_reason` is the sentence to show.",
    )
    stop_reason: str | None
    suggest_error: str | None = Field(
        description="Set while the study's suggestions fail: the reason; leasing skips the "
        "study until `suggest_retry_at` (a growing back-off), then tries again."
    )
    suggest_retry_at: datetime | None
    warnings: list[str] = Field(
        description="What the user should know: recorded while the study ran (suggestion "
        "failures, data fallbacks) and what its specification earns now (a gp budget no "
        "larger than its initial design, a dead parameter)."
    )
    notes: str = Field(default="", description="Markdown kept by the study's owner.")
    datasets: list[StudyDataset] = Field(
        default_factory=list,
        description="The datasets its trials trained on (a fallback is also a warning).",
    )
    counts: dict[str, int]
    n_trials: int
    best: BestTrial | None
    objectives: list[ObjectiveSpec] | None = Field(
        default=None, description="Several objectives (None: the one `metric`/`direction`)."
    )
    constraints: list[ConstraintSpec] | None = None
    pareto: list[ParetoTrial] | None = Field(
        default=None,
        description="With several objectives: the feasible non-dominated completed trials, by "
        "number (`best` is then null). None for a study with one objective.",
    )
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    owner: str | None = Field(
        default=None,
        description="The name of the token that created the study; tokens of that name (and "
        "admins) may change it. None: no owner, only admins change it.",
    )


class StudiesPublic(BaseModel):
    data: list[StudyPublic]
    count: int


DatasetSource = Literal["downloaded", "cache", "path", "bundled", "fallback"]


class DatasetRecord(BaseModel):
    """The data a trial trained on, as its trainer recorded it (objectives.data): where it
    came from (`fallback`: the bundled digits standing in for `fallback_for`, with the
    `reason`), its sizes and the SHA-256 of the arrays actually used."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=100)
    source: DatasetSource
    location: Text = Field(max_length=1000)
    n_train: int = Field(ge=0, le=2**31 - 1)
    n_val: int = Field(ge=0, le=2**31 - 1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    fallback_for: Text | None = Field(default=None, max_length=100)
    reason: Text | None = Field(default=None, max_length=1000)


class StudyDataset(DatasetRecord):
    """A dataset the study's trials trained on, and on how many of them."""

    trials: int = Field(ge=1)


class TrialPublic(_FromRow):
    id: int
    study_id: int
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None
    step: int | None
    seed: int
    attempt: int
    source: str
    suggestion: dict[str, Any]
    worker_id: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_expires_at: datetime | None
    dataset: DatasetRecord | None = None
    duration_seconds: float | None = None
    objective_values: list[float] | None = Field(
        default=None, description="Every objective's value (studies with several objectives)."
    )
    metrics: dict[str, float] | None = None
    feasible: bool | None = Field(
        default=None,
        description="With constraints: whether all held (False also for a trial that failed "
        "as infeasible, e.g. out of memory). None without constraints.",
    )


class TrialLeased(TrialPublic):
    """A trial handed out for evaluation: the lease token must accompany every report."""

    lease_token: str


class TrialsPublic(BaseModel):
    data: list[TrialPublic]
    count: int


class SuggestionsCreate(_Request):
    count: int = Field(default=1, ge=1, le=MAX_SUGGESTIONS)


class SuggestionsPublic(BaseModel):
    data: list[TrialLeased]
    reason: str | None = Field(
        default=None, description="Why fewer trials than asked for came back, if they did."
    )


class LeaseBody(_Request):
    lease_token: str = Field(min_length=1, max_length=64)


class DatasetCreate(LeaseBody):
    dataset: DatasetRecord


class ReportCreate(LeaseBody):
    step: int = Field(ge=0, le=10_000_000)
    value: float
    metrics: Metrics | None = Field(
        default=None, max_length=MAX_METRICS, description="Metrics so far (merged, latest wins)."
    )

    _value_finite = field_validator("value")(_finite)


class ReportPublic(BaseModel):
    action: Literal["continue", "prune"]


class CompleteCreate(LeaseBody):
    """The final result: `value` for a study with one objective, `values` (one per
    objective, in the study's order) for one with several; `metrics` for its constraints."""

    value: float | None = None
    values: list[FiniteFloat] | None = Field(default=None, min_length=1, max_length=MAX_OBJECTIVES)
    metrics: Metrics | None = Field(default=None, max_length=MAX_METRICS)

    @field_validator("value")
    @classmethod
    def _value_finite(cls, value: float | None) -> float | None:
        return None if value is None else _finite(value)


class FailCreate(LeaseBody):
    reason: Text = Field(min_length=1, max_length=4000)
    infeasible: bool = Field(
        default=False,
        description="The configuration cannot run (out of memory, over a limit): the study "
        "learns to avoid it instead of counting it as a bad value.",
    )


class LeaseComplete(CompleteCreate):
    trial_id: int = Field(ge=1, le=2**31 - 1)


class LeaseRequest(_Request):
    complete: LeaseComplete | None = Field(
        default=None,
        description="The worker's previous trial's final value, recorded (as by the complete "
        "route, idempotently) before the next lease: one round trip per trial instead of two.",
    )
    host: str | None = Field(default=None, max_length=200)
    gpu: str | None = Field(default=None, max_length=64)
    pid: int | None = Field(default=None, ge=0, le=2**31 - 1)
    objectives: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=1000
    )
    backend: str | None = Field(
        default=None, max_length=32, description="The worker's Keras backend (e.g. tensorflow)."
    )
    device: str | None = Field(
        default=None, max_length=200, description="What it trains on: a GPU's name, or cpu."
    )
    device_memory_bytes: int | None = Field(default=None, ge=0, le=2**63 - 1)
    unavailable: str | None = Field(
        default=None,
        max_length=1000,
        description="Why this worker cannot train (e.g. a GPU slot whose backend sees no GPU): "
        "the server records it with the worker and answers 204 without leasing.",
    )


class LeasePublic(BaseModel):
    trial: TrialLeased
    study_name: str
    objective: str
    objective_args: dict[str, Any]
    metric: str
    direction: Direction
    lease_seconds: float
    objectives: list[ObjectiveSpec] | None = None
    constraints: list[ConstraintSpec] | None = None


class ObjectivePublic(BaseModel):
    name: str
    description: str
    metric: str
    direction: Direction
    space: dict[str, Any]
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Every parameter the trainer reads with its default arguments: its range "
        "(the space's JSON form) and `default` when it has one. A study's space may leave out "
        "a parameter with a default (the trainer gets the default); naming a parameter not "
        "listed here, or leaving out one without a default, is a 422.",
    )
    args_schema: dict[str, Any]


class ObjectivesPublic(BaseModel):
    data: list[ObjectivePublic]
    count: int


class TrialValuePublic(_FromRow):
    step: int
    value: float


class AttemptPublic(_FromRow):
    number: int
    worker_id: str | None
    outcome: AttemptOutcome
    error: str | None
    started_at: datetime
    ended_at: datetime | None


class ArtifactPublic(_FromRow):
    name: str
    content_type: str
    size: int
    created_at: datetime
    url: str


class TrialDetail(TrialPublic):
    values: list[TrialValuePublic]
    attempts: list[AttemptPublic]
    artifacts: list[ArtifactPublic]


class WorkerPublic(_FromRow):
    id: str
    host: str | None
    gpu: str | None
    pid: int | None
    current_trial_id: int | None
    trials_done: int
    busy_seconds: float
    busy_fraction: float
    started_at: datetime
    last_seen_at: datetime
    backend: str | None = None
    device: str | None = None
    device_memory_bytes: int | None = None
    unavailable: str | None = Field(
        default=None, description="Why this worker leases no trials (None: it does)."
    )


class WorkersPublic(BaseModel):
    data: list[WorkerPublic]
    count: int


class TokenCreate(_Request):
    name: Text = Field(min_length=1, max_length=200)
    role: Role


class TokenPublic(_FromRow):
    id: int
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str


class TokensPublic(BaseModel):
    data: list[TokenPublic]
    count: int


class Health(BaseModel):
    status: Literal["ok"]
    version: str
