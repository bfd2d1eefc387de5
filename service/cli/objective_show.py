"""`tunesmith objectives show NAME`: what a study of a registered trainer may set.

Reads the local registry, as `objectives list` does (what this machine's workers would
run): the metric and direction, the arguments (`objective_args`, from the argument schema)
and the parameters the trainer reads (`Objective.parameters_for`) with their ranges and
defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from service.cli.common import CliError


def cmd_objectives_show(args: argparse.Namespace) -> int:
    from objectives import registry

    known = registry.available()
    if args.name not in known:
        raise CliError(f"unknown objective {args.name!r}; registered: {sorted(known)}")
    print("\n".join(describe_lines(known[args.name].describe())))
    print(f"installed from: {registry.version_of(args.name) or 'unknown'}")
    return 0


def describe_lines(desc: Mapping[str, Any]) -> list[str]:
    """An objective's `describe()` as the lines `objectives show` prints."""
    lines = [
        f"{desc['name']}: {desc['description']}",
        f"metric: {desc['metric']} ({desc['direction']})",
        "arguments (objective_args):",
    ]
    properties = desc["args_schema"].get("properties", {})
    lines += [f"  {name}: {_argument(prop)}" for name, prop in properties.items()] or ["  none"]
    lines.append("parameters (space, for the default arguments; one with a default may be left "
                 "out):")
    for name, spec in desc["parameters"].items():
        default = f"default {spec['default']!r}" if "default" in spec else "no default: required"
        lines.append(f"  {name}: {_range(spec)}; {default}")
    return lines


def _argument(prop: Mapping[str, Any]) -> str:
    kinds = [p.get("type", "") for p in prop.get("anyOf", [])] or [prop.get("type", "")]
    if "$ref" in prop:
        kinds = [str(prop["$ref"]).rsplit("/", 1)[-1]]
    if "enum" in prop:
        kinds = ["|".join(str(v) for v in prop["enum"])]
    text = " or ".join(k for k in kinds if k) or "any"
    bounds = [f"{op} {prop[key]}" for key, op in
              (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
               ("exclusiveMaximum", "<")) if key in prop]
    if bounds:
        text += f" ({', '.join(bounds)})"
    if "default" in prop:
        text += f", default {prop['default']!r}"
    if prop.get("description"):
        text += f" - {prop['description']}"
    return text


def _range(spec: Mapping[str, Any]) -> str:
    return _values(spec) + "".join(
        f", only when {parent} in {list(values)}"
        for parent, values in (spec.get("condition") or {}).items()
    )


def _values(spec: Mapping[str, Any]) -> str:
    kind = spec["type"]
    if kind == "categorical":
        return f"categorical {list(spec['choices'])}"
    if kind == "fixed":
        return f"fixed {spec['value']!r}"
    scale = ", log" if spec.get("log") else ""
    step = f", step {spec['step']}" if spec.get("step") is not None else ""
    return f"{kind} [{spec['low']}, {spec['high']}]{scale}{step}"
