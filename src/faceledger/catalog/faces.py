"""The catalog's SQL for face rows that does not change a face's place.

Place changes (block flag, destruction, new faces) are in :mod:`faceledger.catalog.placement`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, false, func, or_, select, update

from faceledger.catalog import schema as t
from faceledger.catalog.placement import PLACE_WHERE, Place

__all__ = [
    "exists",
    "photo_of",
    "active_with_vectors",
    "active_of_photos",
    "retention_rows",
    "mark_purpose_satisfied",
    "blocks_of_photos",
    "has_vault_faces",
    "sealed_key_id",
    "stored_vectors",
    "reseal",
]

f = t.faces
_ACTIVE = f.c.status == "active"


def exists(conn: Connection, face_id: int) -> bool:
    """Whether a face row (of any status) with this id exists."""
    return conn.scalar(select(f.c.id).where(f.c.id == face_id)) is not None


def photo_of(conn: Connection, face_ids: Iterable[int]) -> dict[int, int]:
    """The photo id of each of these faces (any status)."""
    return dict(conn.execute(select(f.c.id, f.c.photo_id).where(f.c.id.in_(list(face_ids)))).all())


def active_with_vectors(conn: Connection, face_ids: Sequence[int]) -> list[Any]:
    """(id, photo_id, vector) rows of these faces that are active."""
    return conn.execute(select(f.c.id, f.c.photo_id, f.c.vector)
                        .where(f.c.id.in_(list(face_ids)), _ACTIVE)).all()  # fmt: skip


def active_of_photos(conn: Connection, photo_ids: Sequence[int]) -> list[Any]:
    """(id, photo_id, vector) rows of the active faces of these photos."""
    return conn.execute(select(f.c.id, f.c.photo_id, f.c.vector)
                        .where(f.c.photo_id.in_(list(photo_ids)), _ACTIVE)).all()  # fmt: skip


def retention_rows(conn: Connection) -> list[tuple[int, int, datetime, datetime | None]]:
    """(id, photo id, last interaction, purpose satisfied at) of every active face."""
    return [tuple(r) for r in conn.execute(
        select(f.c.id, f.c.photo_id, f.c.last_interaction_at, f.c.purpose_satisfied_at)
        .where(_ACTIVE)
    ).all()]  # fmt: skip


def mark_purpose_satisfied(
    conn: Connection, face_ids: Sequence[int], photo_ids: Sequence[int], subject: str | None,
    now: datetime,
) -> list[int]:  # fmt: skip
    """Mark the purpose satisfied of these active faces, of these photos' active faces and of
    those of the photos collected under ``subject``; returns the ids newly marked, sorted."""
    ps = t.photo_sources
    chosen = or_(
        f.c.id.in_([int(i) for i in face_ids]),
        f.c.photo_id.in_([int(i) for i in photo_ids]),
        f.c.photo_id.in_(select(ps.c.photo_id).where(ps.c.subject_ref == subject))
        if subject else false(),
    )  # fmt: skip
    ids = sorted(conn.scalars(select(f.c.id).where(
        chosen, _ACTIVE, f.c.purpose_satisfied_at.is_(None))))  # fmt: skip
    if ids:
        conn.execute(update(f).where(f.c.id.in_(ids)).values(purpose_satisfied_at=now))
    return ids


def blocks_of_photos(conn: Connection, scope: Any) -> list[tuple[int, int, bool]]:
    """(id, photo id, blocked) of the active faces of the photos ``scope`` selects."""
    return [tuple(r) for r in conn.execute(
        select(f.c.id, f.c.photo_id, f.c.blocked).where(
            _ACTIVE, f.c.photo_id.in_(select(t.photos.c.id).where(scope))
        )
    )]  # fmt: skip


def has_vault_faces(conn: Connection, photo_id: int) -> bool:
    """Whether this photo has a face in the vault."""
    return bool(
        conn.scalar(
            select(func.count())
            .select_from(f)
            .where(f.c.photo_id == photo_id, PLACE_WHERE[Place.VAULT])
        )
    )


# -- sealed vectors ----------------------------------------------------------------------------
def sealed_key_id(conn: Connection) -> str | None:
    """The key id of some sealed vector (None when every vector is plain)."""
    return conn.scalar(select(f.c.vector_key_id).where(f.c.vector_key_id.is_not(None)).limit(1))


def stored_vectors(conn: Connection) -> list[tuple[int, bytes, str | None]]:
    """(id, blob, key id) of every face that still has a vector."""
    return [tuple(r) for r in conn.execute(
        select(f.c.id, f.c.vector, f.c.vector_key_id).where(f.c.vector.is_not(None))
    ).all()]  # fmt: skip


_RESEAL = (
    update(f)
    .where(f.c.id == bindparam("fid"))
    .values(vector=bindparam("blob"), vector_key_id=bindparam("kid"))
)


def reseal(conn: Connection, batch: list[dict[str, Any]]) -> None:
    """Replace vector blobs: each item is ``{"fid": id, "blob": bytes, "kid": key id}``."""
    conn.execute(_RESEAL, batch)
