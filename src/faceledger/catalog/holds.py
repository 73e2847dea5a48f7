"""The catalog's SQL for legal holds and the deferred actions a hold blocks.

A hold's scope is evaluated when asked, not when the hold is made: a ``jurisdiction=US-IL``
hold also covers photos tied to Illinois after it was created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from faceledger.catalog import schema as t
from faceledger.clock import utcnow
from faceledger.errors import ConfigError

__all__ = [
    "Hold",
    "DeferredAction",
    "insert_hold",
    "hold",
    "holds",
    "release",
    "scope_photos",
    "held_photo_ids",
    "defer",
    "pending_deferred",
    "mark_deferred_done",
]


@dataclass(frozen=True)
class Hold:
    """A legal_holds row."""

    id: int
    matter: str
    scope_kind: str
    scope_value: Any
    created_by: str
    created_at: datetime
    released_by: str | None
    released_at: datetime | None


@dataclass(frozen=True)
class DeferredAction:
    """A deferred_actions row not yet carried out."""

    id: int
    action: str
    object_kind: str
    object_id: int


def _hold(r) -> Hold:
    return Hold(r["id"], r["matter"], r["scope_kind"], r["scope_value"], r["created_by"],
                r["created_at"], r["released_by"], r["released_at"])  # fmt: skip


# -- holds -------------------------------------------------------------------------------------
def insert_hold(
    conn: Connection, matter: str, kind: str, value: Any, created_by: str, now: datetime
) -> int:
    """Insert a legal hold; returns its id."""
    return conn.execute(insert(t.legal_holds).values(
        matter=matter, scope_kind=kind, scope_value=value, created_by=created_by,
        created_at=now,
    )).inserted_primary_key[0]  # fmt: skip


def hold(conn: Connection, hold_id: int) -> Hold | None:
    """One hold, if it exists."""
    row = conn.execute(
        select(t.legal_holds).where(t.legal_holds.c.id == hold_id)
    ).mappings().first()  # fmt: skip
    return _hold(row) if row is not None else None


def holds(conn: Connection, include_released: bool = True) -> list[Hold]:
    """Every hold (or only active ones), newest first."""
    stmt = select(t.legal_holds).order_by(t.legal_holds.c.id.desc())
    if not include_released:
        stmt = stmt.where(t.legal_holds.c.released_at.is_(None))
    return [_hold(r) for r in conn.execute(stmt).mappings()]


def release(conn: Connection, hold_id: int, released_by: str, now: datetime) -> None:
    """Mark a hold released."""
    conn.execute(update(t.legal_holds).where(t.legal_holds.c.id == hold_id)
                 .values(released_by=released_by, released_at=now))  # fmt: skip


def scope_photos(conn: Connection, kind: str, value: Any) -> set[int]:
    """Ids of the photos (any status) a scope covers now."""
    if kind == "all":
        return set(conn.scalars(select(t.photos.c.id)))
    if kind == "jurisdiction":
        region = str(value).upper()
        j = t.jurisdictions
        return set(conn.scalars(
            select(j.c.photo_id).where(or_(j.c.region == region, j.c.region.like(f"{region}-%")))
        ))  # fmt: skip
    if kind == "optout":
        return set(conn.scalars(
            select(t.faces.c.photo_id).select_from(t.optout_faces.join(t.faces))
            .where(t.optout_faces.c.optout_id == int(value))
        ))  # fmt: skip
    if kind == "photos":
        return {int(i) for i in value or ()}
    raise ConfigError(f"unknown hold scope {kind!r} in the catalog")


def held_photo_ids(conn: Connection) -> set[int]:
    """Ids of every photo that some active legal hold covers now (its faces are held too)."""
    held: set[int] = set()
    for kind, value in conn.execute(
        select(t.legal_holds.c.scope_kind, t.legal_holds.c.scope_value)
        .where(t.legal_holds.c.released_at.is_(None))
    ):  # fmt: skip
        held |= scope_photos(conn, kind, value)
    return held


# -- deferred actions --------------------------------------------------------------------------
def defer(conn: Connection, action: str, kind: str, object_id: int, reason: str,
          actor: str) -> int | None:  # fmt: skip
    """Record a request that a hold blocks (once: a repeated request adds no second row)."""
    d = t.deferred_actions
    exists = conn.scalar(select(d.c.id).where(
        d.c.action == action, d.c.object_kind == kind, d.c.object_id == object_id,
        d.c.done_at.is_(None)))  # fmt: skip
    if exists is not None:
        return None
    return conn.execute(insert(d).values(
        action=action, object_kind=kind, object_id=object_id, reason=reason,
        requested_by=actor, requested_at=utcnow(),
    )).inserted_primary_key[0]  # fmt: skip


def pending_deferred(conn: Connection) -> list[DeferredAction]:
    """Deferred requests not yet carried out, by id."""
    d = t.deferred_actions
    return [
        DeferredAction(r["id"], r["action"], r["object_kind"], r["object_id"])
        for r in conn.execute(select(d).where(d.c.done_at.is_(None))).mappings().all()
    ]


def mark_deferred_done(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    """Mark these deferred requests carried out."""
    conn.execute(update(t.deferred_actions).where(t.deferred_actions.c.id.in_(list(ids)))
                 .values(done_at=now))  # fmt: skip
