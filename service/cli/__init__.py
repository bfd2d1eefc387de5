"""The `tunesmith` command line: serve, worker, doctor, study, objectives, token, db.

Client commands find the server at TUNESMITH_URL (default http://127.0.0.1:8000) and the
token in TUNESMITH_TOKEN or the token file, as the Python client does. Every error is one
line on stderr and exit status 1 (2 for bad usage), never a traceback.

Modules: `serve` (serve, db: the server side), `worker` (worker processes), `doctor` (what
workers here would train on), `client_commands` (study, objectives, token), `common` (what
they share). Each command imports what it needs when it runs, so `tunesmith --help` and the
client commands load no server code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service.cli import client_commands, doctor, serve, worker
from service.cli.common import CliError, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunesmith", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve.register(sub)
    worker.register(sub)
    doctor.register(sub)
    client_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported after parsing: `--help` and usage errors exit before any of it loads.
    from pydantic import ValidationError

    from service.client import ApiError, ServerUnavailable
    from service.errors import TunesmithError, field_errors

    try:
        code: int = args.fn(args)
        return code
    except UsageError as exc:
        print(f"tunesmith: error: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        print(f"tunesmith: error: {exc}", file=sys.stderr)
    except ServerUnavailable as exc:
        print(f"tunesmith: error: {exc} (is `tunesmith serve` running?)", file=sys.stderr)
    except (CliError, TunesmithError) as exc:
        print(f"tunesmith: error: {exc}", file=sys.stderr)
    except ValidationError as exc:
        where, message = field_errors(exc)[0]
        print(f"tunesmith: error: {where}: {message}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
