"""What every `tunesmith` command shares: one-line errors, spec files, the client, output.

Nothing heavy is imported here: `tunesmith --help` and the client commands must start fast
on a remote machine that has only the client's dependencies.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from service.client import Client

EXAMPLE_SPEC = "softmax-digits.yaml"


class CliError(Exception):
    """An error to print as one line (exit status 1)."""


class UsageError(CliError):
    """Flags that do not go together (exit status 2, as argparse's own usage errors)."""


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


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
        raise CliError(f"{path} is not valid YAML or JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold an object (a study specification)")
    return data


def example_spec() -> dict[str, Any]:
    import yaml

    text = (resources.files("service") / "examples" / EXAMPLE_SPEC).read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="server URL (default: TUNESMITH_URL or http://127.0.0.1:8000)")
    p.add_argument("--token", help="API token (default: TUNESMITH_TOKEN or the token file)")


def client(args: argparse.Namespace) -> Client:
    from service.client import Client

    return Client(getattr(args, "url", None), getattr(args, "token", None), retry_seconds=5.0)


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
