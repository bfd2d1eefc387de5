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
