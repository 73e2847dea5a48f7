"""The catalog's SQL for opt-out requests and the faces matched to them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, delete, func, insert, select

from faceledger.catalog import schema as t
from faceledger.catalog.placement import PLACE_WHERE, Place
from faceledger.clock import utcnow

__all__ = [
    "OptOut",
    "exists",
    "insert_optout",
    "link_face",
    "unlink_faces",
    "optouts",
    "optout",
    "matched_faces",
    "matched_face_ids",
    "matched_vectors",
]


@dataclass(frozen=True)
class OptOut:
    """An optouts row; ``matched_faces`` is filled where the query counted them."""

    id: int
    name: str
    email: str | None
    region: str
    status: str
    submitted_by: str
    submitted_at: datetime
    matched_faces: int | None = None


def _optout(r, matched: int | None = None) -> OptOut:
    return OptOut(r["id"], r["name"], r["email"], r["region"], r["status"], r["submitted_by"],
                  r["submitted_at"], matched)  # fmt: skip


def exists(conn: Connection, optout_id: int) -> bool:
    """Whether an opt-out with this id exists."""
    return conn.scalar(select(t.optouts.c.id).where(t.optouts.c.id == optout_id)) is not None


def insert_optout(
    conn: Connection, name: str, email: str | None, region: str, status: str,
    submitted_by: str, submitted_at: datetime,
) -> int:  # fmt: skip
    """Insert an opt-out request; returns its id."""
    return conn.execute(
        insert(t.optouts).values(
            name=name,
            email=email,
            region=region,
            status=status,
            submitted_by=submitted_by,
            submitted_at=submitted_at,
        )
    ).inserted_primary_key[0]


def link_face(conn: Connection, optout_id: int, face_id: int, distance: float) -> None:
    """Record that a face matched an opt-out (so its vector blocks later arrivals too)."""
    conn.execute(
        insert(t.optout_faces).values(
            optout_id=optout_id, face_id=face_id, distance=distance, matched_at=utcnow()
        )
    )


def unlink_faces(conn: Connection, face_ids: Sequence[int]) -> None:
    """Delete the opt-out links of these faces (they are being destroyed)."""
    conn.execute(delete(t.optout_faces).where(t.optout_faces.c.face_id.in_(list(face_ids))))


def optouts(conn: Connection, hide_vault: bool = False) -> list[OptOut]:
    """Every opt-out request with the number of faces it matched, by id (with
    ``hide_vault``, not counting the faces now in the vault)."""
    of = t.optout_faces
    on = of.c.optout_id == t.optouts.c.id
    if hide_vault:
        on = and_(on, ~of.c.face_id.in_(select(t.faces.c.id).where(PLACE_WHERE[Place.VAULT])))
    rows = (
        conn.execute(
            select(t.optouts, func.count(of.c.face_id).label("matched_faces"))
            .select_from(t.optouts.outerjoin(of, on))
            .group_by(t.optouts.c.id)
            .order_by(t.optouts.c.id)
        )
        .mappings()
        .all()
    )
    return [_optout(r, r["matched_faces"]) for r in rows]


def optout(conn: Connection, optout_id: int) -> OptOut | None:
    """One opt-out request, if it exists."""
    row = conn.execute(select(t.optouts).where(t.optouts.c.id == optout_id)).mappings().first()
    return _optout(row) if row is not None else None


def matched_faces(conn: Connection, optout_id: int) -> list[tuple[int, float]]:
    """(face id, distance) of each face matched to this opt-out."""
    return [
        (f, d)
        for f, d in conn.execute(
            select(t.optout_faces.c.face_id, t.optout_faces.c.distance).where(
                t.optout_faces.c.optout_id == optout_id
            )
        ).all()
    ]


def matched_face_ids(conn: Connection, optout_id: int) -> list[int]:
    """Ids of the faces matched to this opt-out."""
    return list(conn.scalars(select(t.optout_faces.c.face_id)
                             .where(t.optout_faces.c.optout_id == optout_id)))  # fmt: skip


def matched_vectors(conn: Connection) -> list[tuple[int, bytes, str | None, int, str]]:
    """(face id, vector blob, key id, opt-out id, opt-out region) of every active matched face."""
    return [
        tuple(r)
        for r in conn.execute(
            select(
                t.faces.c.id,
                t.faces.c.vector,
                t.faces.c.vector_key_id,
                t.optouts.c.id,
                t.optouts.c.region,
            )
            .select_from(t.optout_faces.join(t.faces).join(t.optouts))
            .where(t.faces.c.status == "active")
        ).all()
    ]
