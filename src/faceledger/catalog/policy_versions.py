"""The catalog's SQL for policy versions: each policy text put in force, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from faceledger.catalog import schema as t

__all__ = ["PolicyVersion", "body", "latest_id", "latest", "insert_version"]

pv = t.policy_versions


@dataclass(frozen=True)
class PolicyVersion:
    """A policy_versions row without its body."""

    id: int
    sha256: str
    applied_by: str
    applied_at: datetime


def body(conn: Connection, version: int | None) -> str | None:
    """The policy text of version ``version``, if it exists."""
    return conn.scalar(select(pv.c.body).where(pv.c.id == version))


def latest_id(conn: Connection) -> int | None:
    """Id of the newest version (the one in force), None before any."""
    return conn.scalar(select(func.max(pv.c.id)))


def latest(conn: Connection) -> PolicyVersion | None:
    """The newest version, None before any."""
    row = conn.execute(
        select(pv.c.id, pv.c.sha256, pv.c.applied_by, pv.c.applied_at)
        .order_by(pv.c.id.desc())
        .limit(1)
    ).first()
    return PolicyVersion(*row) if row is not None else None


def insert_version(
    conn: Connection, body: str, sha256: str, applied_by: str, applied_at: datetime
) -> int:
    """Record a new version in force; returns its id."""
    return conn.execute(
        insert(pv).values(body=body, sha256=sha256, applied_by=applied_by, applied_at=applied_at)
    ).inserted_primary_key[0]
