"""Worker ids and the tokens that hold them: a lease goes only to the token that took it.

Rules:
- A worker id belongs to the token that first leases under it. Afterwards only that token
  leases under the id; any other token, an admin's included, gets Forbidden (403) and never
  the holder's trial or lease token. Trials are leased per worker id, so a lease (and its
  token) reaches only the worker token that took it.
- When the holding token is revoked, the next token to lease under the id takes it over (a
  worker machine given a new token keeps its id).
- Worker ids from before this rule, held by no token, go to the next token leasing under
  them.
"""

from __future__ import annotations

import time

from service.domain import Principal
from service.errors import Forbidden
from service.store import repository as repo
from service.store.db import Database


def claim_worker_id(db: Database, worker_id: str, principal: Principal) -> None:
    """Makes sure `principal` holds `worker_id` (taking it when it is free); raises
    Forbidden when another live token holds it. One read when the caller holds it already."""
    with db.read() as session:
        holder = repo.worker_token(session, worker_id)
    if holder is not None and holder[0] == principal.token_id:
        return
    if holder is None or not holder[1]:
        with db.write() as session:
            if repo.bind_worker(session, worker_id, principal.token_id) == principal.token_id:
                return
    raise Forbidden(
        f"worker id {worker_id!r} is held by another token; lease under an id of your own"
    )


class WorkerIdClaims:
    """`claim_worker_id`, remembering for `ttl` seconds which token it confirmed for which
    worker id, so a worker's steady leases skip that read (one transaction per lease).

    Safe because a binding only moves when its token is revoked, and a revoked token is
    refused by authentication first (in this process at once, in others within the same
    `token_cache_seconds`). `ttl` 0 turns the memory off.
    """

    _MAX_ENTRIES = 100_000

    def __init__(self, db: Database, ttl: float) -> None:
        self.db, self.ttl = db, ttl
        self._until: dict[tuple[str, int], float] = {}

    def claim(self, worker_id: str, principal: Principal) -> None:
        key = (worker_id, principal.token_id)
        now = time.monotonic()
        if self._until.get(key, 0.0) > now:
            return
        claim_worker_id(self.db, worker_id, principal)
        if self.ttl > 0:
            if len(self._until) >= self._MAX_ENTRIES:
                self._until.clear()
            self._until[key] = now + self.ttl
