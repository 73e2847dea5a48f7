"""The catalog's SQL for the sites registry (the websites table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from faceledger.catalog import schema as t
from faceledger.catalog.visibility import HIDDEN_PHOTO

__all__ = [
    "SENSITIVITIES",
    "Site",
    "check_sensitivity",
    "upsert_site",
    "sites",
    "publisher_regions",
    "sensitivities",
    "photos_of_changed_sites",
    "mark_applied",
]

#: What a website can reveal of the people whose photos came from it, so that a protective
#: order can redact it (``discovery order record --redact CATEGORY``): the documented list.
SENSITIVITIES: dict[str, str] = {
    "dating": "dating and hook-up sites and apps",
    "health": "health conditions, clinics, patient communities",
    "sexual-orientation": "sites whose audience reveals sexual orientation or gender identity",
    "religion": "religious communities and beliefs",
    "politics": "political parties, campaigns, activism",
    "union": "trade-union membership",
    "ethnicity": "communities defined by racial or ethnic origin",
    "criminal": "arrest records, mugshots, court cases",
}


def check_sensitivity(value: str | None) -> str | None:
    """``value`` lower-cased if it is one of SENSITIVITIES (or empty: None); ValueError else."""
    if value is None or not value.strip():
        return None
    value = value.strip().lower()
    if value not in SENSITIVITIES:
        raise ValueError(
            f"sensitivity {value!r} is not one of {', '.join(SENSITIVITIES)}; leave it empty "
            "for a site that reveals none of these"
        )
    return value


@dataclass(frozen=True)
class Site:
    """A website of the registry and how many provenance rows cite it."""

    domain: str
    publisher: str | None
    publisher_region: str | None
    terms_url: str | None
    terms_retrieved_at: datetime | None
    sources: int
    sensitivity: str | None = None


def upsert_site(conn: Connection, values: dict[str, Any]) -> bool:
    """Insert the website ``values["domain"]`` or update it; True when it was new."""
    if "sensitivity" in values:
        values = {**values, "sensitivity": check_sensitivity(values["sensitivity"])}
    found = conn.scalar(select(t.websites.c.id).where(t.websites.c.domain == values["domain"]))
    if found is None:
        conn.execute(insert(t.websites).values(**values))
        return True
    conn.execute(update(t.websites).where(t.websites.c.id == found).values(**values))
    return False


def sites(conn: Connection, hide_vault: bool = False) -> list[Site]:
    """Every website in the registry by domain, with how many provenance rows cite it
    (with ``hide_vault``, not counting rows of photos hidden in the vault)."""
    ps = t.photo_sources
    on = ps.c.website_id == t.websites.c.id
    if hide_vault:
        on = and_(on, ~ps.c.photo_id.in_(select(t.photos.c.id).where(HIDDEN_PHOTO)))
    rows = (
        conn.execute(
            select(t.websites, func.count(ps.c.id).label("sources"))
            .select_from(t.websites.outerjoin(ps, on))
            .group_by(t.websites.c.id)
            .order_by(t.websites.c.domain)
        )
        .mappings()
        .all()
    )
    return [
        Site(r["domain"], r["publisher"], r["publisher_region"], r["terms_url"],
             r["terms_retrieved_at"], r["sources"], r["sensitivity"])
        for r in rows
    ]  # fmt: skip


def publisher_regions(conn: Connection) -> dict[str, str]:
    """The publisher region of each website that has one, by domain."""
    return dict(
        conn.execute(
            select(t.websites.c.domain, t.websites.c.publisher_region).where(
                t.websites.c.publisher_region.is_not(None)
            )
        ).all()
    )


def sensitivities(conn: Connection) -> list[tuple[str, str | None, str]]:
    """(domain, publisher, sensitivity) of each website that has a sensitivity, by domain."""
    w = t.websites
    return [
        (r.domain, r.publisher, r.sensitivity)
        for r in conn.execute(
            select(w.c.domain, w.c.publisher, w.c.sensitivity)
            .where(w.c.sensitivity.is_not(None)).order_by(w.c.domain)
        )
    ]  # fmt: skip


def _changed() -> Any:
    w = t.websites
    return w.c.publisher_region.is_distinct_from(w.c.applied_region)


def photos_of_changed_sites(conn: Connection) -> set[int]:
    """Ids of the photos with a copy from a website whose publisher region is not the one the
    last policy apply decided with (by the index on photo_sources.website_id)."""
    ps = t.photo_sources
    # The few changed sites first, then their rows by the website_id index: as one statement
    # with a sub-select PostgreSQL planned a scan of every provenance row (5.7 s at 10^7).
    changed = list(conn.scalars(select(t.websites.c.id).where(_changed())))
    photos: set[int] = set()
    for start in range(0, len(changed), 1_000):
        photos.update(conn.scalars(
            select(ps.c.photo_id).where(ps.c.website_id.in_(changed[start:start + 1_000]))
            .distinct()))  # fmt: skip
    return photos


def mark_applied(conn: Connection) -> int:
    """Record every website's publisher region as the one policy was applied with; returns
    how many websites changed since the last apply."""
    w = t.websites
    return conn.execute(
        update(w).where(_changed()).values(applied_region=w.c.publisher_region)
    ).rowcount
