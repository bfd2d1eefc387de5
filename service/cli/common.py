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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.client import Client

EXAMPLE_SPEC = "softmax-digits.yaml"


class CliError(Exception):
    """An error to print as one line."""


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


def gpu_list(text: str) -> list[str]:
    """`--gpus`: comma-separated GPU indices."""
    gpus = [g.strip() for g in text.split(",") if g.strip()]
    if not gpus or not all(g.isdigit() for g in gpus):
        raise argparse.ArgumentTypeError(f"expected GPU indices like 0,1; got {text!r}")
    return gpus
