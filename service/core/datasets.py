"""What a trial's dataset record does: the trial keeps it, the study counts its distinct
datasets, and a fallback (the bundled digits standing in for the real data) becomes a study
warning, so it is never silent.

Rules: a trial records its dataset once per attempt, under its live lease; recording the same
record again changes nothing (a retried request). A study keeps at most `MAX_DATASETS`
distinct datasets (by name, source and content hash).
"""

from __future__ import annotations

from typing import Any

from service.core.suggesting import add_warning
from service.schemas import DatasetRecord
from service.store.models import Study, Trial

MAX_DATASETS = 20


def record_dataset(study: Study, trial: Trial, record: DatasetRecord) -> None:
    """Stores `record` on `trial` (whose lease the caller checked) and counts it on `study`."""
    stored = record.model_dump(mode="json")
    if trial.dataset == stored:
        return
    trial.dataset = stored
    study.datasets = _counted(study.datasets or [], stored)
    if record.source == "fallback":
        add_warning(
            study,
            f"trials trained on {record.location} standing in for {record.fallback_for}"
            + (f" ({record.reason})" if record.reason else ""),
        )


def _counted(datasets: list[dict[str, Any]], stored: dict[str, Any]) -> list[dict[str, Any]]:
    key = (stored["name"], stored["source"], stored["sha256"])
    out = []
    found = False
    for entry in datasets:
        if (entry.get("name"), entry.get("source"), entry.get("sha256")) == key:
            entry = {**entry, "trials": int(entry.get("trials", 0)) + 1}
            found = True
        out.append(entry)
    if not found:
        out.append({**stored, "trials": 1})
    return out[-MAX_DATASETS:]
