"""Signed attestations: the statement a user signs about how they may use vault access."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select

from faceledger import audit
from faceledger.app.governance.common import read_document
from faceledger.catalog import schema as t
from faceledger.clock import as_utc, iso, utcnow
from faceledger.errors import NotFoundError, PermissionDenied

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = ["attest", "has_current_attestation", "DEFAULT_VALID_DAYS"]

#: An attestation is current for a year unless the signer's command says otherwise.
DEFAULT_VALID_DAYS = 365


def _user_id(conn: Connection, name: str) -> int:
    found = conn.scalar(select(t.users.c.id).where(t.users.c.name == name))
    if found is None:
        raise NotFoundError(f"no user named {name!r}; `faceledger users list` shows them")
    return found


def attest(
    lib: Library, actor: Actor, name: str, statement_file: Path,
    valid_days: int = DEFAULT_VALID_DAYS,
) -> dict[str, Any]:  # fmt: skip
    """Record ``name``'s signed statement (its text and SHA-256), valid for ``valid_days``."""
    lib.authorize(actor, "attest")
    # A signature is personal: only an admin may record a statement signed on paper by another.
    if name != actor.name and actor.role != "admin":
        raise PermissionDenied(
            f"{actor.name!r} may sign an attestation only as themself, not as {name!r}"
        )
    if valid_days < 1:
        raise PermissionDenied("an attestation must be valid for at least one day")
    text, digest = read_document(statement_file, "statement")
    now = utcnow()
    expires = now + timedelta(days=valid_days)
    with lib.writing() as conn:
        user_id = _user_id(conn, name)
        new_id = conn.execute(
            insert(t.attestations).values(
                user_id=user_id, statement=text, sha256=digest, signed_at=now, expires_at=expires
            )
        ).inserted_primary_key[0]
        audit.append(conn, actor.name, "attest", {"attestations": [new_id]},
                     {"user": name, "sha256": digest, "expires_at": iso(expires)})  # fmt: skip
    return {"attestation": new_id, "user": name, "sha256": digest, "signed_at": iso(now),
            "expires_at": iso(expires), "recorded_by": actor.name}  # fmt: skip


def has_current_attestation(conn: Connection, user: str) -> bool:
    """Whether ``user`` has signed an attestation that has not expired."""
    now = as_utc(utcnow())
    rows = conn.execute(
        select(t.attestations.c.expires_at)
        .select_from(t.attestations.join(t.users))
        .where(t.users.c.name == user, t.users.c.disabled.is_(False))
    ).scalars().all()  # fmt: skip
    # Compared in Python: SQLite returns naive datetimes, which as_utc reads as UTC.
    return any(expires is None or as_utc(expires) > now for expires in rows)
