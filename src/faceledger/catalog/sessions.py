"""The catalog's SQL for console sign-in: server-side sessions and users' password hashes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from faceledger.catalog import schema as t

__all__ = [
    "SessionRow",
    "insert_session",
    "session_by_token",
    "end_session",
    "end_user_sessions",
    "delete_expired",
    "set_password",
    "password_hash",
]


@dataclass(frozen=True)
class SessionRow:
    """A sessions row with the state of its user."""

    id: int
    user: str
    csrf_token: str
    method: str
    api_key_id: int | None
    expires_at: datetime
    ended_at: datetime | None
    user_disabled: bool


def insert_session(
    conn: Connection, token_sha256: str, user_id: int, csrf_token: str, method: str,
    address: str | None, created_at: datetime, expires_at: datetime,
    api_key_id: int | None = None,
) -> int:  # fmt: skip
    """Insert a session; returns its id."""
    return conn.execute(insert(t.sessions).values(
        token_sha256=token_sha256, user_id=user_id, csrf_token=csrf_token, method=method,
        api_key_id=api_key_id,
        address=(address or "")[:64] or None, created_at=created_at, expires_at=expires_at,
    )).inserted_primary_key[0]  # fmt: skip


def session_by_token(conn: Connection, token_sha256: str) -> SessionRow | None:
    """The session whose token hashes to ``token_sha256`` (ended or not), with its user."""
    s, u = t.sessions, t.users
    row = conn.execute(
        select(s.c.id, u.c.name, s.c.csrf_token, s.c.method, s.c.api_key_id, s.c.expires_at,
               s.c.ended_at, u.c.disabled)
        .select_from(s.join(u, s.c.user_id == u.c.id))
        .where(s.c.token_sha256 == token_sha256)
    ).first()  # fmt: skip
    if row is None:
        return None
    return SessionRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]))


def end_session(conn: Connection, session_id: int, at: datetime) -> bool:
    """Mark a session ended; False when it had ended already."""
    result = conn.execute(
        update(t.sessions)
        .where(t.sessions.c.id == session_id, t.sessions.c.ended_at.is_(None))
        .values(ended_at=at)
    )
    return result.rowcount > 0


def end_user_sessions(conn: Connection, user_id: int, at: datetime) -> int:
    """End every open session of a user (disabled, or a new password); how many."""
    result = conn.execute(
        update(t.sessions)
        .where(t.sessions.c.user_id == user_id, t.sessions.c.ended_at.is_(None))
        .values(ended_at=at)
    )
    return result.rowcount


def delete_expired(conn: Connection, before: datetime) -> int:
    """Forget sessions that expired or ended before ``before`` (sign-ins stay in the audit log)."""
    s = t.sessions
    result = conn.execute(
        delete(s).where((s.c.expires_at < before) | (s.c.ended_at < before))
    )
    return result.rowcount


def set_password(conn: Connection, user_id: int, password_hash: str, at: datetime) -> None:
    """Store (or replace) a user's password hash."""
    conn.execute(delete(t.passwords).where(t.passwords.c.user_id == user_id))
    conn.execute(insert(t.passwords).values(user_id=user_id, password_hash=password_hash,
                                            set_at=at))  # fmt: skip


def password_hash(conn: Connection, name: str) -> tuple[int, str, bool] | None:
    """(user id, password hash, disabled) of the user named ``name``, if they have a password."""
    p, u = t.passwords, t.users
    row = conn.execute(
        select(u.c.id, p.c.password_hash, u.c.disabled)
        .select_from(p.join(u, p.c.user_id == u.c.id))
        .where(u.c.name == name)
    ).first()
    return (row[0], row[1], bool(row[2])) if row is not None else None
