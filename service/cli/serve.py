"""`tunesmith serve` and `tunesmith db upgrade`: the server side. Its stack (FastAPI,
SQLAlchemy, the optimizer) is imported when one of these commands runs, never at import."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.cli.common import CliError, UsageError, example_spec, gpu_flags, setup_logging

if TYPE_CHECKING:
    from service.config import Settings
    from service.executors import Executor
    from service.executors.local import Slot
    from service.store.db import Database


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the server (and local workers)")
    p.add_argument(
        "--host",
        default=os.environ.get("TUNESMITH_HOST", "127.0.0.1"),
        help="address to listen on (0.0.0.0: every interface; default: TUNESMITH_HOST, else "
        "%(default)s)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("TUNESMITH_PORT", "8000")),
        help="port to listen on (default: TUNESMITH_PORT, else %(default)s)",
    )
    p.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the database (default: TUNESMITH_DATABASE_URL, else "
        "sqlite:///tunesmith.db)",
    )
    p.add_argument(
        "--artifact-dir",
        type=Path,
        help="where trial artifacts are stored (default: TUNESMITH_ARTIFACT_DIR, else "
        "./tunesmith-artifacts)",
    )
    p.add_argument(
        "--lease-seconds",
        type=float,
        help="a trial whose worker sends no heartbeat for this long runs again (default: "
        "TUNESMITH_LEASE_SECONDS, else 60)",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="CPU worker processes (0: API only; default: a worker per GPU; with no GPU, one per "
        "two cores)",
    )
    p.add_argument(
        "--http-workers",
        type=int,
        help="HTTP server processes on the port (default: TUNESMITH_HTTP_WORKERS or 1)",
    )
    gpu_flags(p)
    p.add_argument(
        "--allow-cpu",
        action="store_true",
        help="let GPU workers whose backend sees no GPU train on the CPU (default: they wait)",
    )
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="how workers are started: processes on this machine, or Ray actors",
    )
    p.add_argument("--ray-address", help="existing Ray cluster (default: start a local one)")
    p.add_argument("--example", action="store_true", help="submit the example study if missing")
    p.set_defaults(fn=cmd_serve)

    db = sub.add_parser("db", help="database maintenance")
    dsub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    p = dsub.add_parser("upgrade", help="apply migrations")
    p.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the database (default: TUNESMITH_DATABASE_URL, else "
        "sqlite:///tunesmith.db)",
    )
    p.set_defaults(fn=cmd_db_upgrade)


def _settings(args: argparse.Namespace) -> tuple[Settings, dict[str, Any]]:
    """The server's settings: flags over TUNESMITH_* variables; and the flags given."""
    from service.config import Settings

    overrides: dict[str, Any] = {"host": args.host, "port": args.port}
    for flag in ("database_url", "artifact_dir", "lease_seconds", "http_workers"):
        if getattr(args, flag):
            overrides[flag] = getattr(args, flag)
    return Settings(**overrides), overrides


def _check_port(host: str, port: int) -> None:
    """Refuses, as one line, an address the server could not listen on, before anything
    starts (uvicorn would say so only after the start line, and exit 3)."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host}: {exc.strerror}; check --host") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise CliError(
                f"cannot listen on {host}:{port}: {exc.strerror} (another server there?); "
                "choose another port with --port"
            ) from None


@contextmanager
def _database_errors(url: str) -> Iterator[None]:
    """A database that cannot be opened (unreachable, unknown dialect, driver missing) is
    one line naming it, its password hidden, instead of SQLAlchemy's traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, ImportError) as exc:
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise CliError(
            f"cannot open the database {_without_password(url)}: {reason}; check "
            "--database-url or TUNESMITH_DATABASE_URL"
        ) from None


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


def _open_database(settings: Settings) -> Database:
    """The migrated database, with an admin token (printed once when it is new)."""
    from service.auth import ensure_admin_token
    from service.store.db import Database

    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    db.upgrade()
    ensure_admin_token(
        db,
        env_token=settings.admin_token,
        token_file=settings.token_file,
        server_url=server_url(settings),
    )
    return db


def _submit_example(db: Database) -> None:
    from service.core.studies import create_study
    from service.schemas import StudyCreate
    from service.store import repository as repo

    spec = StudyCreate.model_validate(example_spec())
    with db.read() as session:
        existing = repo.find_study_by_name(session, spec.name)
    if existing is None:
        study_id = create_study(db, spec, owner_token_id=None)
        print(f"tunesmith: submitted the example study {spec.name!r} (id {study_id})", flush=True)


def _plan_slots(args: argparse.Namespace) -> list[Slot] | None:
    """The local workers' slots (None: no local executor); checked before anything starts."""
    if args.workers == 0 or args.executor != "local":
        return None
    from service.executors.local import plan_slots

    return plan_slots(
        gpus=args.gpus, cpu_workers=args.workers, workers_per_gpu=args.workers_per_gpu
    )


def _start_workers(
    args: argparse.Namespace,
    settings: Settings,
    db: Database,
    url: str,
    slots: list[Slot] | None,
) -> tuple[Executor | None, Path | None]:
    """The local (or Ray) workers, started; and their artifact staging folder to remove."""
    from service.auth import mint_worker_token

    if args.workers == 0:
        return None, None
    executor: Executor
    staging: Path | None = None
    if slots is None:  # not the local executor (`_plan_slots`): Ray
        from service.executors.ray import RayExecutor

        executor = RayExecutor(
            server=url,
            token=mint_worker_token(db, f"ray-workers@{socket.gethostname()}"),
            address=args.ray_address,
            gpus=None if args.gpus == "all" else args.gpus,
            cpu_workers=args.workers,
        )
    else:
        from service.executors.local import LocalExecutor

        executor = LocalExecutor(
            server=url,
            token=mint_worker_token(db, f"local-workers@{socket.gethostname()}:{settings.port}"),
            slots=slots,
            # A folder of this server's own: trial ids are only unique per database, and
            # a shared folder would hand one server's files to another's trial.
            artifact_root=(staging := Path(tempfile.mkdtemp(prefix="tunesmith-worker-"))),
            allow_cpu=args.allow_cpu,
        )
    executor.start()
    return executor, staging


def _serve_http(
    settings: Settings, overrides: dict[str, Any], db: Database, executor: Executor | None
) -> None:
    """Serves until stopped; the local workers stop first (they hand back their trials)."""
    import uvicorn

    from service.api.app import create_app
    from service.serving import WorkersFirstServer, WorkersFirstSupervisor

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
        config = uvicorn.Config(
            create_app(settings, db=db), host=settings.host, port=settings.port, log_level="warning"
        )
        WorkersFirstServer(config, executor).run()


def cmd_serve(args: argparse.Namespace) -> int:
    from service.serving import configure_server_process

    if args.executor == "ray" and args.workers_per_gpu != 1:
        raise UsageError("--workers-per-gpu works with the local executor only (Ray: one per GPU)")
    settings, overrides = _settings(args)
    setup_logging(settings.log_level)
    slots = _plan_slots(args)
    _check_port(settings.host, settings.port)
    configure_server_process()
    with _database_errors(settings.database_url):
        db = _open_database(settings)
    if args.example:
        _submit_example(db)
    url = server_url(settings)
    executor, staging = _start_workers(args, settings, db, url, slots)
    print(start_line(settings, url), flush=True)
    try:
        _serve_http(settings, overrides, db, executor)
    finally:
        if executor is not None:
            executor.stop()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return 0


def server_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.port}"


def start_line(settings: Settings, url: str) -> str:
    """`serving on`, with the database and where the admin token is: two servers on one
    machine are told apart by it."""
    from service.auth import admin_token_location

    token = admin_token_location(
        env_token=settings.admin_token, token_file=settings.token_file, server_url=url
    )
    return (
        f"tunesmith: serving on {url}  (database: {database_location(settings.database_url)}; "
        f"admin token: {token}; dashboard: {url}/, API docs: {url}/docs)"
    )


def database_location(database_url: str) -> str:
    """A SQLite file as its absolute path; other URLs without their password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(database_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return str(Path(parsed.database).resolve())
    return parsed.render_as_string(hide_password=True)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from service.config import Settings
    from service.store.db import Database

    settings = Settings(**({"database_url": args.database_url} if args.database_url else {}))
    with _database_errors(settings.database_url):
        db = Database(settings.database_url)
        db.upgrade()
        db.dispose()
    print(f"database {settings.database_url} is up to date")
    return 0
