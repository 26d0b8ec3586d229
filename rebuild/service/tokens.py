"""Bearer tokens for the HTTP API's writes: made once, kept only as the sha256 of their secret.

A token reads ``rbv_<43 url-safe characters>`` (``secrets.token_urlsafe(32)``: 256 bits), so a leaked one
is recognisable in a log or a repository scan. The store keeps its sha256, never the secret; a check
hashes what was presented and compares it with the stored hash in constant time. A revoked token stays
in the store (who had which scope, until when) and never checks again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from rebuild.errors import InputError
from rebuild.service.models import Token
from rebuild.service.store import Store

PREFIX = "rbv_"
SCOPES = ("queue",)  # queue: add targets and retry jobs through the API
_SECRET = re.compile(r"rbv_[A-Za-z0-9_-]{43}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAX_PRESENTED = 256  # longer than any token: not even hashed


@dataclass(frozen=True)
class Created:
    """A new token: ``secret`` is shown once, here, and never again."""

    id: int
    name: str
    scopes: tuple[str, ...]
    secret: str


@dataclass(frozen=True)
class Holder:
    """Who presented a valid token."""

    id: int
    name: str
    scopes: tuple[str, ...]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        shown = ", ".join(repr(s) for s in unknown) or "none"
        raise InputError(f"unknown token scope {shown}", f"give --scope with one of: {', '.join(SCOPES)}")
    return tuple(sorted(set(scopes)))


def create(store: Store, scopes: list[str] | tuple[str, ...], name: str | None = None) -> Created:
    """A new token with ``scopes``; its secret is in the result and nowhere else.

    Raises:
        InputError: an unknown scope, or a name that is not ``[A-Za-z0-9._@-]`` (64 at most).
    """
    chosen = _scopes(scopes)
    label = name if name is not None else f"token-{secrets.token_hex(4)}"
    if not _NAME.fullmatch(label):
        raise InputError(f"token name {label!r} is not allowed", "use letters, digits and . _ @ - (64 at most)")
    secret = PREFIX + secrets.token_urlsafe(32)
    with store.session() as s:
        row = Token(name=label, scopes=",".join(chosen), secret_sha256=digest(secret), created_at=time.time())
        s.add(row)
        s.flush()
        return Created(row.id, label, chosen, secret)


def check(store: Store, presented: str) -> Holder | None:
    """The holder of ``presented`` if it is a live token, else None (unknown, malformed or revoked).

    The lookup is by hash, and the found hash is compared again with ``hmac.compare_digest``, so the
    time taken does not depend on how much of a guess matches.
    """
    if len(presented) > MAX_PRESENTED or not _SECRET.fullmatch(presented):
        return None
    wanted = digest(presented)
    with store.session() as s:
        row = s.scalar(select(Token).where(Token.secret_sha256 == wanted))
        if row is None or not hmac.compare_digest(row.secret_sha256, wanted) or row.revoked_at is not None:
            return None
        row.last_used_at = time.time()
        return Holder(row.id, row.name, tuple(row.scopes.split(",")))


def listing(store: Store) -> list[dict[str, Any]]:
    """Every token, oldest first, without any secret (there is none to show)."""
    with store.session() as s:
        return [
            {"id": t.id, "name": t.name, "scopes": t.scopes.split(","), "created_at": t.created_at,
             "last_used_at": t.last_used_at, "revoked_at": t.revoked_at}
            for t in s.scalars(select(Token).order_by(Token.id))
        ]  # fmt: skip


def revoke(store: Store, ref: str) -> dict[str, Any]:
    """Revoke the token with this id or name (a name must name one token).

    Raises:
        InputError: no such token, or the name is ambiguous.
    """
    with store.session() as s:
        where = Token.id == int(ref) if ref.isdigit() and len(ref) < 10 else Token.name == ref
        found = s.scalars(select(Token).where(where)).all()
        if len(found) != 1:
            problem = "no token is" if not found else f"{len(found)} tokens are named"
            raise InputError(f"{problem} {ref!r}", "see: rebuild token ls (revoke by id)")
        token = found[0]
        already = token.revoked_at is not None
        if not already:
            s.execute(update(Token).where(Token.id == token.id).values(revoked_at=time.time()))
        return {"id": token.id, "name": token.name, "revoked": True, "already": already}
