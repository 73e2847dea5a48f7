"""Read-only discovery answers: counts, sources, vector collection dates. Never mutates data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, distinct, func, or_, select, true

from faceledger.catalog import schema as t
from faceledger.clock import iso
from faceledger.errors import BadOptionError, PermissionDenied
from faceledger.policy import SIGNALS

__all__ = ["Selection", "count", "sources", "vector_dates"]

f, j, ps, w, p = t.faces, t.jurisdictions, t.photo_sources, t.websites, t.photos


class Selection:
    """Which faces a discovery question is about."""

    def __init__(
        self, blocked: bool | None, jurisdiction: str | None, signal: str | None, custodian: bool
    ):
        """``blocked``: True only blocked, False only searchable, None both (custodians)."""
        if (blocked is None or blocked) and not custodian:
            if blocked:
                raise PermissionDenied(
                    "only a custodian may count or list blocked faces (--blocked); "
                    "run as one with --as NAME"
                )
            blocked = False  # what non-custodians see is the searchable collection
        if signal is not None and signal not in SIGNALS:
            # A count of zero for a misspelt signal could end up in a sworn declaration.
            raise BadOptionError(
                f"unknown signal {signal!r}: give one of {', '.join(SIGNALS)}"
            )
        self.blocked = blocked
        self.jurisdiction = jurisdiction.upper() if jurisdiction else None
        self.signal = signal

    def region_clause(self) -> ColumnElement[bool]:
        """Jurisdiction rows that cover the selected region (and signal)."""
        clauses = []
        if self.jurisdiction:
            clauses.append(
                or_(j.c.region == self.jurisdiction, j.c.region.like(self.jurisdiction + "-%"))
            )
        if self.signal:
            clauses.append(j.c.signal == self.signal)
        return and_(*clauses) if clauses else true()

    def face_clause(self) -> ColumnElement[bool]:
        """Active faces, blocked or searchable as selected (no jurisdiction condition)."""
        clauses = [f.c.status == "active"]
        if self.blocked is not None:
            clauses.append(f.c.blocked.is_(self.blocked))
        return and_(*clauses)

    @property
    def by_region(self) -> bool:
        """Whether the selection is restricted by region or signal."""
        return bool(self.jurisdiction or self.signal)

    def faces_where(self) -> ColumnElement[bool]:
        """Active faces in the selection, tied to the region/signal when one is given."""
        if not self.by_region:
            return self.face_clause()
        tied = select(j.c.photo_id).where(TIE, self.region_clause())
        return and_(self.face_clause(), tied.exists())


#: A jurisdiction row applies to a face when it is its photo's (face_id 0) or the face's own.
TIE = and_(j.c.photo_id == f.c.photo_id, or_(j.c.face_id == 0, j.c.face_id == f.c.id))


def count(conn, selection: Selection) -> dict[str, Any]:
    """Photos, faces and distinct source URLs in the selection, in total and per signal.

    One pass over the (face, photo, signal) ties, counted here: ten correlated sub-queries
    took 2.6 s over 61k blocked faces at 10^6 (BENCHMARKS.md).
    """
    signals = [selection.signal] if selection.signal else list(SIGNALS)
    ties = (
        select(f.c.id, f.c.photo_id, j.c.signal)
        .select_from(f.join(j, TIE))
        .where(selection.face_clause(), selection.region_clause())
        .distinct()
    )
    faces: dict[str, set[int]] = {s: set() for s in signals}
    photos: dict[str, set[int]] = {s: set() for s in signals}
    for face_id, photo_id, signal in conn.execute(ties):
        faces[signal].add(face_id)
        photos[signal].add(photo_id)
    tied_photos = set().union(*photos.values())
    urls: dict[int, set[str]] = {}
    if tied_photos:
        url_rows = conn.execute(
            select(ps.c.photo_id, ps.c.source_url)
            .where(ps.c.source_url.is_not(None),
                   ps.c.photo_id.in_(select(ties.subquery().c.photo_id)))
            .distinct()
        )  # fmt: skip
        for photo_id, url in url_rows:
            urls.setdefault(photo_id, set()).add(url)

    def summary(face_ids: set[int], photo_ids: set[int]) -> dict[str, int]:
        found = set().union(*(urls.get(p, set()) for p in photo_ids)) if photo_ids else set()
        return {"photos": len(photo_ids), "faces": len(face_ids), "source_urls": len(found)}

    if selection.by_region:
        total = summary(set().union(*faces.values()), tied_photos)
    else:  # faces tied to no region count in the total too (e.g. blocked for lack of consent)
        total = _counts(conn, selection.face_clause())
    return {
        "blocked": selection.blocked,
        "jurisdiction": selection.jurisdiction,
        "total": total,
        "by_signal": {s: summary(faces[s], photos[s]) for s in signals},
    }


def _counts(conn, where: ColumnElement[bool]) -> dict[str, int]:
    faces = select(f.c.id, f.c.photo_id).where(where).subquery()
    n_faces, n_photos = conn.execute(
        select(func.count(faces.c.id), func.count(distinct(faces.c.photo_id)))
    ).one()
    urls = conn.scalar(
        select(func.count(distinct(ps.c.source_url))).where(
            ps.c.photo_id.in_(select(faces.c.photo_id)), ps.c.source_url.is_not(None)
        )
    )
    return {"photos": n_photos, "faces": n_faces, "source_urls": urls or 0}


def sources(conn, selection: Selection) -> list[dict[str, Any]]:
    """Source URL, page URL, website, terms, publisher and region of each selected photo copy."""
    photo_ids = select(f.c.photo_id).where(selection.faces_where()).distinct()
    rows = conn.execute(
        select(
            ps.c.photo_id,
            ps.c.kind,
            ps.c.source_url,
            ps.c.page_url,
            ps.c.retrieved_at,
            w.c.domain,
            w.c.publisher,
            w.c.publisher_region,
            w.c.terms_url,
            w.c.terms_retrieved_at,
        )
        .select_from(ps.outerjoin(w))
        .where(ps.c.photo_id.in_(photo_ids))
        .order_by(ps.c.photo_id, ps.c.id)
    ).mappings()
    return [
        {
            "photo_id": r["photo_id"],
            "kind": r["kind"],
            "source_url": r["source_url"],
            "page_url": r["page_url"],
            "retrieved_at": iso(r["retrieved_at"]),
            "website": r["domain"],
            "publisher": r["publisher"],
            "publisher_region": r["publisher_region"],
            "terms_url": r["terms_url"],
            "terms_retrieved_at": iso(r["terms_retrieved_at"]),
        }
        for r in rows
    ]


def vector_dates(conn, selection: Selection) -> list[dict[str, Any]]:
    """Per selected face: ids, first source URL, retrieval date, vector date and model."""
    first_source = (
        select(ps.c.photo_id, func.min(ps.c.id).label("sid")).group_by(ps.c.photo_id).subquery()
    )
    rows = conn.execute(
        select(
            f.c.id,
            f.c.photo_id,
            f.c.vector_collected_at,
            f.c.model,
            f.c.model_version,
            ps.c.source_url,
            ps.c.locator,
            ps.c.retrieved_at,
        )
        .select_from(
            f.outerjoin(first_source, first_source.c.photo_id == f.c.photo_id).outerjoin(
                ps, ps.c.id == first_source.c.sid
            )
        )
        .where(selection.faces_where())
        .order_by(f.c.id)
    ).mappings()
    return [
        {
            "face_id": r["id"],
            "photo_id": r["photo_id"],
            "source_url": r["source_url"] or r["locator"],
            "retrieved_at": iso(r["retrieved_at"]),
            "vector_collected_at": iso(r["vector_collected_at"]),
            "model": r["model"],
            "model_version": r["model_version"],
        }
        for r in rows
    ]
