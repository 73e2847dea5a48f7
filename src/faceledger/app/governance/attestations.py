"""Signed attestations: the statement a user signs about how they may use vault access."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from faceledger import audit
from faceledger.app.governance.common import read_document
from faceledger.catalog import users as catalog_users
from faceledger.clock import as_utc, iso, utcnow
from faceledger.errors import BadOptionError, NotFoundError, PermissionDenied

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = [
    "attest",
    "attest_text",
    "revoke_attestations",
    "has_current_attestation",
    "DEFAULT_VALID_DAYS",
]

#: An attestation is current for a year unless the signer's command says otherwise.
DEFAULT_VALID_DAYS = 365


def _user_id(conn: Connection, name: str) -> int:
    found = catalog_users.user_id(conn, name)
    if found is None:
        raise NotFoundError(f"no user named {name!r}; `faceledger users list` shows them")
    return found


def attest(
    lib: Library, actor: Actor, name: str, statement_file: Path,
    valid_days: int = DEFAULT_VALID_DAYS,
) -> dict[str, Any]:  # fmt: skip
    """Record ``name``'s signed statement (its text and SHA-256), valid for ``valid_days``."""
    lib.authorize(actor, "attest")
    text, digest = read_document(statement_file, "statement")
    return _record(lib, actor, name, text, digest, valid_days)


def attest_text(
    lib: Library, actor: Actor, name: str, statement: str, valid_days: int = DEFAULT_VALID_DAYS
) -> dict[str, Any]:
    """Record a statement signed in the console (its UTF-8 text and SHA-256), like attest."""
    lib.authorize(actor, "attest")
    if not statement.strip():
        raise BadOptionError("the statement is empty: write what you attest to")
    return _record(lib, actor, name, statement,
                   hashlib.sha256(statement.encode("utf-8")).hexdigest(), valid_days)  # fmt: skip


def _record(lib: Library, actor: Actor, name: str, text: str, digest: str,
            valid_days: int) -> dict[str, Any]:  # fmt: skip
    # A signature is personal: each user signs in person (acting as themself, with their own
    # key or in their console session), never an admin on their behalf.
    if name != actor.name:
        raise PermissionDenied(
            f"{actor.name!r} may sign an attestation only as themself, not as {name!r}: "
            f"{name} signs it in person, with their own API key"
        )
    if valid_days < 1:
        raise PermissionDenied("an attestation must be valid for at least one day")
    now = utcnow()
    expires = now + timedelta(days=valid_days)
    with lib.writing() as conn:
        user_id = _user_id(conn, name)
        new_id = catalog_users.insert_attestation(conn, user_id, text, digest, now, expires)
        audit.append(conn, actor.name, "attest", {"attestations": [new_id]},
                     {"user": name, "sha256": digest, "expires_at": iso(expires)})  # fmt: skip
    return {"attestation": new_id, "user": name, "sha256": digest, "signed_at": iso(now),
            "expires_at": iso(expires), "recorded_by": actor.name}  # fmt: skip


def revoke_attestations(lib: Library, actor: Actor, name: str, reason: str) -> dict[str, Any]:
    """End ``name``'s current attestations now (an admin's decision, audited with its reason);
    their vault access ends with them until they sign a new one."""
    lib.authorize(actor, "users.manage")
    if not reason.strip():
        raise BadOptionError("say why the attestation is revoked (the reason is audited)")
    now = utcnow()
    with lib.writing() as conn:
        user_id = _user_id(conn, name)
        ids = catalog_users.expire_attestations(conn, user_id, now)
        audit.append(conn, actor.name, "attest.revoke", {"attestations": ids},
                     {"user": name, "reason": reason})  # fmt: skip
    return {"user": name, "revoked": ids, "revoked_at": iso(now), "reason": reason,
            "revoked_by": actor.name}  # fmt: skip


def has_current_attestation(conn: Connection, user: str) -> bool:
    """Whether ``user`` has signed an attestation that has not expired."""
    now = as_utc(utcnow())
    rows = catalog_users.attestation_expiries(conn, user)
    # Compared in Python: SQLite returns naive datetimes, which as_utc reads as UTC.
    return any(expires is None or as_utc(expires) > now for expires in rows)
