"""Where admin tokens are kept on disk: one file per server, so that a second server (another
directory, another database, another port) never replaces the first one's token.

    ~/.tunesmith/tokens/<host>-<port>   the admin token of the server at that address
    ~/.tunesmith/token                  the first server's token too (the default file);
                                        never replaced by another server's token
    TUNESMITH_TOKEN_FILE                an explicit file instead of both

A server on a loopback or wildcard address (127.0.0.1, localhost, ::1, 0.0.0.0, ::) is keyed
as 127.0.0.1, which is how a client on the same machine reaches it. Client side and light:
the client, the CLI and the server all look here.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""})
DEFAULT_PORTS = {"http": 80, "https": 443}


def home() -> Path:
    return Path.home() / ".tunesmith"


def default_file() -> Path:
    """The shared default file (`~/.tunesmith/token`)."""
    return home() / "token"


def explicit_file() -> Path | None:
    """TUNESMITH_TOKEN_FILE, when set."""
    value = os.environ.get("TUNESMITH_TOKEN_FILE")
    return Path(value).expanduser() if value else None


def server_key(url: str) -> str:
    """`host-port` of a server URL, loopback and wildcard hosts as 127.0.0.1."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "").lower()
    if host in LOCAL_HOSTS:
        host = "127.0.0.1"
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
    return f"{host.replace(':', '_')}-{port}"


def server_file(url: str) -> Path:
    """The file holding the admin token of the server at `url`."""
    return home() / "tokens" / server_key(url)


def lookup_order(url: str) -> list[Path]:
    """Where a client of `url` looks for a token file, first match wins."""
    explicit = explicit_file()
    return [explicit] if explicit is not None else [server_file(url), default_file()]


def find_token(url: str) -> str | None:
    """The first non-empty token of `lookup_order(url)`, or None."""
    for path in lookup_order(url):
        try:
            token = path.read_text().strip()
        except OSError:
            continue
        if token:
            return token
    return None
