"""Users, their roles, and API keys (shown once, stored only as argon2 hashes)."""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import Connection, func, insert, select, update

from faceledger import audit
from faceledger.app.governance.attestations import has_current_attestation
from faceledger.catalog import schema as t
from faceledger.clock import iso, utcnow
from faceledger.errors import BadOptionError, ConfigError, NotFoundError, PermissionDenied
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


def _user_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(t.users).where(t.users.c.name == name)).mappings().first()
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
        if conn.scalar(select(t.users.c.id).where(t.users.c.name == name)) is not None:
            raise ConfigError(f"a user named {name!r} already exists")
        user_id = conn.execute(insert(t.users).values(
            name=name, role=role, customer_type=customer_type, region=region,
            created_at=utcnow(),
        )).inserted_primary_key[0]  # fmt: skip
        details = {"name": name, "role": role, "customer_type": customer_type, "region": region}
        audit.append(conn, actor.name, "users.add", {"users": [user_id]}, details)
    return {"id": user_id, **details}


def list_users(lib: Library, actor: Actor) -> list[dict[str, Any]]:
    """Every user with role, customer type, region, state, active keys and attestation."""
    lib.authorize(actor, "users.list")
    with lib.catalog.engine.connect() as conn:
        keys = dict(conn.execute(
            select(t.api_keys.c.user_id, func.count())
            .where(t.api_keys.c.revoked_at.is_(None)).group_by(t.api_keys.c.user_id)
        ).all())  # fmt: skip
        rows = conn.execute(select(t.users).order_by(t.users.c.id)).mappings().all()
        return [
            {"id": r["id"], "name": r["name"], "role": r["role"],
             "customer_type": r["customer_type"], "region": r["region"],
             "disabled": bool(r["disabled"]), "created_at": iso(r["created_at"]),
             "api_keys": keys.get(r["id"], 0),
             "attested": has_current_attestation(conn, r["name"])}
            for r in rows
        ]  # fmt: skip


def disable_user(lib: Library, actor: Actor, name: str) -> dict[str, Any]:
    """Disable a user and revoke their API keys (the row stays: the audit log names them)."""
    lib.authorize(actor, "users.manage")
    with lib.writing() as conn:
        row = _user_row(conn, name)
        if row["disabled"]:
            return {"name": name, "disabled": True, "changed": False, "keys_revoked": 0}
        if row["role"] == "admin":
            admins = conn.scalar(select(func.count()).select_from(t.users).where(
                t.users.c.role == "admin", t.users.c.disabled.is_(False)))  # fmt: skip
            if admins <= 1:
                raise PermissionDenied(
                    f"{name!r} is the last enabled admin: add another admin first"
                )
        now = utcnow()
        conn.execute(update(t.users).where(t.users.c.id == row["id"]).values(disabled=True))
        revoked = conn.execute(
            update(t.api_keys)
            .where(t.api_keys.c.user_id == row["id"], t.api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount  # fmt: skip
        audit.append(conn, actor.name, "users.disable", {"users": [row["id"]]},
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
        if row["disabled"]:
            raise PermissionDenied(f"user {name!r} is disabled: a key for them would not work")
        now = utcnow()
        revoked = conn.execute(
            update(t.api_keys)
            .where(t.api_keys.c.user_id == row["id"], t.api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount  # fmt: skip
        key_id = conn.execute(insert(t.api_keys).values(
            user_id=row["id"], prefix=prefix, key_hash=digest, created_at=now
        )).inserted_primary_key[0]  # fmt: skip
        audit.append(conn, actor.name, "users.key", {"users": [row["id"]], "api_keys": [key_id]},
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
    rows = conn.execute(
        select(t.api_keys.c.id, t.api_keys.c.key_hash, t.users.c.name)
        .select_from(t.api_keys.join(t.users))
        .where(t.api_keys.c.prefix == prefix, t.api_keys.c.revoked_at.is_(None),
               t.users.c.disabled.is_(False))
    ).all()  # fmt: skip
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
    return conn.scalar(
        select(t.users.c.name)
        .select_from(t.api_keys.join(t.users))
        .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None),
               t.users.c.disabled.is_(False))
    )  # fmt: skip
