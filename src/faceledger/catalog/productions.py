"""The catalog's SQL for Bates productions: what a production needs to read, and its record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from faceledger.catalog import schema as t

__all__ = [
    "photo_files",
    "face_facts",
    "photo_regions",
    "next_number",
    "insert_production",
]

f = t.faces
_ACTIVE = f.c.status == "active"


def photo_files(conn: Connection, photo_ids: Sequence[int]) -> dict[int, Any]:
    """(id, stored_path, format, status) rows of these photos, by id."""
    return {
        r.id: r
        for r in conn.execute(
            select(
                t.photos.c.id, t.photos.c.stored_path, t.photos.c.format, t.photos.c.status
            ).where(t.photos.c.id.in_(list(photo_ids)))
        )
    }


def face_facts(conn: Connection, photo_ids: Sequence[int]) -> dict[int, list[Any]]:
    """(photo_id, vector_collected_at, blocked) rows of the active faces of each photo."""
    ids = list(photo_ids)
    faces: dict[int, list] = {i: [] for i in ids}
    for r in conn.execute(
        select(f.c.photo_id, f.c.vector_collected_at, f.c.blocked).where(
            f.c.photo_id.in_(ids), _ACTIVE
        )
    ):
        faces[r.photo_id].append(r)
    return faces


def photo_regions(conn: Connection, photo_ids: Sequence[int]) -> dict[int, set[str]]:
    """The regions of every jurisdiction row of each photo."""
    ids = list(photo_ids)
    regions: dict[int, set[str]] = {i: set() for i in ids}
    for r in conn.execute(
        select(t.jurisdictions.c.photo_id, t.jurisdictions.c.region).where(
            t.jurisdictions.c.photo_id.in_(ids)
        )
    ):
        regions[r.photo_id].add(r.region)
    return regions


def next_number(conn: Connection, matter: str) -> int:
    """The first Bates number of the matter's next production."""
    last = conn.scalar(
        select(func.max(t.productions.c.last_number)).where(t.productions.c.matter == matter)
    )
    return (last or 0) + 1


def insert_production(
    conn: Connection, *, matter: str, prefix: str, first_number: int, last_number: int,
    out_dir: str, manifest_sha256: str, produced_by: str, produced_at: datetime,
    items: Sequence[tuple[str, int, str]],
) -> int:  # fmt: skip
    """Record a production and its (bates, photo id, sha256) items; returns its id."""
    production_id = conn.execute(
        insert(t.productions).values(
            matter=matter,
            prefix=prefix,
            first_number=first_number,
            last_number=last_number,
            out_dir=out_dir,
            manifest_sha256=manifest_sha256,
            produced_by=produced_by,
            produced_at=produced_at,
        )
    ).inserted_primary_key[0]
    conn.execute(
        insert(t.production_items),
        [
            {"production_id": production_id, "bates": bates, "photo_id": photo_id,
             "sha256": sha256}
            for bates, photo_id, sha256 in items
        ],
    )  # fmt: skip
    return production_id
