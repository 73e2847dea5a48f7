"""The catalog's SQL for photos, their provenance rows and their jurisdictions.

The ingest writes (add_photo, add_source, add_jurisdictions) are :class:`Catalog` methods.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, literal, or_, select, update

from faceledger.catalog import schema as t

__all__ = [
    "TIE",
    "url_digest",
    "for_destruction",
    "mark_destroyed",
    "of_subject",
    "delete_face_jurisdictions",
    "delete_photo_jurisdictions",
    "scope",
    "jurisdiction_rows",
    "copies",
    "refresh_derived",
    "tied_by",
]

p, j, ps = t.photos, t.jurisdictions, t.photo_sources

#: A jurisdiction row applies to a face when it is its photo's (face_id 0) or the face's own.
TIE = and_(j.c.photo_id == t.faces.c.photo_id,
           or_(j.c.face_id == 0, j.c.face_id == t.faces.c.id))  # fmt: skip


def url_digest(url: str | None) -> bytes | None:
    """The SHA-256 of the UTF-8 ``url`` (32 bytes; None for None): ``photo_sources.
    source_url_digest``, which ``discovery count`` counts distinct URLs by.

    Two different URLs would have to share a SHA-256 to change a count: no collision of it has
    ever been found, and by the birthday bound the chance of one among 10^12 URLs is ~10^-54.
    PostgreSQL's ``sha256(convert_to(source_url, 'UTF8'))`` is the same value (migration 0011).
    """
    return None if url is None else hashlib.sha256(url.encode("utf-8")).digest()


def for_destruction(conn: Connection, photo_ids: Sequence[int]) -> list[Any]:
    """(id, sha256, status, stored_path) rows of these photos."""
    return conn.execute(select(p.c.id, p.c.sha256, p.c.status, p.c.stored_path)
                        .where(p.c.id.in_(list(photo_ids)))).all()  # fmt: skip


def mark_destroyed(conn: Connection, photo_ids: Sequence[int], now: datetime) -> None:
    """Reduce these photos to tombstones: file path and GPS wiped, status destroyed."""
    conn.execute(update(p).where(p.c.id.in_(list(photo_ids))).values(
        status="destroyed", destroyed_at=now, stored_path=None, gps_lat=None,
        gps_lon=None,
    ))  # fmt: skip


def of_subject(conn: Connection, subject: str) -> list[int]:
    """Ids of the photos collected under consent subject ``subject``, sorted."""
    return sorted(set(conn.scalars(select(ps.c.photo_id).where(ps.c.subject_ref == subject))))


# -- jurisdictions -----------------------------------------------------------------------------
def delete_face_jurisdictions(conn: Connection, face_ids: Sequence[int]) -> None:
    """Delete the face-level jurisdiction rows of these faces."""
    conn.execute(delete(j).where(j.c.face_id.in_(list(face_ids))))


def delete_photo_jurisdictions(conn: Connection, photo_ids: Sequence[int]) -> None:
    """Delete every jurisdiction row of these photos."""
    conn.execute(delete(j).where(j.c.photo_id.in_(list(photo_ids))))


def scope(photo_ids: Sequence[int] | None) -> Any:
    """The condition on photos selecting these ids (all photos when None)."""
    return p.c.id.in_(photo_ids) if photo_ids is not None else True


def jurisdiction_rows(conn: Connection, scope: Any) -> list[tuple[int, int, str, str]]:
    """(photo id, face id, region, signal) of the photos ``scope`` selects."""
    return [tuple(r) for r in conn.execute(
        select(j.c.photo_id, j.c.face_id, j.c.region, j.c.signal)
        .where(j.c.photo_id.in_(select(p.c.id).where(scope)))
    )]  # fmt: skip


def copies(conn: Connection, scope: Any) -> list[tuple[int, str | None, str | None]]:
    """(photo id, website, subject ref) of each provenance row of the photos ``scope`` selects."""
    return [tuple(r) for r in conn.execute(
        select(ps.c.photo_id, t.websites.c.domain, ps.c.subject_ref)
        .select_from(ps.outerjoin(t.websites))
        .where(ps.c.photo_id.in_(select(p.c.id).where(scope)))
    )]  # fmt: skip


def refresh_derived(
    conn: Connection, photo_ids: Sequence[int] | None, signals: Sequence[str]
) -> None:
    """Rebuild uploader and publisher jurisdictions from provenance and the registry."""
    jscope = j.c.photo_id.in_(photo_ids) if photo_ids is not None else True
    sscope = ps.c.photo_id.in_(photo_ids) if photo_ids is not None else True
    conn.execute(delete(j).where(jscope, j.c.signal.in_(signals)))
    derived = {
        "uploader": select(ps.c.photo_id, ps.c.uploader_region)
        .where(sscope, ps.c.uploader_region.is_not(None)),
        "publisher": select(ps.c.photo_id, t.websites.c.publisher_region)
        .select_from(ps.join(t.websites))
        .where(sscope, t.websites.c.publisher_region.is_not(None)),
    }  # fmt: skip
    # In the database, not through Python: 385k rows at 10^6 faces (BENCHMARKS.md).
    for signal, query in derived.items():
        rows = query.add_columns(literal(0), literal(signal)).distinct()
        conn.execute(insert(j).from_select(["photo_id", "region", "face_id", "signal"], rows))


def tied_by(conn: Connection, pairs: Sequence[tuple[str, str]]) -> set[int]:
    """Ids of the photos with a jurisdiction row of one of these (rule region, signal) pairs:
    the signal, and a region the rule region covers (itself or a sub-region). Read from the
    ties index (region, signal, photo_id, face_id) alone."""
    clauses = []
    for region, signal in pairs:
        prefix = region.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(and_(
            j.c.signal == signal,
            j.c.region.like(prefix + "%", escape="\\"),
            or_(j.c.region == region, j.c.region.like(prefix + "-%", escape="\\")),
        ))  # fmt: skip
    if not clauses:
        return set()
    return set(conn.scalars(select(j.c.photo_id).where(or_(*clauses)).distinct()))
