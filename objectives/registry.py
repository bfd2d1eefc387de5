"""Finds objectives through the `tunesmith.objectives` entry-point group (built-ins too).

Each entry point names an `Objective` instance. Loading an entry point imports only the
module that defines the instance; trainers import their frameworks lazily.

Installing, upgrading or removing a plugin needs no restart: every `available()` (and so
every `get`, which a worker calls for each trial it leases) first looks whether a folder on
`sys.path` changed (a few `stat` calls); only then are the entry points read again, and an
entry point whose distribution version or target changed is loaded afresh, its package's
modules dropped from `sys.modules` first so the new code is imported (the trainer module
too, on its next use). Its dependencies are not re-imported.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, distributions, entry_points

from objectives.base import Objective

GROUP = "tunesmith.objectives"
EXTERNAL = "external"
OWN_PACKAGES = frozenset({"objectives", "service"})
"""tunesmith's own packages: never dropped from sys.modules by a reload."""

log = logging.getLogger(__name__)


@dataclass
class _Loaded:
    paths: tuple[tuple[str, int], ...] = ()
    origins: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    objectives: dict[str, Objective] = field(default_factory=dict)


_state = _Loaded()
_lock = threading.Lock()


def available() -> dict[str, Objective]:
    """All registered objectives by name, as installed now; a broken plugin is logged and
    skipped."""
    with _lock:
        paths = _path_stamps()
        if paths != _state.paths:
            _reload(paths)
        return dict(_state.objectives)


def get(name: str) -> Objective:
    """Raises KeyError with the known names when `name` is not registered."""
    objs = available()
    if name not in objs:
        raise KeyError(f"unknown objective {name!r}; registered: {sorted(objs)}")
    return objs[name]


def version_of(name: str) -> str | None:
    """`distribution version(s)` of the package that registers `name` (None: unknown)."""
    available()
    origin = _state.origins.get(name)
    return None if origin is None else f"{origin[0]} {origin[1]}"


def _path_stamps() -> tuple[tuple[str, int], ...]:
    """Each folder of sys.path with its modification time: an install, upgrade or removal
    adds or renames a `*.dist-info` folder in one of them."""
    stamps = []
    for entry in sys.path:
        try:
            stamps.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    return tuple(stamps)


def _installed_versions() -> dict[str, str]:
    """Each distribution's version(s) by normalized name. `pip install --target` leaves the
    old `*.dist-info` next to the new one: every version found is listed."""
    found: dict[str, set[str]] = {}
    for dist in distributions():
        found.setdefault(_normalize(dist.name), set()).add(dist.version)
    return {name: ", ".join(sorted(versions)) for name, versions in found.items()}


def _normalize(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _reload(paths: tuple[tuple[str, int], ...]) -> None:
    importlib.invalidate_caches()
    versions = _installed_versions()
    found: dict[str, Objective] = {}
    origins: dict[str, tuple[str, str, str]] = {}
    for ep in entry_points(group=GROUP):
        dist = "" if ep.dist is None else ep.dist.name
        origin = (dist, versions.get(_normalize(dist), ""), ep.value)
        known = _state.objectives.get(ep.name)
        if known is not None and _state.origins.get(ep.name) == origin:
            found[ep.name], origins[ep.name] = known, origin
            continue
        if known is not None:
            log.info("objective %r changed (%s %s): loading it again", ep.name, *origin[:2])
            _forget_modules(ep.module, known.train)
        obj = _load(ep)
        if obj is not None:
            found[ep.name], origins[ep.name] = obj, origin
    _state.paths, _state.origins, _state.objectives = paths, origins, dict(sorted(found.items()))


def _load(ep: EntryPoint) -> Objective | None:
    try:
        obj = ep.load()
    except Exception:
        log.exception("objective entry point %r failed to load; skipping it", ep.value)
        return None
    if not isinstance(obj, Objective):
        log.error("entry point %r is not an objectives.Objective; skipping it", ep.value)
        return None
    if obj.name != ep.name:
        log.warning("entry point %r names objective %r; using %r", ep.name, obj.name, ep.name)
    return obj


def _forget_modules(*targets: object) -> None:
    """Drops the packages of `targets` (module names, "module:function" strings) from
    sys.modules, except tunesmith's own."""
    tops = {t.split(":")[0].split(".")[0] for t in targets if isinstance(t, str)} - OWN_PACKAGES
    for name in [m for m in sys.modules if m.split(".")[0] in tops]:
        del sys.modules[name]
