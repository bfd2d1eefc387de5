"""Client commands of `tunesmith`: study, objectives, token. They talk to a server over
HTTP (service.client) and import nothing of the server's stack."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.cli.common import CliError, client, client_flags, load_spec, print_json, setup_logging
from service.cli.objective_show import cmd_objectives_show
from service.domain import Role, TrialState


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    study = sub.add_parser("study", help="create, list, show, watch and stop studies")
    ssub = study.add_subparsers(dest="study_command", required=True, metavar="COMMAND")
    p = ssub.add_parser("create", help="submit a study specification (YAML or JSON)")
    p.add_argument(
        "-f", "--file", required=True, help="the specification file (YAML or JSON; - for stdin)"
    )
    client_flags(p)
    p.set_defaults(fn=cmd_study_create)
    p = ssub.add_parser("list", help="list studies with their progress and best value")
    p.add_argument("--limit", type=int, default=100, help="show at most this many studies")
    p.add_argument("--json", action="store_true", help="print the server's JSON instead")
    client_flags(p)
    p.set_defaults(fn=cmd_study_list)
    for name, fn, what in (
        ("show", cmd_study_show, "show a study: state, counts, best trial, data, warnings"),
        ("watch", cmd_study_watch, "show a progress bar until the study is done or stopped"),
        ("trials", cmd_study_trials, "list a study's trials"),
    ):
        p = ssub.add_parser(name, help=what)
        p.add_argument("id", type=int, help="the study's id (see tunesmith study list)")
        if name != "watch":
            p.add_argument("--json", action="store_true", help="print the server's JSON instead")
        if name == "trials":
            p.add_argument(
                "--state",
                choices=[s.value for s in TrialState],
                help="only trials in this state (default: all)",
            )
        client_flags(p)
        p.set_defaults(fn=fn)
    p = ssub.add_parser("export", help="print a study with all its trials as JSON")
    p.add_argument("id", type=int, help="the study's id")
    client_flags(p)
    p.set_defaults(fn=cmd_study_export)
    p = ssub.add_parser("import", help="create a study from an exported JSON document")
    p.add_argument(
        "-f", "--file", required=True, help="an exported study (from study export; - for stdin)"
    )
    p.add_argument("--name", help="a new name for the imported study (default: its own)")
    client_flags(p)
    p.set_defaults(fn=cmd_study_import)
    for name, what in (
        ("stop", "end a study: it hands out no more trials"),
        ("pause", "hand out no new trials until resumed"),
        ("resume", "hand out trials again"),
    ):
        p = ssub.add_parser(name, help=what)
        p.add_argument("id", type=int, help="the study's id")
        client_flags(p)
        p.set_defaults(fn=_study_action(name))
    p = ssub.add_parser(
        "delete", help="delete a study with its trials and artifacts (owner or admin)"
    )
    p.add_argument("id", type=int, help="the study's id")
    p.add_argument("--yes", action="store_true", help="really delete: it cannot be undone")
    client_flags(p)
    p.set_defaults(fn=cmd_study_delete)

    objectives = sub.add_parser("objectives", help="list or try registered trainers")
    osub = objectives.add_subparsers(dest="objectives_command", required=True, metavar="COMMAND")
    p = osub.add_parser("list", help="the trainers installed here, with their metric")
    p.set_defaults(fn=cmd_objectives_list)
    p = osub.add_parser(
        "show", help="an objective's metric, arguments and parameters (ranges and defaults)"
    )
    p.add_argument("name", help="a registered objective (see `objectives list`)")
    p.set_defaults(fn=cmd_objectives_show)
    p = osub.add_parser("try", help="train once outside any study and print the metric")
    p.add_argument("name", help="the objective's name (see tunesmith objectives list)")
    p.add_argument("--params", help="JSON configuration over the recipe's defaults")
    p.add_argument("--args", help="JSON objective arguments (default: the objective's own)")
    p.add_argument("--epochs", type=int, help="train this many epochs (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0, help="the trial's random seed")
    p.add_argument(
        "--sample",
        action="store_true",
        help="draw the parameters not given from the default space instead",
    )
    p.add_argument(
        "--artifact-dir", help="where the trainer writes its files (default: a temporary folder)"
    )
    p.set_defaults(fn=cmd_objectives_try)

    token = sub.add_parser("token", help="manage API tokens (admin)")
    tsub = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    p = tsub.add_parser("create", help="mint a token (printed once)")
    p.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in Role],
        help="what the token may do (see README, Security)",
    )
    p.add_argument(
        "--name", required=True, help="who holds it: studies belong to every token of a name"
    )
    client_flags(p)
    p.set_defaults(fn=cmd_token_create)
    p = tsub.add_parser("list", help="list the tokens (never their secret)")
    client_flags(p)
    p.set_defaults(fn=cmd_token_list)
    p = tsub.add_parser("revoke", help="refuse a token from its next request on")
    p.add_argument("id", type=int, help="the token's id (see tunesmith token list)")
    client_flags(p)
    p.set_defaults(fn=cmd_token_revoke)


def cmd_study_create(args: argparse.Namespace) -> int:
    spec = load_spec(args.file)  # a broken file is reported before any token or URL
    with client(args) as api:
        study = api.create_study(spec)
    print(
        f"created study {study.id} ({study.name}): {study.objective}, "
        f"{study.budget['max_trials']} trials, strategy {study.strategy['name']}"
    )
    for warning in study.warnings:
        print(f"warning: {warning}")
    return 0


def cmd_study_list(args: argparse.Namespace) -> int:
    with client(args) as api:
        page = api.list_studies(limit=args.limit)
    if args.json:
        print_json(page.model_dump(mode="json"))
        return 0
    print(f"{'ID':>5}  {'NAME':<28} {'STATE':<8} {'OBJECTIVE':<12} {'DONE':>9}  BEST")
    for s in page.data:
        done = sum(s.counts.get(k, 0) for k in ("complete", "pruned", "failed"))
        best = "-" if s.best is None else f"{s.best.value:.6g}"
        print(
            f"{s.id:>5}  {s.name[:28]:<28} {s.state:<8} {s.objective[:12]:<12} "
            f"{done:>4}/{s.budget['max_trials']:<4}  {best}"
        )
    return 0


def cmd_study_show(args: argparse.Namespace) -> int:
    with client(args) as api:
        study = api.get_study(args.id)
    if args.json:
        print_json(study.model_dump(mode="json"))
        return 0
    print(
        f"study {study.id}: {study.name} [{study.state}]"
        + (f" - {study.stop_reason}" if study.stop_reason else "")
    )
    print(
        f"  objective {study.objective} ({study.metric}, {study.direction}), "
        f"strategy {study.strategy['name']}/{study.strategy.get('acquisition')}"
    )
    print("  trials: " + ", ".join(f"{k} {v}" for k, v in study.counts.items() if v))
    if study.best:
        print(f"  best: {study.best.value:.6g} (trial {study.best.number}) {study.best.params}")
    if study.objectives:
        names = ", ".join(f"{o.metric} ({o.direction})" for o in study.objectives)
        print(f"  objectives: {names}; Pareto front: {len(study.pareto or [])} trial(s)")
        for p in study.pareto or []:
            values = ", ".join(f"{v:.6g}" for v in p.values)
            print(f"    trial {p.number}: [{values}] {p.params}")
    for d in study.datasets:
        stands_in = f" standing in for {d.fallback_for}" if d.fallback_for else ""
        print(
            f"  data: {d.name} ({d.source}{stands_in}: {d.location}; {d.n_train} train / "
            f"{d.n_val} val, sha256 {d.sha256[:12]}) in {d.trials} trial(s)"
        )
    for warning in study.warnings:
        print(f"  warning: {warning}")
    return 0


def cmd_study_watch(args: argparse.Namespace) -> int:
    """Watches for as long as the study runs: a server restart meanwhile is waited out."""
    with client(args, retry_seconds=60.0) as api:
        study = api.wait(args.id, progress=True)
    best = "-" if study.best is None else f"{study.best.value:.6g} {study.best.params}"
    print(f"study {study.id} {study.state}: {study.stop_reason or ''}; best {best}")
    return 0


def _study_action(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        with client(args) as api:
            study = getattr(api, name)(args.id)
        print(f"study {study.id} is {study.state}")
        return 0

    return run


def cmd_study_delete(args: argparse.Namespace) -> int:
    """Deletes only with --yes (no prompt: scripts and people say it the same way). Reads
    nothing first, so a study too broken to show can still be deleted."""
    if not args.yes:
        raise CliError(
            f"deleting study {args.id} removes it with all its trials and their artifacts for "
            "good; repeat with --yes"
        )
    with client(args) as api:
        api.delete_study(args.id)
    print(f"deleted study {args.id} with its trials and artifacts")
    return 0


def cmd_study_trials(args: argparse.Namespace) -> int:
    with client(args) as api:
        trials = api.trials(args.id, state=args.state)
    if args.json:
        print_json([t.model_dump(mode="json") for t in trials])
        return 0
    for t in trials:
        value = "-" if t.value is None else f"{t.value:.6g}"
        print(
            f"{t.number:>5}  {t.state:<9} {value:>12}  {json.dumps(t.params)}"
            + (f"  ({t.error})" if t.error else "")
        )
    return 0


def cmd_study_export(args: argparse.Namespace) -> int:
    with client(args) as api:
        document = api.export_study(args.id)
    print(json.dumps(document, indent=1))
    return 0


def cmd_study_import(args: argparse.Namespace) -> int:
    document = load_spec(args.file)
    with client(args) as api:
        study = api.import_study(document, name=args.name)
    print(f"imported study {study.id} ({study.name}) with {study.n_trials} trials")
    return 0


def cmd_objectives_list(args: argparse.Namespace) -> int:
    from objectives import registry

    for name, obj in registry.available().items():
        print(f"{name:<12} {obj.metric} ({obj.direction}) - {obj.description}")
    return 0


def cmd_objectives_try(args: argparse.Namespace) -> int:
    """Trains once outside any study (`objectives.tryout.run_recipe`): the source recipe's
    defaults, or with --sample a random configuration of the default space."""
    from objectives import registry
    from objectives.data import DataUnavailable
    from objectives.tryout import Sampler, run_recipe

    setup_logging("warning")
    known = registry.available()
    if args.name not in known:
        raise CliError(f"unknown objective {args.name!r}; registered: {sorted(known)}")
    try:
        given = json.loads(args.params) if args.params else {}
        obj_args = json.loads(args.args) if args.args else {}
    except json.JSONDecodeError as exc:
        raise CliError(f"--params/--args is not JSON: {exc}") from None
    sampler: Sampler | None = None
    if args.sample:
        import numpy as np

        from service.space import SearchSpace

        def sampler(space: Any, seed: int) -> dict[str, Any]:
            return SearchSpace.from_spec(space).sample(np.random.default_rng(seed), 1)[0]

    try:
        value = run_recipe(
            args.name,
            params=given,
            args=obj_args,
            epochs=args.epochs,
            seed=args.seed,
            sampler=sampler,
            artifact_dir=Path(args.artifact_dir) if args.artifact_dir else None,
        )
    except (DataUnavailable, ValueError) as exc:
        raise CliError(str(exc)) from None
    return 0 if math.isfinite(value) else 1


def cmd_token_create(args: argparse.Namespace) -> int:
    with client(args) as api:
        created = api.create_token(args.name, args.role)
    print(created.token)
    print(
        f"(token {created.id} '{created.name}', role {created.role}; shown once)",
        file=sys.stderr,
    )
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    with client(args) as api:
        for t in api.tokens():
            state = "revoked" if t.revoked_at else "active"
            print(f"{t.id:>4}  {t.role:<7} {state:<8} {t.name}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with client(args) as api:
        t = api.revoke_token(args.id)
    print(f"revoked token {t.id} ({t.name})")
    return 0
