"""The catalog's SQL for Bates productions and the matters register: what a production needs
to read, its record, the matters and their protective orders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select

from faceledger.catalog import schema as t

__all__ = [
    "photo_files",
    "face_facts",
    "photo_regions",
    "next_number",
    "insert_production",
    "matter_id",
    "productions",
    "find_production",
    "record_order",
    "order_categories",
    "orders",
    "bates_of_photos",
    "production_items",
]

f = t.faces
_ACTIVE = f.c.status == "active"


def photo_files(conn: Connection, photo_ids: Sequence[int]) -> dict[int, Any]:
    """(id, stored_path, format, status, taken_at, gps, hashes) rows of these photos, by id."""
    p = t.photos
    return {
        r.id: r
        for r in conn.execute(
            select(p.c.id, p.c.stored_path, p.c.format, p.c.status, p.c.taken_at, p.c.gps_lat,
                   p.c.gps_lon, p.c.sha256, p.c.md5, p.c.sha1)
            .where(p.c.id.in_(list(photo_ids)))
        )
    }  # fmt: skip


def face_facts(conn: Connection, photo_ids: Sequence[int]) -> dict[int, list[Any]]:
    """(id, photo_id, box, vector_collected_at, model, version, blocked) rows of the active
    faces of each photo, by ordinal."""
    ids = list(photo_ids)
    faces: dict[int, list] = {i: [] for i in ids}
    for r in conn.execute(
        select(f.c.id, f.c.photo_id, f.c.box_top, f.c.box_right, f.c.box_bottom, f.c.box_left,
               f.c.vector_collected_at, f.c.model, f.c.model_version, f.c.blocked)
        .where(f.c.photo_id.in_(ids), _ACTIVE).order_by(f.c.photo_id, f.c.ordinal)
    ):  # fmt: skip
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
    items: Sequence[tuple[str, int, str]], volume: str | None = None,
    profile: str | None = None, audit_head_id: int | None = None,
    audit_head_hash: str | None = None, redactions: int = 0,
) -> int:  # fmt: skip
    """Record a production and its (bates, photo id, sha256) items; returns its id."""
    matter_id(conn, matter, produced_by, produced_at)
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
            volume=volume,
            profile=profile,
            documents=len(items),
            audit_head_id=audit_head_id,
            audit_head_hash=audit_head_hash,
            redactions=redactions,
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


# -- the matters register ----------------------------------------------------------------------
def matter_id(conn: Connection, name: str, actor: str, at: datetime) -> int:
    """The id of matter ``name``, registered now by ``actor`` if it is new."""
    found = conn.scalar(select(t.matters.c.id).where(t.matters.c.name == name))
    if found is not None:
        return found
    return conn.execute(
        insert(t.matters).values(name=name, created_by=actor, created_at=at)
    ).inserted_primary_key[0]


def productions(conn: Connection, matter: str | None = None) -> list[dict[str, Any]]:
    """Every production (of ``matter`` if given), oldest first."""
    query = select(t.productions).order_by(t.productions.c.id)
    if matter is not None:
        query = query.where(t.productions.c.matter == matter)
    return [dict(r) for r in conn.execute(query).mappings()]


def find_production(
    conn: Connection, manifest_sha256: str | None, volume: str | None
) -> dict[str, Any] | None:
    """The production whose manifest has this hash, else the newest with this volume name."""
    clauses = []
    if manifest_sha256:
        clauses.append(t.productions.c.manifest_sha256 == manifest_sha256)
    if volume:
        clauses.append(t.productions.c.volume == volume)
    if not clauses:
        return None
    rows = [dict(r) for r in conn.execute(
        select(t.productions).where(or_(*clauses)).order_by(t.productions.c.id.desc())
    ).mappings()]  # fmt: skip
    by_hash = [r for r in rows if r["manifest_sha256"] == manifest_sha256]
    return (by_hash or rows or [None])[0]


def production_items(conn: Connection, production_id: int) -> list[dict[str, Any]]:
    """The (bates, photo_id, sha256) items of a production, by Bates number."""
    return [dict(r) for r in conn.execute(
        select(t.production_items.c.bates, t.production_items.c.photo_id,
               t.production_items.c.sha256)
        .where(t.production_items.c.production_id == production_id)
        .order_by(t.production_items.c.bates)
    ).mappings()]  # fmt: skip


def record_order(
    conn: Connection, *, matter: str, categories: Sequence[str], file_name: str | None,
    file_sha256: str, recorded_by: str, recorded_at: datetime,
) -> int:  # fmt: skip
    """Record a protective order for ``matter`` (registered if new); returns its id."""
    mid = matter_id(conn, matter, recorded_by, recorded_at)
    return conn.execute(
        insert(t.protective_orders).values(
            matter_id=mid, categories=sorted(set(categories)), file_name=file_name,
            file_sha256=file_sha256, recorded_by=recorded_by, recorded_at=recorded_at,
        )
    ).inserted_primary_key[0]  # fmt: skip


def orders(conn: Connection, matter: str) -> list[dict[str, Any]]:
    """The protective orders recorded for ``matter``, oldest first."""
    o = t.protective_orders
    return [dict(r) for r in conn.execute(
        select(o.c.id, o.c.categories, o.c.file_name, o.c.file_sha256, o.c.recorded_by,
               o.c.recorded_at)
        .select_from(o.join(t.matters)).where(t.matters.c.name == matter).order_by(o.c.id)
    ).mappings()]  # fmt: skip


def order_categories(conn: Connection, matter: str) -> frozenset[str]:
    """The site sensitivities every order of ``matter`` asks to redact, together."""
    return frozenset(c for order in orders(conn, matter) for c in order["categories"])


def bates_of_photos(conn: Connection, matter: str, photo_ids: Sequence[int]) -> dict[int, str]:
    """The Bates number each photo was last produced under in ``matter``."""
    i, p = t.production_items, t.productions
    rows = conn.execute(
        select(i.c.photo_id, i.c.bates).select_from(i.join(p))
        .where(p.c.matter == matter, i.c.photo_id.in_(list(photo_ids))).order_by(p.c.id)
    ).all()  # fmt: skip
    return {photo_id: bates for photo_id, bates in rows}
