"""The `tunesmith` command line: serve, worker, study, objectives, token, db.

Client commands find the server at TUNESMITH_URL (default http://127.0.0.1:8000) and the
token in TUNESMITH_TOKEN or the token file, as the Python client does. Every error is one
line on stderr and exit status 1 (2 for bad usage), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from service.client import ApiError, Client, ServerUnavailable
from service.config import Settings
from service.errors import TunesmithError
from service.executors import Executor

EXAMPLE_SPEC = "softmax-digits.yaml"


class CliError(Exception):
    """An error to print as one line."""


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


def load_spec(path: str) -> dict[str, Any]:
    """Reads a study specification from a YAML or JSON file ('-' for stdin)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"{path} is not valid YAML or JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold an object (a study specification)")
    return data


def example_spec() -> dict[str, Any]:
    text = (resources.files("service") / "examples" / EXAMPLE_SPEC).read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


# ---- serve ----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.api.app import create_app
    from service.auth import ensure_admin_token, mint_worker_token
    from service.executors.local import LocalExecutor, plan_slots
    from service.schemas import StudyCreate
    from service.serving import (
        WorkersFirstServer,
        WorkersFirstSupervisor,
        configure_server_process,
    )
    from service.store import repository as repo
    from service.store.db import Database
    from service.studies import create_study

    overrides: dict[str, Any] = {"host": args.host, "port": args.port}
    if args.database_url:
        overrides["database_url"] = args.database_url
    if args.artifact_dir:
        overrides["artifact_dir"] = args.artifact_dir
    if args.lease_seconds:
        overrides["lease_seconds"] = args.lease_seconds
    if args.http_workers:
        overrides["http_workers"] = args.http_workers
    settings = Settings(**overrides)
    _setup_logging(settings.log_level)
    configure_server_process()
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    db.upgrade()
    ensure_admin_token(db, env_token=settings.admin_token, token_file=settings.token_file)
    url = f"http://{settings.host}:{settings.port}"

    if args.example:
        spec = StudyCreate.model_validate(example_spec())
        with db.read() as session:
            existing = repo.find_study_by_name(session, spec.name)
        if existing is None:
            study_id = create_study(db, spec, owner_token_id=None)
            print(
                f"tunesmith: submitted the example study {spec.name!r} (id {study_id})", flush=True
            )

    executor: Executor | None = None
    staging: Path | None = None
    if args.workers != 0:
        if args.executor == "ray":
            from service.executors.ray import RayExecutor

            executor = RayExecutor(
                server=url,
                token=mint_worker_token(db, f"ray-workers@{socket.gethostname()}"),
                address=args.ray_address,
                gpus=args.gpus,
                cpu_workers=args.workers,
            )
        else:
            slots = plan_slots(gpus=args.gpus, cpu_workers=args.workers)
            executor = LocalExecutor(
                server=url,
                token=mint_worker_token(
                    db, f"local-workers@{socket.gethostname()}:{settings.port}"
                ),
                slots=slots,
                # A folder of this server's own: trial ids are only unique per database, and
                # a shared folder would hand one server's files to another's trial.
                artifact_root=(staging := Path(tempfile.mkdtemp(prefix="tunesmith-worker-"))),
            )
        executor.start()
    print(
        f"tunesmith: serving on {url}  (dashboard: {url}/, API docs: {url}/docs; "
        f"admin token in {settings.token_file} or TUNESMITH_ADMIN_TOKEN)",
        flush=True,
    )
    try:
        if settings.http_workers > 1:
            # The processes are spawned: they read these settings from the environment.
            os.environ.update({f"TUNESMITH_{k.upper()}": str(v) for k, v in overrides.items()})
            db.dispose()
            config = uvicorn.Config(
                "service.api.app:create_app_from_env",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=settings.http_workers,
                log_level="warning",
            )
            WorkersFirstSupervisor(config, [config.bind_socket()], executor).run()
        else:
            app = create_app(settings, db=db)
            config = uvicorn.Config(
                app, host=settings.host, port=settings.port, log_level="warning"
            )
            WorkersFirstServer(config, executor).run()
    finally:
        if executor is not None:
            executor.stop()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from service.executors.local import LocalExecutor, plan_slots

    _setup_logging(os.environ.get("TUNESMITH_LOG_LEVEL", "info"))
    url = args.server or os.environ.get("TUNESMITH_URL") or "http://127.0.0.1:8000"
    token = args.token or os.environ.get("TUNESMITH_TOKEN") or _file_token()
    executor = LocalExecutor(
        server=url,
        token=token,
        slots=plan_slots(gpus=args.gpus, cpu_workers=args.cpu_workers),
        artifact_root=args.artifact_root,
        max_trials=args.max_trials,
        idle_timeout=args.idle_timeout,
        objectives=args.objectives,
        restart=args.max_trials is None and args.idle_timeout is None,
    )

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM to this process alone (`docker stop`, `kill PID`) must stop the workers too,
    # not leave them running without their supervisor.
    signal.signal(signal.SIGTERM, terminate)
    executor.start()
    try:
        return executor.wait()
    except KeyboardInterrupt:
        executor.stop()
        return 130


def _file_token() -> str | None:
    from service.client import default_token

    return default_token()


# ---- client commands ------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> Client:
    return Client(getattr(args, "url", None), getattr(args, "token", None), retry_seconds=5.0)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_study_create(args: argparse.Namespace) -> int:
    with _client(args) as client:
        study = client.create_study(load_spec(args.file))
    print(
        f"created study {study.id} ({study.name}): {study.objective}, "
        f"{study.budget['max_trials']} trials, strategy {study.strategy['name']}"
    )
    for warning in study.warnings:
        print(f"warning: {warning}")
    return 0


def cmd_study_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.list_studies(limit=args.limit)
    if args.json:
        _print_json(page.model_dump(mode="json"))
        return 0
    print(f"{'ID':>5}  {'NAME':<28} {'STATE':<8} {'OBJECTIVE':<12} {'DONE':>9}  BEST")
    for s in page.data:
        done = sum(s.counts.get(k, 0) for k in ("complete", "pruned", "failed"))
        best = "-" if s.best is None else f"{s.best.value:.6g}"
        print(
            f"{s.id:>5}  {s.name[:28]:<28} {s.state.value:<8} {s.objective[:12]:<12} "
            f"{done:>4}/{s.budget['max_trials']:<4}  {best}"
        )
    return 0


def cmd_study_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        study = client.get_study(args.id)
    if args.json:
        _print_json(study.model_dump(mode="json"))
        return 0
    print(
        f"study {study.id}: {study.name} [{study.state.value}]"
        + (f" - {study.stop_reason}" if study.stop_reason else "")
    )
    print(
        f"  objective {study.objective} ({study.metric}, {study.direction}), "
        f"strategy {study.strategy['name']}/{study.strategy.get('acquisition')}"
    )
    print("  trials: " + ", ".join(f"{k} {v}" for k, v in study.counts.items() if v))
    if study.best:
        print(f"  best: {study.best.value:.6g} (trial {study.best.number}) {study.best.params}")
    for warning in study.warnings:
        print(f"  warning: {warning}")
    return 0


def cmd_study_watch(args: argparse.Namespace) -> int:
    with _client(args) as client:
        study = client.wait(args.id, progress=True)
    best = "-" if study.best is None else f"{study.best.value:.6g} {study.best.params}"
    print(f"study {study.id} {study.state.value}: {study.stop_reason or ''}; best {best}")
    return 0


def _study_action(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        with _client(args) as client:
            study = getattr(client, name)(args.id)
        print(f"study {study.id} is {study.state.value}")
        return 0

    return run


def cmd_study_trials(args: argparse.Namespace) -> int:
    with _client(args) as client:
        trials = client.trials(args.id, state=args.state)
    if args.json:
        _print_json([t.model_dump(mode="json") for t in trials])
        return 0
    for t in trials:
        value = "-" if t.value is None else f"{t.value:.6g}"
        print(
            f"{t.number:>5}  {t.state.value:<9} {value:>12}  {json.dumps(t.params)}"
            + (f"  ({t.error})" if t.error else "")
        )
    return 0


def cmd_study_export(args: argparse.Namespace) -> int:
    with _client(args) as client:
        document = client.export_study(args.id)
    print(json.dumps(document, indent=1))
    return 0


def cmd_study_import(args: argparse.Namespace) -> int:
    with _client(args) as client:
        study = client.import_study(load_spec(args.file), name=args.name)
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

    _setup_logging("warning")
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
            args.name, params=given, args=obj_args, epochs=args.epochs, seed=args.seed,
            sampler=sampler, artifact_dir=Path(args.artifact_dir) if args.artifact_dir else None,
        )
    except (DataUnavailable, ValueError) as exc:
        raise CliError(str(exc)) from None
    return 0 if math.isfinite(value) else 1


def cmd_token_create(args: argparse.Namespace) -> int:
    with _client(args) as client:
        created = client.create_token(args.name, args.role)
    print(created.token)
    print(
        f"(token {created.id} '{created.name}', role {created.role.value}; shown once)",
        file=sys.stderr,
    )
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for t in client.tokens():
            state = "revoked" if t.revoked_at else "active"
            print(f"{t.id:>4}  {t.role.value:<7} {state:<8} {t.name}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with _client(args) as client:
        t = client.revoke_token(args.id)
    print(f"revoked token {t.id} ({t.name})")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from service.store.db import Database

    settings = Settings(**({"database_url": args.database_url} if args.database_url else {}))
    db = Database(settings.database_url)
    db.upgrade()
    db.dispose()
    print(f"database {settings.database_url} is up to date")
    return 0


# ---- parser ---------------------------------------------------------------------------------


def _gpu_list(text: str) -> list[str]:
    gpus = [g.strip() for g in text.split(",") if g.strip()]
    if not gpus or not all(g.isdigit() for g in gpus):
        raise argparse.ArgumentTypeError(f"expected GPU indices like 0,1; got {text!r}")
    return gpus


def _client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="server URL (default: TUNESMITH_URL or http://127.0.0.1:8000)")
    p.add_argument("--token", help="API token (default: TUNESMITH_TOKEN or the token file)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunesmith", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the server (and local workers)")
    p.add_argument("--host", default=os.environ.get("TUNESMITH_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("TUNESMITH_PORT", "8000")))
    p.add_argument(
        "--database-url", help="default: TUNESMITH_DATABASE_URL or sqlite:///tunesmith.db"
    )
    p.add_argument("--artifact-dir", type=Path)
    p.add_argument("--lease-seconds", type=float)
    p.add_argument("--workers", type=int, help="CPU worker processes (0: API only)")
    p.add_argument(
        "--http-workers",
        type=int,
        help="HTTP server processes on the port (default: TUNESMITH_HTTP_WORKERS or 1)",
    )
    p.add_argument("--gpus", type=_gpu_list, help="one worker per listed GPU, e.g. 0,1")
    p.add_argument("--executor", choices=["local", "ray"], default="local")
    p.add_argument("--ray-address", help="existing Ray cluster (default: start a local one)")
    p.add_argument("--example", action="store_true", help="submit the example study if missing")
    p.set_defaults(fn=cmd_serve)

    p = sub.add_parser("worker", help="run worker processes against a server")
    p.add_argument("--server", help="server URL (default: TUNESMITH_URL)")
    p.add_argument("--token", help="worker token (default: TUNESMITH_TOKEN or the token file)")
    p.add_argument("--gpus", type=_gpu_list, help="one worker per listed GPU, e.g. 0,1")
    p.add_argument("--cpu-workers", type=int, help="CPU worker processes")
    p.add_argument("--max-trials", type=int, help="exit after this many trials (each worker)")
    p.add_argument("--idle-timeout", type=float, help="exit after this many idle seconds")
    p.add_argument("--objective", action="append", dest="objectives", help="only these objectives")
    p.add_argument(
        "--artifact-root",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tunesmith-worker-artifacts",
    )
    p.set_defaults(fn=cmd_worker)

    study = sub.add_parser("study", help="create, list, show, watch and stop studies")
    ssub = study.add_subparsers(dest="study_command", required=True)
    p = ssub.add_parser("create", help="submit a study specification (YAML or JSON)")
    p.add_argument("-f", "--file", required=True)
    _client_flags(p)
    p.set_defaults(fn=cmd_study_create)
    p = ssub.add_parser("list")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    _client_flags(p)
    p.set_defaults(fn=cmd_study_list)
    for name, fn in (
        ("show", cmd_study_show),
        ("watch", cmd_study_watch),
        ("trials", cmd_study_trials),
    ):
        p = ssub.add_parser(name)
        p.add_argument("id", type=int)
        if name != "watch":
            p.add_argument("--json", action="store_true")
        if name == "trials":
            p.add_argument("--state")
        _client_flags(p)
        p.set_defaults(fn=fn)
    p = ssub.add_parser("export", help="print a study with all its trials as JSON")
    p.add_argument("id", type=int)
    _client_flags(p)
    p.set_defaults(fn=cmd_study_export)
    p = ssub.add_parser("import", help="create a study from an exported JSON document")
    p.add_argument("-f", "--file", required=True)
    p.add_argument("--name", help="a new name for the imported study")
    _client_flags(p)
    p.set_defaults(fn=cmd_study_import)
    for name in ("stop", "pause", "resume"):
        p = ssub.add_parser(name)
        p.add_argument("id", type=int)
        _client_flags(p)
        p.set_defaults(fn=_study_action(name))

    objectives = sub.add_parser("objectives", help="list or try registered trainers")
    osub = objectives.add_subparsers(dest="objectives_command", required=True)
    p = osub.add_parser("list")
    p.set_defaults(fn=cmd_objectives_list)
    p = osub.add_parser("try", help="train once outside any study and print the metric")
    p.add_argument("name")
    p.add_argument("--params", help="JSON parameters over the recipe's defaults")
    p.add_argument("--args", help="JSON objective arguments")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample", action="store_true",
                   help="draw the parameters not given from the default space instead")
    p.add_argument("--artifact-dir")
    p.set_defaults(fn=cmd_objectives_try)

    token = sub.add_parser("token", help="manage API tokens (admin)")
    tsub = token.add_subparsers(dest="token_command", required=True)
    p = tsub.add_parser("create")
    p.add_argument("--role", required=True, choices=["admin", "user", "worker", "viewer"])
    p.add_argument("--name", required=True)
    _client_flags(p)
    p.set_defaults(fn=cmd_token_create)
    p = tsub.add_parser("list")
    _client_flags(p)
    p.set_defaults(fn=cmd_token_list)
    p = tsub.add_parser("revoke")
    p.add_argument("id", type=int)
    _client_flags(p)
    p.set_defaults(fn=cmd_token_revoke)

    db = sub.add_parser("db", help="database maintenance")
    dsub = db.add_subparsers(dest="db_command", required=True)
    p = dsub.add_parser("upgrade", help="apply migrations")
    p.add_argument("--database-url")
    p.set_defaults(fn=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.fn(args)
        return code
    except ApiError as exc:
        print(f"tunesmith: error: {exc}", file=sys.stderr)
    except ServerUnavailable as exc:
        print(f"tunesmith: error: {exc} (is `tunesmith serve` running?)", file=sys.stderr)
    except (CliError, TunesmithError) as exc:
        print(f"tunesmith: error: {exc}", file=sys.stderr)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        print(f"tunesmith: error: {loc}: {err['msg']}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
