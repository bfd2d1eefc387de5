"""The `data` sub-object of a trainer's arguments (`objective_args: {data: {...}}`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DataOptions(BaseModel):
    """Where a trainer's dataset comes from.

    `path`: a dataset file or folder on the worker (see `objectives.data`); a path that does
    not hold the dataset is an error, never a fallback. `require_real`: with no real data
    (offline, download failed), fail the trial with `DataUnavailable` instead of training
    on the bundled fallback.
    """

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(
        default=None,
        description="Dataset file or folder on the worker; default: the Keras cache, "
        "downloading into it when missing.",
    )
    require_real: bool = Field(
        default=False,
        description="Fail the trial instead of falling back to scikit-learn's digits.",
    )
