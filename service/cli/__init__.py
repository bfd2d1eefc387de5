"""The `tunesmith` command line: serve, worker, doctor, study, objectives, token, db.

Client commands find the server at TUNESMITH_URL (default http://127.0.0.1:8000) and the
token in --token-file, TUNESMITH_TOKEN or the token file, as the Python client does. Every
error is one line on stderr (a refused specification: one line per field) and exit status 1
(2 for bad usage), never a traceback; it says what to check or do.

Modules: `serve` (serve, db: the server side), `worker` (the worker supervisor; each worker
process runs `worker_process`), `doctor` (what workers here would train on),
`client_commands` (study, objectives, token), `common` (what they share). Each command
imports what it needs when it runs, so `tunesmith --help` and the client commands load no
server code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service.cli import client_commands, doctor, serve, worker
from service.cli.common import CliError, Parser, UsageError, unreachable


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tunesmith")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    # Typed as the base class: sub-commands register on argparse.ArgumentParser (their
    # parsers are still of class Parser: argparse makes them of the parent's class).
    parser: argparse.ArgumentParser = Parser(prog="tunesmith", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--version", action="version", version=f"tunesmith {package_version()}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(sub)
    worker.register(sub)
    doctor.register(sub)
    client_commands.register(sub)
    return parser


def error_lines(exc: BaseException) -> list[str]:
    """The lines (without the `tunesmith: error: ` prefix) an error is printed as: one, or
    one per field when the server or a schema refused several fields."""
    from pydantic import ValidationError

    from service.client import ApiError
    from service.errors import field_errors

    if isinstance(exc, ApiError) and exc.status == 422 and isinstance(exc.detail, list):
        return exc.problems()
    if isinstance(exc, ValidationError):
        return [f"{where}: {message}" for where, message in field_errors(exc)]
    return [" ".join(str(exc).split())]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported after parsing: `--help` and usage errors exit before any of it loads.
    from pydantic import ValidationError

    from service.client import ApiError, ServerUnavailable
    from service.errors import TunesmithError

    code = 1
    try:
        status: int = args.fn(args)
        return status
    except UsageError as exc:
        lines, code = error_lines(exc), 2
    except ServerUnavailable as exc:
        lines = [unreachable(args, exc)]
    except (ApiError, CliError, TunesmithError, ValidationError) as exc:
        lines = error_lines(exc)
    except KeyboardInterrupt:
        return 130
    for line in lines:
        print(f"tunesmith: error: {line}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
