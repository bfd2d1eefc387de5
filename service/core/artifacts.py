"""Artifacts: who may upload one, which names are valid, which type is served, where the
bytes live.

Rules:
- Upload: the study's owner (or an admin) may upload to any of its trials; anyone else needs
  the trial's live lease token (`X-Lease-Token`): none is a Forbidden, a wrong, stale or
  expired one a Conflict. A worker therefore writes only to the trial it holds.
- Names are relative paths: 1 to 300 characters of letters, digits, `_`, `-`, `.` and `/`
  between segments; no empty, `.` or `..` segment (so no leading, trailing or doubled `/`),
  no backslash, space or control character. Anything else is an InvalidRequest naming
  `name`; names are checked, never rewritten, so a name means one file.
- Types: the name's extension decides among the allow-list (png, jpeg, gif, webp, csv,
  json, txt/log); a name with no listed extension keeps a given type only when it is on the
  allow-list; everything else, TensorBoard event files (`events.out.tfevents.*`) included,
  is stored as `application/octet-stream` and served as a download (attachment), never
  rendered. The type is checked again when served, so a row stored before these rules
  (say `text/html`) is served as a download too.
- Files live at `<artifact_dir>/<trial id>/<name>`. The bytes are written to a staging file
  under `<artifact_dir>/.incoming/` and moved into place only once the upload is complete
  and accepted, so a refused or broken upload leaves nothing. A name that would turn a file
  into a folder or back (`a` next to `a/b`) is a Conflict.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from service.core import machine
from service.core.owners import owns
from service.domain import Principal
from service.errors import Conflict, Forbidden, InvalidRequest
from service.store.models import Study, Trial

MAX_NAME = 300
SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")
OCTET_STREAM = "application/octet-stream"
TYPES_BY_EXTENSION = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "log": "text/plain; charset=utf-8",
}
INLINE_TYPES = frozenset(TYPES_BY_EXTENSION.values())
_BASE_TYPES = {t.split(";")[0]: t for t in INLINE_TYPES}
LEASE_HEADER = "X-Lease-Token"


def check_name(name: str) -> str:
    """Returns `name` when it is a valid artifact name; raises InvalidRequest otherwise."""
    segments = name.split("/")
    if len(name) > MAX_NAME or not all(
        SEGMENT.match(s) and s not in (".", "..") for s in segments
    ):
        raise InvalidRequest(
            f"name: {name[:MAX_NAME + 1]!r} is not a valid artifact name (1-{MAX_NAME} "
            "characters: letters, digits, '_', '-', '.', and '/' between segments; no '.' or "
            "'..' segment)",
            field="name",
        )
    return name


def stored_type(name: str, given: str | None) -> str:
    """The content type an upload is stored with (see the module's rules)."""
    last = name.rsplit("/", 1)[-1]
    extension = last.rpartition(".")[2].lower() if "." in last else ""
    if extension in TYPES_BY_EXTENSION:
        return TYPES_BY_EXTENSION[extension]
    base = (given or "").split(";")[0].strip().lower()
    return _BASE_TYPES.get(base, OCTET_STREAM)


def served_type(stored: str) -> tuple[str, bool]:
    """(the type to serve, whether it may be shown inline) for a stored content type."""
    return (stored, True) if stored in INLINE_TYPES else (OCTET_STREAM, False)


def check_upload(
    principal: Principal, study: Study, trial: Trial, lease_token: str | None, now: datetime
) -> None:
    """Raises Forbidden or Conflict unless `principal` may upload to `trial` (module rules)."""
    if owns(principal, study):
        return
    if lease_token is None:
        raise Forbidden(
            f"uploading to trial {trial.id} needs its lease token ({LEASE_HEADER} header) "
            f"or ownership of study {study.id}"
        )
    machine.check_lease(trial, lease_token, now)


class ArtifactFiles:
    """The artifact folder: staging files, files in place, and their removal."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, trial_id: int, name: str) -> Path:
        return self.root / str(trial_id) / check_name(name)

    @contextmanager
    def staging(self) -> Iterator[tuple[Path, BinaryIO]]:
        """A new staging file, open for writing; removed on exit unless `place`d."""
        incoming = self.root / ".incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        fd, raw = tempfile.mkstemp(dir=incoming, prefix="upload-")
        path = Path(raw)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield path, fh
        finally:
            path.unlink(missing_ok=True)

    def place(self, staged: Path, trial_id: int, name: str) -> None:
        """Moves a complete staging file to the artifact's place (replacing an older one)."""
        target = self.path(trial_id, name)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise Conflict(
                f"artifact name {name!r} clashes with another artifact of trial {trial_id}: "
                "one name cannot be both a file and a folder"
            ) from None

    def remove_trials(self, trial_ids: Iterable[int]) -> None:
        """Removes every file of these trials (missing folders are fine)."""
        for trial_id in trial_ids:
            shutil.rmtree(self.root / str(trial_id), ignore_errors=True)
