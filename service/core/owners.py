"""Who may change a study: its owner or an admin; everyone with a token may read it.

Rules:
- A study belongs to the token that created (or imported) it and to every token with the
  same name: an admin names tokens after people or teams, so a person's new token (after a
  revocation, or a second machine) keeps their studies. Only admins create tokens, so a name
  is as trustworthy as the token itself.
- A study created with no token (the example study of `serve --example`) belongs to no one:
  only admins change it.
- Admins may change every study.
- "Change" is every request that alters a study or spends its budget: PATCH, pause, resume,
  stop, enqueue, ask (suggestions), delete, and uploading artifacts without a lease token.
  A trial's reports, heartbeats, complete, fail and release are guarded by its lease token
  instead: whoever holds the lease the owner obtained may tell its result.
An owner never changes after creation, so a check in one transaction holds for the next.
"""

from __future__ import annotations

from service.domain import Principal
from service.errors import Forbidden
from service.store.models import Study


def owns(principal: Principal, study: Study) -> bool:
    if principal.is_admin:
        return True
    if study.owner_token_id is not None and principal.token_id == study.owner_token_id:
        return True
    return study.owner_name is not None and principal.name == study.owner_name


def check_owner(principal: Principal, study: Study) -> None:
    """Raises Forbidden, naming the owner, unless `principal` may change the study."""
    if owns(principal, study):
        return
    if study.owner_name is None:
        raise Forbidden(f"study {study.id} has no owner: only an admin may change it")
    raise Forbidden(
        f"study {study.id} belongs to {study.owner_name!r}: only its owner or an admin may "
        "change it"
    )
