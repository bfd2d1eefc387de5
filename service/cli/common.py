"""What every `tunesmith` command shares: one-line errors, the parser and its help, spec
files, the client with its URL and token, output.

Nothing heavy is imported here: `tunesmith --help` and the client commands must start fast
on a remote machine that has only the client's dependencies.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

if TYPE_CHECKING:
    from service.client import Client, ServerUnavailable

EXAMPLE_SPEC = "softmax-digits.yaml"


class CliError(Exception):
    """An error to print as one line (exit status 1)."""


class UsageError(CliError):
    """Flags that do not go together (exit status 2, as argparse's own usage errors)."""


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help with each option's default appended, unless the help already says
    what the default is or there is none (None, a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default" in text
            or not action.option_strings
            or action.default in (None, False, argparse.SUPPRESS)
        ):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error of the
    command, and whose help lists defaults (sub-commands' parsers are of this class too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Migrations log each step at INFO, around the admin token `serve` prints once.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def load_spec(path: str) -> dict[str, Any]:
    """Reads a study specification from a YAML or JSON file ('-' for stdin)."""
    import yaml

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(yaml_error(path, exc)) from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold an object (a study specification)")
    return data


def yaml_error(path: str, exc: Exception) -> str:
    """A YAML (or JSON) syntax error as one line: `FILE:LINE:COLUMN: ...` (as compilers and
    editors write it), the problem, and where the construct it breaks began."""
    import yaml

    name = "<stdin>" if path == "-" else path
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"{name}: not valid YAML or JSON: {' '.join(str(exc).split())}"
    mark = exc.problem_mark
    text = f"{name}:{mark.line + 1}:{mark.column + 1}: not valid YAML or JSON: {exc.problem}"
    if exc.context and exc.context_mark is not None:
        start = exc.context_mark
        text += f" ({exc.context} started at line {start.line + 1}, column {start.column + 1})"
    return text


def example_spec() -> dict[str, Any]:
    import yaml

    text = (resources.files("service") / "examples" / EXAMPLE_SPEC).read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url", help="server URL (default: TUNESMITH_URL, else http://127.0.0.1:8000)"
    )
    token_flags(p)


def token_flags(p: argparse.ArgumentParser) -> None:
    """--token-file and --token (which other users can read in `ps`: prefer the file or
    TUNESMITH_TOKEN)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="read the API token from FILE (default: TUNESMITH_TOKEN, else the token file "
        "`tunesmith serve` wrote)",
    )
    group.add_argument(
        "--token",
        help="the API token itself (visible to other users in `ps`: prefer --token-file or "
        "TUNESMITH_TOKEN)",
    )


def resolve_token(args: argparse.Namespace, url: str) -> tuple[str, str]:
    """The token and where it came from: --token, --token-file, TUNESMITH_TOKEN, the token
    files of the server at `url`. Raises CliError naming every place looked at when there
    is none."""
    from service.client import find_token

    if getattr(args, "token", None):
        return args.token, "--token"
    path: Path | None = getattr(args, "token_file", None)
    if path is not None:
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read --token-file {path}: {exc.strerror}") from None
        if not token:
            raise CliError(f"--token-file {path} is empty; write the API token into it")
        return token, f"--token-file {path}"
    found, where = find_token(url)
    if found is None:
        raise CliError(
            f"no API token: no --token-file or --token given, {where}; pass --token-file FILE "
            "or set TUNESMITH_TOKEN (an admin mints tokens with `tunesmith token create`)"
        )
    return found, where


def url_source(args: argparse.Namespace) -> str:
    """Where the server URL came from, as a user would change it."""
    flag = "server" if hasattr(args, "server") else "url"
    if getattr(args, flag, None):
        return f"--{flag}"
    if os.environ.get("TUNESMITH_URL"):
        return "TUNESMITH_URL"
    return "the default URL (set --url or TUNESMITH_URL)"


def unreachable(args: argparse.Namespace, exc: ServerUnavailable) -> str:
    """A connection failure, with what to check."""
    return (
        f"cannot reach {exc.url} ({exc.reason}); check the host and port in "
        f"{url_source(args)} and that `tunesmith serve` is running there"
    )


def client(args: argparse.Namespace, *, retry_seconds: float = 5.0) -> Client:
    """The client for a command's --url and token. Connection errors before the server's
    first answer fail after CONNECT_RETRY_S (a wrong URL or port); after it, they are
    retried for `retry_seconds` (a server restarting)."""
    from service.client import DEFAULT_URL, Client, InvalidUrl, normalise_url

    try:
        url = normalise_url(
            getattr(args, "url", None) or os.environ.get("TUNESMITH_URL") or DEFAULT_URL
        )
    except InvalidUrl as exc:
        raise CliError(f"{url_source(args)} {exc}") from None
    token, source = resolve_token(args, url)
    return Client(
        url,
        token,
        token_source=source,
        retry_seconds=retry_seconds,
        connect_retry_seconds=CONNECT_RETRY_S,
    )


CONNECT_RETRY_S = 1.0
"""How long a command retries a server that has not answered yet: a connection attempt
waits at most service.client.CONNECT_TIMEOUT_S, so a wrong URL fails within about 3 s."""


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def gpu_request(text: str) -> list[str] | Literal["all"]:
    """`--gpus`: "all", or comma-separated GPU indices, GPU-<uuid>s and MIG-<uuid>s."""
    from service.executors.gpus import ALL, parse_selectors

    if text.strip() == ALL:
        return ALL
    try:
        return parse_selectors(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; expected e.g. 0,1 or all") from None


def gpu_flags(p: argparse.ArgumentParser) -> None:
    """--gpus and --workers-per-gpu (rules: service.executors.gpus)."""
    p.add_argument(
        "--gpus",
        type=gpu_request,
        help="GPUs to start workers on: all (default), or indices, GPU-/MIG- UUIDs like 0,1; "
        "only GPUs in CUDA_VISIBLE_DEVICES when it is set",
    )
    p.add_argument(
        "--workers-per-gpu",
        type=positive_int,
        default=1,
        help="worker processes sharing each GPU (default 1)",
    )


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1; got {text!r}")
    return value
