"""The catalog's SQL for users, their API keys and their signed attestations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from faceledger.catalog import schema as t
from faceledger.clock import as_utc

__all__ = [
    "User",
    "user_by_name",
    "user_id",
    "all_users",
    "insert_user",
    "disable_user",
    "enabled_admins",
    "active_key_counts",
    "revoke_keys",
    "insert_api_key",
    "active_keys_with_prefix",
    "active_key_user",
    "insert_attestation",
    "attestation_expiries",
    "expire_attestations",
]


@dataclass(frozen=True)
class User:
    """A users row."""

    id: int
    name: str
    role: str
    customer_type: str | None
    region: str | None
    disabled: bool
    created_at: datetime | None


def _user(row) -> User:
    return User(row["id"], row["name"], row["role"], row["customer_type"], row["region"],
                bool(row["disabled"]), row["created_at"])  # fmt: skip


# -- users -------------------------------------------------------------------------------------
def user_by_name(conn: Connection, name: str | None) -> User | None:
    """The user named ``name``, if any."""
    row = conn.execute(select(t.users).where(t.users.c.name == name)).mappings().first()
    return _user(row) if row is not None else None


def user_id(conn: Connection, name: str) -> int | None:
    """The id of the user named ``name``, if any."""
    return conn.scalar(select(t.users.c.id).where(t.users.c.name == name))


def all_users(conn: Connection) -> list[User]:
    """Every user, by id."""
    return [_user(r) for r in conn.execute(select(t.users).order_by(t.users.c.id)).mappings()]


def insert_user(
    conn: Connection, name: str, role: str, created_at: datetime,
    customer_type: str | None = None, region: str | None = None,
) -> int:  # fmt: skip
    """Insert a user row; returns its id."""
    return conn.execute(insert(t.users).values(
        name=name, role=role, customer_type=customer_type, region=region,
        created_at=created_at,
    )).inserted_primary_key[0]  # fmt: skip


def disable_user(conn: Connection, user_id: int) -> None:
    """Mark a user disabled (the row stays: the audit log names them)."""
    conn.execute(update(t.users).where(t.users.c.id == user_id).values(disabled=True))


def enabled_admins(conn: Connection) -> int:
    """How many enabled admins there are."""
    return conn.scalar(select(func.count()).select_from(t.users).where(
        t.users.c.role == "admin", t.users.c.disabled.is_(False)))  # fmt: skip


# -- API keys ----------------------------------------------------------------------------------
def active_key_counts(conn: Connection) -> dict[int, int]:
    """Number of unrevoked API keys per user id (users with none are absent)."""
    return dict(conn.execute(
        select(t.api_keys.c.user_id, func.count())
        .where(t.api_keys.c.revoked_at.is_(None)).group_by(t.api_keys.c.user_id)
    ).all())  # fmt: skip


def revoke_keys(conn: Connection, user_id: int, now: datetime) -> int:
    """Revoke every active key of a user; returns how many were revoked."""
    return conn.execute(
        update(t.api_keys)
        .where(t.api_keys.c.user_id == user_id, t.api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount  # fmt: skip


def insert_api_key(
    conn: Connection, user_id: int, prefix: str, key_hash: str, now: datetime
) -> int:
    """Store a new key's prefix and hash; returns its id."""
    return conn.execute(insert(t.api_keys).values(
        user_id=user_id, prefix=prefix, key_hash=key_hash, created_at=now
    )).inserted_primary_key[0]  # fmt: skip


def active_keys_with_prefix(conn: Connection, prefix: str) -> list[tuple[int, str, str]]:
    """(key id, key hash, user name) of the active keys of enabled users with this prefix."""
    return [tuple(r) for r in conn.execute(
        select(t.api_keys.c.id, t.api_keys.c.key_hash, t.users.c.name)
        .select_from(t.api_keys.join(t.users))
        .where(t.api_keys.c.prefix == prefix, t.api_keys.c.revoked_at.is_(None),
               t.users.c.disabled.is_(False))
    ).all()]  # fmt: skip


def active_key_user(conn: Connection, key_id: int) -> str | None:
    """The user of API key ``key_id`` if it is not revoked and they are enabled."""
    return conn.scalar(
        select(t.users.c.name)
        .select_from(t.api_keys.join(t.users))
        .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None),
               t.users.c.disabled.is_(False))
    )  # fmt: skip


# -- attestations ------------------------------------------------------------------------------
def insert_attestation(
    conn: Connection, user_id: int, statement: str, sha256: str, signed_at: datetime,
    expires_at: datetime,
) -> int:  # fmt: skip
    """Store a signed statement; returns its id."""
    return conn.execute(
        insert(t.attestations).values(
            user_id=user_id, statement=statement, sha256=sha256, signed_at=signed_at,
            expires_at=expires_at,
        )
    ).inserted_primary_key[0]  # fmt: skip


def attestation_expiries(conn: Connection, user: str) -> list[datetime | None]:
    """When each attestation of ``user`` (if enabled) expires, as stored (maybe naive)."""
    return list(conn.execute(
        select(t.attestations.c.expires_at)
        .select_from(t.attestations.join(t.users))
        .where(t.users.c.name == user, t.users.c.disabled.is_(False))
    ).scalars().all())  # fmt: skip


def expire_attestations(conn: Connection, user_id: int, now: datetime) -> list[int]:
    """End every attestation of this user still current at ``now``; their ids, sorted."""
    a = t.attestations
    rows = conn.execute(select(a.c.id, a.c.expires_at).where(a.c.user_id == user_id)).all()
    # Compared in Python: SQLite returns naive datetimes, which as_utc reads as UTC.
    ids = sorted(i for i, expires in rows if expires is None or as_utc(expires) > as_utc(now))
    if ids:
        conn.execute(update(a).where(a.c.id.in_(ids)).values(expires_at=now))
    return ids
