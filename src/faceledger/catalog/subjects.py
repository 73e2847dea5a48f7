"""The catalog's SQL for subjects: the ``subject_ref`` of provenance rows, seen as named people.

The CompreFace-compatible API calls a subject's photos its *examples*. A subject exists while
a provenance row names it, or while it is registered bare (created with no photo yet); bare
subjects are a JSON list in the library's metadata, so no table is needed for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, and_, func, select, update

from faceledger.catalog import schema as t
from faceledger.catalog.store import SEARCHABLE, VAULT, Catalog

__all__ = [
    "Example", "examples", "named", "bare", "set_bare", "rename", "BARE_KEY",
    "of_searchable_faces", "photo_faces", "searchable_of_photo",
]  # fmt: skip

#: Library metadata key of the subjects registered without a photo.
BARE_KEY = "subjects.bare"

p, ps, f = t.photos, t.photo_sources, t.faces


@dataclass(frozen=True)
class Example:
    """A photo collected under a subject, and where its faces are."""

    photo_id: int
    subject: str
    searchable_faces: int
    vault_faces: int


def _face_count(where) -> object:
    return (
        select(func.count()).select_from(f).where(f.c.photo_id == p.c.id, where).scalar_subquery()
    )


def examples(conn: Connection, subject: str | None = None) -> list[Example]:
    """Every active photo (with faces) collected under a subject, or under ``subject``."""
    stmt = (
        select(p.c.id, ps.c.subject_ref, _face_count(SEARCHABLE), _face_count(VAULT))
        .select_from(p.join(ps, ps.c.photo_id == p.c.id))
        .where(and_(p.c.status == "active", ps.c.subject_ref.is_not(None)))
        .distinct()
        .order_by(p.c.id, ps.c.subject_ref)
    )
    if subject is not None:
        stmt = stmt.where(ps.c.subject_ref == subject)
    return [Example(int(r[0]), r[1], int(r[2] or 0), int(r[3] or 0))
            for r in conn.execute(stmt)]  # fmt: skip


def named(conn: Connection) -> list[str]:
    """Every subject a provenance row names (of photos not destroyed), sorted."""
    stmt = (
        select(ps.c.subject_ref)
        .select_from(ps.join(p, ps.c.photo_id == p.c.id))
        .where(ps.c.subject_ref.is_not(None), p.c.status == "active")
        .distinct()
    )
    return sorted(conn.scalars(stmt))


def bare(catalog: Catalog, conn: Connection) -> list[str]:
    """The subjects registered with no photo, sorted."""
    raw = catalog.get_meta(BARE_KEY, conn)
    return sorted(json.loads(raw)) if raw else []


def set_bare(catalog: Catalog, conn: Connection, names: list[str]) -> None:
    """Replace the list of subjects registered with no photo."""
    catalog.set_meta(conn, BARE_KEY, json.dumps(sorted(set(names))))


def rename(conn: Connection, old: str, new: str) -> list[int]:
    """Rename a subject on every provenance row; the ids of the photos it touched, sorted."""
    ids = sorted(set(conn.scalars(select(ps.c.photo_id).where(ps.c.subject_ref == old))))
    if ids:
        conn.execute(update(ps).where(ps.c.subject_ref == old).values(subject_ref=new))
    return ids


def of_searchable_faces(conn: Connection, face_ids: list[int]) -> dict[int, list[str]]:
    """For each of these faces that is searchable now and the one face of its photo, the
    subjects the photo is collected under (a group photo names no one face)."""
    if not face_ids:
        return {}
    other = f.alias("other")
    alone = ~(
        select(other.c.id)
        .where(other.c.photo_id == f.c.photo_id, other.c.id != f.c.id, other.c.status == "active")
        .exists()
    )
    stmt = (
        select(f.c.id, ps.c.subject_ref)
        .select_from(f.join(ps, ps.c.photo_id == f.c.photo_id))
        .where(f.c.id.in_([int(i) for i in face_ids]), SEARCHABLE, alone,
               ps.c.subject_ref.is_not(None))  # fmt: skip
        .distinct()
    )
    out: dict[int, list[str]] = {}
    for face_id, subject in conn.execute(stmt):
        out.setdefault(int(face_id), []).append(subject)
    return out


def photo_faces(conn: Connection, photo_id: int, searchable_only: bool) -> list[int]:
    """Ids of the active faces of one photo (only the searchable ones if asked), sorted."""
    where = SEARCHABLE if searchable_only else f.c.status == "active"
    return sorted(conn.scalars(select(f.c.id).where(f.c.photo_id == photo_id, where)))


def searchable_of_photo(photo_id: int) -> object:
    """The condition selecting one photo's searchable faces (for ``Catalog.vectors``)."""
    return and_(f.c.photo_id == int(photo_id), SEARCHABLE)
