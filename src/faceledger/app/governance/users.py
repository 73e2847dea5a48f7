"""Users, their roles, and API keys (shown once, stored only as argon2 hashes)."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import Connection

from faceledger import audit
from faceledger.app.governance.attestations import has_current_attestation
from faceledger.catalog import users as catalog_users
from faceledger.catalog.users import User
from faceledger.clock import iso, utcnow
from faceledger.errors import (
    BadOptionError,
    ConflictError,
    NotFoundError,
    PermissionDenied,
)
from faceledger.policy import CUSTOMER_TYPES, ROLES

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = [
    "add_user",
    "list_users",
    "disable_user",
    "new_api_key",
    "user_for_api_key",
    "key_prefix",
    "verify_api_key",
    "active_key_user",
    "acting_user",
]

KEY_PREFIX = "flk"
#: Longest API key looked at; issued keys are 56 characters.
KEY_MAX_CHARS = 128
_hasher = PasswordHasher()
#: (hasher, hash of a random secret): what a key with no matching prefix is verified against.
_dummy: tuple[PasswordHasher, str] | None = None


def _check_region(region: str) -> str:
    country, _, sub = region.partition("-")
    if not (len(country) == 2 and country.isalpha() and (not sub or 1 <= len(sub) <= 3)):
        raise BadOptionError(f"{region!r} is not a region code; write 'FR' or 'US-IL'")
    return region.upper()


def _user_row(conn: Connection, name: str) -> User:
    row = catalog_users.user_by_name(conn, name)
    if row is None:
        raise NotFoundError(f"no user named {name!r}; `faceledger users list` shows them")
    return row


def add_user(
    lib: Library, actor: Actor, name: str, role: str,
    customer_type: str | None = None, region: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Create a user with a role (and, for customers, a customer type and region)."""
    lib.authorize(actor, "users.manage")
    if not name or len(name) > 64 or not name.isprintable():
        raise BadOptionError("a user name is 1-64 printable characters")
    if role not in ROLES:
        raise BadOptionError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if customer_type is not None and customer_type not in CUSTOMER_TYPES:
        raise BadOptionError(
            f"customer type must be one of {', '.join(CUSTOMER_TYPES)}, not {customer_type!r}"
        )
    region = _check_region(region) if region else None
    with lib.writing() as conn:
        if catalog_users.user_id(conn, name) is not None:
            raise ConflictError(f"a user named {name!r} already exists")
        user_id = catalog_users.insert_user(conn, name, role, utcnow(), customer_type, region)
        details = {"name": name, "role": role, "customer_type": customer_type, "region": region}
        audit.append(conn, actor.name, "users.add", {"users": [user_id]}, details)
    return {"id": user_id, **details}


def list_users(lib: Library, actor: Actor) -> list[dict[str, Any]]:
    """Every user with role, customer type, region, state, active keys and attestation."""
    lib.authorize(actor, "users.list")
    with lib.catalog.engine.connect() as conn:
        keys = catalog_users.active_key_counts(conn)
        rows = catalog_users.all_users(conn)
        return [
            {"id": r.id, "name": r.name, "role": r.role,
             "customer_type": r.customer_type, "region": r.region,
             "disabled": r.disabled, "created_at": iso(r.created_at),
             "api_keys": keys.get(r.id, 0),
             "attested": has_current_attestation(conn, r.name)}
            for r in rows
        ]  # fmt: skip


def disable_user(lib: Library, actor: Actor, name: str) -> dict[str, Any]:
    """Disable a user and revoke their API keys (the row stays: the audit log names them)."""
    lib.authorize(actor, "users.manage")
    with lib.writing() as conn:
        row = _user_row(conn, name)
        if row.disabled:
            return {"name": name, "disabled": True, "changed": False, "keys_revoked": 0}
        if row.role == "admin":
            admins = catalog_users.enabled_admins(conn)
            if admins <= 1:
                raise PermissionDenied(
                    f"{name!r} is the last enabled admin: add another admin first"
                )
        now = utcnow()
        catalog_users.disable_user(conn, row.id)
        revoked = catalog_users.revoke_keys(conn, row.id, now)
        audit.append(conn, actor.name, "users.disable", {"users": [row.id]},
                     {"name": name, "keys_revoked": revoked})  # fmt: skip
    return {"name": name, "disabled": True, "changed": True, "keys_revoked": revoked}


def new_api_key(lib: Library, actor: Actor, name: str) -> dict[str, Any]:
    """A new API key for ``name`` (earlier keys are revoked); the key is returned only here."""
    lib.authorize(actor, "users.manage")
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    digest = _hasher.hash(key)
    with lib.writing() as conn:
        row = _user_row(conn, name)
        if row.disabled:
            raise PermissionDenied(f"user {name!r} is disabled: a key for them would not work")
        now = utcnow()
        revoked = catalog_users.revoke_keys(conn, row.id, now)
        key_id = catalog_users.insert_api_key(conn, row.id, prefix, digest, now)
        audit.append(conn, actor.name, "users.key", {"users": [row.id], "api_keys": [key_id]},
                     {"name": name, "prefix": prefix, "revoked": revoked})  # fmt: skip
    return {"name": name, "prefix": prefix, "api_key": key, "keys_revoked": revoked,
            "note": "shown once: store it now, faceledger keeps only its hash"}  # fmt: skip


def key_prefix(key: str) -> str | None:
    """The lookup prefix of a key shaped like an issued one (``flk_<8 hex>_<secret>``), or None.

    Checked without touching the database, so a malformed key costs nothing.
    """
    parts = key.split("_", 2)
    if len(key) > KEY_MAX_CHARS or len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[2]:
        return None
    prefix = parts[1]
    if len(prefix) != 8 or any(c not in "0123456789abcdef" for c in prefix):
        return None
    return prefix


def _dummy_hash() -> str:
    global _dummy
    if _dummy is None or _dummy[0] is not _hasher:
        _dummy = (_hasher, _hasher.hash(secrets.token_urlsafe(32)))
    return _dummy[1]


def verify_api_key(conn: Connection, key: str) -> tuple[int, str] | None:
    """(key id, user name) of the active key ``key`` of an enabled user, or None.

    A well-formed key costs one argon2 verification whether or not its prefix is known (an
    unknown prefix is verified against a dummy hash), so the time taken does not tell a caller
    which prefixes exist. Callers must bound how often this runs: see the service's auth.
    """
    prefix = key_prefix(key)
    if prefix is None:
        return None
    rows = catalog_users.active_keys_with_prefix(conn, prefix)
    if not rows:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_dummy_hash(), key)
        return None
    for key_id, key_hash, name in rows:
        try:
            _hasher.verify(key_hash, key)
        except VerificationError:
            continue
        return key_id, name
    return None


def user_for_api_key(conn: Connection, key: str) -> str | None:
    """The name of the enabled user an API key belongs to, or None."""
    found = verify_api_key(conn, key)
    return found[1] if found else None


def active_key_user(conn: Connection, key_id: int) -> str | None:
    """The user of API key ``key_id`` if it is not revoked and they are enabled; a cheap check.

    For keys verified earlier: one lookup by primary key, no hashing.
    """
    return catalog_users.active_key_user(conn, key_id)


#: (catalog, sha256(key)) -> key id of keys this process verified: repeated calls in one
#: process (tests, a console) skip argon2; revocation is still checked on every call.
_verified: dict[tuple[str, bytes], int] = {}
_verified_lock = threading.Lock()


def acting_user(lib: Library, name: str | None, api_key: str | None) -> Actor:
    """The user a command-line call acts as.

    The owner (the operator who created the library, and so holds its files) is trusted and
    needs no key. Anyone else must prove who they are with their own API key, so whoever can
    run the command line cannot simply claim another user's role or vault access.
    """
    actor = lib.actor(name)  # an unknown or disabled user is refused first
    if name is None or name == lib.owner():
        return actor
    if not api_key:
        raise PermissionDenied(
            f"acting as {name!r} needs {name}'s API key: give it in FACELEDGER_API_KEY (or type it "
            f"when asked); an admin issues one with `faceledger users key {name}`"
        )
    if _key_user(lib, api_key) != name:
        raise PermissionDenied(
            f"that API key is not {name}'s: it is mistyped, revoked, another user's, or {name} "
            f"is disabled; an admin issues a new one with `faceledger users key {name}`"
        )
    return actor


def _key_user(lib: Library, key: str) -> str | None:
    digest = (lib.settings.catalog_url, hashlib.sha256(key.encode()).digest())
    with _verified_lock:
        key_id = _verified.get(digest)
    with lib.catalog.engine.connect() as conn:
        if key_id is not None:
            return catalog_users.active_key_user(conn, key_id)
        found = verify_api_key(conn, key)
    if found is None:
        return None
    with _verified_lock:
        _verified[digest] = found[0]
    return found[1]
