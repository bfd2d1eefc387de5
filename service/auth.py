"""API tokens: generation, hashing, and the admin token of a fresh installation.

Only SHA-256 hashes are stored. Tokens are 32 random bytes, so a fast hash is enough:
there is nothing to brute-force that a salt or a slow hash would protect.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import sys
from pathlib import Path

from service import token_files
from service.domain import Role
from service.store import repository as repo
from service.store.db import Database
from service.store.models import ApiToken

log = logging.getLogger(__name__)

TOKEN_PREFIX = "ts_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def write_token_file(path: Path, token: str) -> None:
    """Writes the token readable by its owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)


def create_token(db: Database, *, name: str, role: Role) -> tuple[ApiToken, str]:
    token = generate_token()
    with db.write() as session:
        row = repo.add_token(session, name=name, role=role, token_hash=hash_token(token))
    return row, token


def ensure_admin_token(
    db: Database,
    *,
    env_token: str | None,
    token_file: Path | None,
    server_url: str = "http://127.0.0.1:8000",
) -> None:
    """Makes sure an admin can log in.

    With TUNESMITH_ADMIN_TOKEN set, that token is registered (once). Otherwise, on the first
    start (no admin token in the database), a token is generated, stored hashed, printed once
    and saved (mode 0600) where the CLI and the client look (`save_admin_token`).
    """
    if env_token:
        with db.write() as session:
            row = repo.token_by_hash(session, hash_token(env_token))
            if row is None:
                repo.add_token(
                    session,
                    name="admin (TUNESMITH_ADMIN_TOKEN)",
                    role=Role.ADMIN,
                    token_hash=hash_token(env_token),
                )
            elif row.revoked_at is not None:
                # A revocation is final: the token is not brought back by a restart.
                log.warning(
                    "TUNESMITH_ADMIN_TOKEN was revoked (token %s); it stays revoked: "
                    "set a new one or use another admin token",
                    row.id,
                )
        return
    with db.write() as session:
        if repo.any_admin_token(session):
            return
        token = generate_token()
        repo.add_token(session, name="admin", role=Role.ADMIN, token_hash=hash_token(token))
    notes = save_admin_token(token, token_file=token_file, server_url=server_url)
    print(
        f"tunesmith: created the admin token (shown once; {'; '.join(notes)}):\n  {token}",
        file=sys.stderr,
        flush=True,
    )


def save_admin_token(token: str, *, token_file: Path | None, server_url: str) -> list[str]:
    """Saves a new admin token and says where, as sentences: to `token_file` when one is set,
    else to this server's own file (`token_files.server_file`) and to the default file when
    that holds no token yet. A file that held another token is said to be replaced; the
    default file is never replaced."""
    targets = [token_file] if token_file is not None else [token_files.server_file(server_url)]
    notes = []
    for path in targets:
        replaced = _read(path) not in (None, token)
        write_token_file(path, token)
        notes.append(f"replaced the earlier token in {path}" if replaced else f"saved to {path}")
    if token_file is None:
        default = token_files.default_file()
        if _read(default) is None:
            write_token_file(default, token)
            notes.append(f"also saved to {default}")
        else:
            notes.append(f"{default} holds another server's token and is left as it is")
    return notes


def admin_token_location(*, env_token: str | None, token_file: Path | None,
                         server_url: str) -> str:
    """Where this server's admin token is, for the start line."""
    if env_token:
        return "TUNESMITH_ADMIN_TOKEN"
    if token_file is not None:
        return str(token_file)
    own = token_files.server_file(server_url)
    return str(own) if _read(own) is not None else f"{token_files.default_file()} (or {own})"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def mint_worker_token(db: Database, name: str) -> str:
    """A fresh worker token for this server's local workers; older ones of that name are revoked."""
    token = generate_token()
    with db.write() as session:
        repo.revoke_worker_tokens(session, name)
        repo.add_token(session, name=name, role=Role.WORKER, token_hash=hash_token(token))
    return token
