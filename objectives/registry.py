"""Finds objectives through the `tunesmith.objectives` entry-point group (built-ins too).

Each entry point names an `Objective` instance. Loading an entry point imports only the
module that defines the instance; trainers import their frameworks lazily.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib.metadata import entry_points

from objectives.base import Objective

GROUP = "tunesmith.objectives"
EXTERNAL = "external"

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def available() -> dict[str, Objective]:
    """All registered objectives by name; a broken plugin is logged and skipped."""
    found: dict[str, Objective] = {}
    for ep in entry_points(group=GROUP):
        try:
            obj = ep.load()
        except Exception:
            log.exception("objective entry point %r failed to load; skipping it", ep.value)
            continue
        if not isinstance(obj, Objective):
            log.error("entry point %r is not an objectives.Objective; skipping it", ep.value)
            continue
        if obj.name != ep.name:
            log.warning("entry point %r names objective %r; using %r", ep.name, obj.name, ep.name)
        found[ep.name] = obj
    return dict(sorted(found.items()))


def get(name: str) -> Objective:
    """Raises KeyError with the known names when `name` is not registered."""
    objs = available()
    if name not in objs:
        raise KeyError(f"unknown objective {name!r}; registered: {sorted(objs)}")
    return objs[name]
