"""The catalog's read-only discovery queries: counts, sources, vector collection dates, the
faces that locate a person, the photos a production selects, the report's counts. Never
mutates data of the library; a blocked count of a region folds pending changes into the
vault's kept counts (``catalog.vault_counts``) before reading them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    and_,
    case,
    distinct,
    false,
    func,
    not_,
    or_,
    select,
    text,
    true,
)

from faceledger.catalog import schema as t
from faceledger.catalog import vault_counts
from faceledger.catalog.photos import TIE
from faceledger.clock import as_utc, iso
from faceledger.errors import BadOptionError, PermissionDenied, VaultCountsCorrupt
from faceledger.policy import SIGNALS, region_covers

__all__ = [
    "Selection",
    "count",
    "tie_counts",
    "sources",
    "vector_dates",
    "preferred_source",
    "BY_SIGNAL_MEANS",
    "iter_vector_dates",
    "one_face",
    "located_faces",
    "selected_photo_ids",
    "faces_of_photos",
    "export_facts",
    "report_totals",
    "report_by_jurisdiction",
    "report_vector_months",
    "report_by_website",
    "report_attestations",
]

f, j, ps, w, p = t.faces, t.jurisdictions, t.photo_sources, t.websites, t.photos


class Selection:
    """Which faces a discovery question is about."""

    def __init__(
        self, blocked: bool | None, jurisdiction: str | None, signal: str | None, custodian: bool,
        blocking: Iterable[Any] = (),
    ):  # fmt: skip
        """``blocked``: True only blocked, False only searchable, None both (custodians).

        ``blocking``: the blocking rules in force (objects with ``region`` and ``signals``), so
        that per-signal counts count the faces each signal blocks.
        """
        if (blocked is None or blocked) and not custodian:
            if blocked:
                raise PermissionDenied(
                    "only a custodian may count or list blocked faces; "
                    "act as one (with an attestation)"
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
        self.blocking = [(rule.region.upper(), tuple(rule.signals)) for rule in blocking]

    def blocking_clause(self) -> ColumnElement[bool]:
        """Jurisdiction rows that block their face under the rules: a rule's region covers the
        row's region and lists the row's signal (the face is blocked too)."""
        covered = [
            and_(j.c.signal.in_(signals), or_(j.c.region == region,
                                              j.c.region.like(region + "-%")))
            for region, signals in self.blocking
        ]  # fmt: skip
        if not covered:
            return false()
        # With only blocked faces selected the flag is known: not reading it lets the vault's
        # partial index answer alone (an index-only scan).
        return or_(*covered) if self.blocked else and_(f.c.blocked.is_(True), or_(*covered))

    def signal_blocks(self, signal: str) -> ColumnElement[bool]:
        """Jurisdiction rows of ``signal`` that block their face, for rows already in the
        selection's region (``region_clause``): with only blocked faces selected and a rule
        listing the signal whose region covers the selection's, every such row does, so the
        condition is the signal alone (no region match evaluated per row)."""
        if self.blocked and self.jurisdiction and any(
            signal in signals and region_covers(region, self.jurisdiction)
            for region, signals in self.blocking
        ):
            return j.c.signal == signal
        return and_(j.c.signal == signal, self.blocking_clause())

    def kept_signals(self, signals: Iterable[str]) -> dict[str, bool] | None:
        """Whether the vault's kept counts (``catalog.vault_counts``) answer this selection:
        None unless it counts blocked faces of one region; else, per signal, whether the rules
        in force block every tie of the region by it (True: its kept figures) or none (False:
        zeros). None too when a rule blocks a signal in only part of the region (a rule for
        US-IL-CHI, counting US-IL): that needs the ties themselves."""
        if self.blocked is not True or not self.jurisdiction:
            return None
        kept = {}
        for signal in signals:
            regions = [region for region, signals in self.blocking if signal in signals]
            if any(region_covers(region, self.jurisdiction) for region in regions):
                kept[signal] = True
            elif any(region_covers(self.jurisdiction, region) for region in regions):
                return None
            else:
                kept[signal] = False
        return kept

    def region_clause(self) -> ColumnElement[bool]:
        """Jurisdiction rows that cover the selected region (and signal)."""
        clauses = []
        if self.jurisdiction:
            # The prefix LIKE is the index range (ix_jurisdictions_ties); the OR then keeps
            # US-IL and US-IL-… but not US-ILX.
            prefix = _like_escape(self.jurisdiction)
            clauses.append(and_(
                j.c.region.like(prefix + "%", escape="\\"),
                or_(j.c.region == self.jurisdiction,
                    j.c.region.like(prefix + "-%", escape="\\")),
            ))  # fmt: skip
        if self.signal:
            clauses.append(j.c.signal == self.signal)
        return and_(*clauses) if clauses else true()

    def face_clause(self) -> ColumnElement[bool]:
        """Active faces, blocked or searchable as selected (no jurisdiction condition)."""
        clauses = [f.c.status == "active"]
        if self.blocked is not None:
            # A bare ``blocked`` (not ``IS true``) so PostgreSQL sees that the partial index
            # of the vault (ix_faces_vault) covers the query.
            clauses.append(f.c.blocked if self.blocked else not_(f.c.blocked))
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


def _like_escape(text: str) -> str:
    """``text`` with LIKE's wildcards escaped (by backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


#: What the per-signal rows of ``count`` mean (the JSON says it too).
BY_SIGNAL_MEANS = (
    "faces blocked by this signal under the blocking rules in force (a rule's region covers "
    "the face's tie to the region by this signal), and their photos and source URLs; a face "
    "blocked by two signals counts under each, and faces blocked for another reason (e.g. no "
    "consent on record) count in the total only"
)


def count(conn, selection: Selection, verify: bool = False) -> dict[str, Any]:
    """Photos, faces and distinct source URLs in the selection, in total and per signal
    (``by_signal``: the faces each signal blocks, see BY_SIGNAL_MEANS).

    Blocked faces of one region (``--blocked -j US-IL``) are read from the vault's kept
    counts (``catalog.vault_counts``, migration 0012): one row per figure, after folding in
    the changes since the last count; 2.6–3.3 s by the statement below at 10^7 faces on
    PostgreSQL (BENCHMARKS.md).

    Otherwise, with a region or signal, one statement counts in the database: the (face,
    photo, signal) ties are folded per face, then per photo, then per source URL by GROUP BY
    (hash aggregates, no ``count(DISTINCT …)`` sorts), so only one row of totals comes back.
    Counting the ties in Python took 0.56 s at 10^6 faces and would fetch ~10^6 rows at 10^7;
    ten correlated sub-queries took 2.6 s at 10^6 (BENCHMARKS.md). Distinct URLs are distinct
    ``source_url_digest`` values (SHA-256, migration 0011), read with the photo id from
    ``ix_photo_sources_url_digest`` alone: the URLs themselves cost a heap page per provenance
    row (3.6 s of 4 at 10^7 faces).

    ``verify``: when the kept counts answer, count the ties by the statement too and raise
    ``VaultCountsCorrupt`` if they differ (an auditor's check; seconds at 10^7 faces).
    """
    signals = [selection.signal] if selection.signal else list(SIGNALS)
    if (kept := selection.kept_signals(signals)) is not None:
        total, by_signal = _kept_counts(conn, selection, kept)
        if verify:
            _check_kept(conn, selection, signals, total, by_signal)
    elif not selection.by_region:  # faces tied to no region count too (e.g. lacking consent)
        total = _counts(conn, selection.face_clause())
        tied = tie_counts(conn, selection, signals)
        by_signal = tied["by_signal"]
    else:
        tied = tie_counts(conn, selection, signals)
        total, by_signal = tied["total"], tied["by_signal"]
    return {
        "blocked": selection.blocked,
        "jurisdiction": selection.jurisdiction,
        "total": total,
        "by_signal": by_signal,
        "by_signal_means": BY_SIGNAL_MEANS,
    }


def _kept_counts(
    conn, selection: Selection, kept: dict[str, bool]
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """The total and per-signal figures of a blocked count of one region, from the vault's
    kept counts (``catalog.vault_counts``: one row per figure, pending changes folded in
    first), on a connection of their own, which holds the fold lock."""
    overall = selection.signal or vault_counts.ANY_SIGNAL
    with vault_counts.current(conn.engine) as kept_conn:
        figures = vault_counts.figures(
            kept_conn, selection.jurisdiction or "",
            [overall, *[signal for signal, covered in kept.items() if covered]],
        )
    zero = {"photos": 0, "faces": 0, "source_urls": 0}
    by_signal = {signal: figures[signal] if covered else dict(zero)
                 for signal, covered in kept.items()}  # fmt: skip
    return figures[overall], by_signal


def _check_kept(conn, selection: Selection, signals: list[str], total: dict[str, int],
                by_signal: dict[str, dict[str, int]]) -> None:  # fmt: skip
    """Raise VaultCountsCorrupt unless the statement over the ties gives the kept figures."""
    tied = tie_counts(conn, selection, signals)
    if tied != {"total": total, "by_signal": by_signal}:
        raise VaultCountsCorrupt(
            f"the vault's kept counts of {selection.jurisdiction} ({total}, per signal "
            f"{by_signal}) differ from a count of its ties ({tied['total']}, per signal "
            f"{tied['by_signal']}): run `faceledger discovery recount`, then count again"
        )


#: ``work_mem`` for the count's statement on PostgreSQL (a limit, not an allocation): at 10^7
#: faces its largest hash aggregate held 135 MB; hash nodes get twice this (PostgreSQL's
#: ``hash_mem_multiplier``), and above it they spill to disk as before.
COUNT_WORK_MEM = "128MB"


def _flag(condition: ColumnElement[bool]) -> Any:
    """1 where ``condition`` holds, else 0 (portable: SQLite has no bool_or)."""
    return case((condition, 1), else_=0)


def tie_counts(conn, selection: Selection, signals: list[str]) -> dict[str, Any]:
    """Faces, photos and source URLs tied to the selection's region, in total and per signal
    (those the signal blocks), counted by one statement of nested GROUP BYs.

    On PostgreSQL the statement gets ``COUNT_WORK_MEM`` (``SET LOCAL``): at 10^7 faces its
    sorts and hash aggregates hold ~10^5–10^6 rows each and spilled to disk at the default
    4 MB. The photos come out ordered by id, so the probes of ``ix_photo_sources_url_digest``
    walk the index in order (each leaf page read once) rather than at random: 0.9–1.5 s, not
    8.3 s for 373k photos at 10^7 faces (BENCHMARKS.md, "The count after migration 0011").
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SET LOCAL work_mem = '{COUNT_WORK_MEM}'"))
    ties = (
        select(f.c.id.label("face_id"), f.c.photo_id.label("photo_id"),
               *[func.max(_flag(selection.signal_blocks(s))).label(f"s{n}")
                 for n, s in enumerate(signals)])
        .select_from(f.join(j, TIE))
        .where(selection.face_clause(), selection.region_clause())
        .group_by(f.c.id, f.c.photo_id)
    ).cte("per_face")  # fmt: skip
    per_photo = (
        select(ties.c.photo_id, func.count().label("faces"),
               *[func.sum(ties.c[f"s{n}"]).label(f"f{n}") for n in range(len(signals))],
               *[func.max(ties.c[f"s{n}"]).label(f"p{n}") for n in range(len(signals))])
        .group_by(ties.c.photo_id)
        .order_by(ties.c.photo_id)  # the source probes below then walk their index in order
    ).cte("per_photo")  # fmt: skip
    per_url = (
        select(*[func.max(per_photo.c[f"p{n}"]).label(f"u{n}") for n in range(len(signals))])
        .select_from(per_photo.join(ps, ps.c.photo_id == per_photo.c.photo_id))
        .where(ps.c.source_url_digest.is_not(None))
        .group_by(ps.c.source_url_digest)
    ).subquery("per_url")  # fmt: skip
    photo_totals = select(
        func.count().label("photos"), func.coalesce(func.sum(per_photo.c.faces), 0),
        *[func.coalesce(func.sum(per_photo.c[f"f{n}"]), 0) for n in range(len(signals))],
        *[func.coalesce(func.sum(per_photo.c[f"p{n}"]), 0) for n in range(len(signals))],
    ).subquery("photo_totals")
    url_totals = select(
        func.count().label("urls"),
        *[func.coalesce(func.sum(per_url.c[f"u{n}"]), 0) for n in range(len(signals))],
    ).subquery("url_totals")
    row = [int(v or 0) for v in conn.execute(
        select(photo_totals, url_totals).select_from(photo_totals.join(url_totals, true()))
    ).one()]  # fmt: skip
    k = len(signals)
    photos, faces, face_n, photo_n = row[0], row[1], row[2:2 + k], row[2 + k:2 + 2 * k]
    urls, url_n = row[2 + 2 * k], row[3 + 2 * k:]
    return {
        "total": {"photos": photos, "faces": faces, "source_urls": urls},
        "by_signal": {
            s: {"photos": photo_n[n], "faces": face_n[n], "source_urls": url_n[n]}
            for n, s in enumerate(signals)
        },
    }


def _counts(conn, where: ColumnElement[bool]) -> dict[str, int]:
    faces = select(f.c.id, f.c.photo_id).where(where).subquery()
    n_faces, n_photos = conn.execute(
        select(func.count(faces.c.id), func.count(distinct(faces.c.photo_id)))
    ).one()
    urls = conn.scalar(
        select(func.count(distinct(ps.c.source_url_digest))).where(
            ps.c.photo_id.in_(select(faces.c.photo_id)), ps.c.source_url_digest.is_not(None)
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


def preferred_source(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The provenance row to show for a photo: the first with a URL and a retrieval date,
    else the first with a URL, else the first (a folder path); {} when there is none."""
    for wanted in (lambda r: r.get("source_url") and r.get("retrieved_at"),
                   lambda r: r.get("source_url"), lambda r: True):  # fmt: skip
        found = next((r for r in rows if wanted(r)), None)
        if found is not None:
            return found
    return {}


def vector_dates(conn, selection: Selection) -> list[dict[str, Any]]:
    """Per selected face: ids, vector date and model, the photo's preferred source (URL and
    retrieval date) and every provenance row of the photo (``provenance``)."""
    return list(iter_vector_dates(conn, selection))


def _provenance_of(conn, photo_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Every provenance row of the given photos, in stored order, keyed by photo id."""
    provenance: dict[int, list[dict[str, Any]]] = {}
    for start in range(0, len(photo_ids), 500):  # bounded IN lists
        for r in conn.execute(
            select(ps.c.photo_id, ps.c.kind, ps.c.locator, ps.c.source_url, ps.c.page_url,
                   ps.c.retrieved_at, w.c.domain)
            .select_from(ps.outerjoin(w))
            .where(ps.c.photo_id.in_(photo_ids[start:start + 500]))
            .order_by(ps.c.photo_id, ps.c.id)
        ).mappings():  # fmt: skip
            provenance.setdefault(r["photo_id"], []).append(
                {"kind": r["kind"], "locator": r["locator"], "source_url": r["source_url"],
                 "page_url": r["page_url"], "website": r["domain"],
                 "retrieved_at": iso(r["retrieved_at"])}
            )  # fmt: skip
    return provenance


def iter_vector_dates(
    conn, selection: Selection, batch: int = 2_000
) -> Iterator[dict[str, Any]]:
    """:func:`vector_dates` row by row: faces read from a server-side cursor ``batch`` rows at
    a time, and the provenance of each batch's photos read with it, so 10^7 faces never sit in
    memory at once (the caller keeps ``conn`` open)."""
    result = conn.execute(
        select(f.c.id, f.c.photo_id, f.c.vector_collected_at, f.c.model, f.c.model_version)
        .where(selection.faces_where())
        .order_by(f.c.id)
        .execution_options(yield_per=batch)  # stream_results: a server-side cursor on PG
    ).mappings()
    for rows in result.partitions():
        provenance = _provenance_of(conn, sorted({r["photo_id"] for r in rows}))
        for r in rows:
            rows_of_photo = provenance.get(r["photo_id"], [])
            best = preferred_source(rows_of_photo)
            yield {
                "face_id": r["id"],
                "photo_id": r["photo_id"],
                "source_url": best.get("source_url") or best.get("locator"),
                "retrieved_at": best.get("retrieved_at"),
                "vector_collected_at": iso(r["vector_collected_at"]),
                "model": r["model"],
                "model_version": r["model_version"],
                "provenance": rows_of_photo,
            }


# -- locate, produce -------------------------------------------------------------------------
def one_face(face_id: int) -> ColumnElement[bool]:
    """The condition selecting active face ``face_id`` (for ``Catalog.vectors``)."""
    return (f.c.id == int(face_id)) & (f.c.status == "active")


def located_faces(
    conn: Connection, face_ids: Iterable[int], include_vault: bool
) -> list[dict[str, Any]]:
    """Active faces of active photos among ``face_ids`` (searchable only unless
    ``include_vault``), with box, model, vector date and photo facts; by photo and ordinal."""
    where = [f.c.id.in_(list(face_ids)), f.c.status == "active", p.c.status == "active"]
    if not include_vault:
        where.append(f.c.blocked.is_(False))
    return [
        dict(r)
        for r in conn.execute(
            select(
                f.c.id,
                f.c.photo_id,
                f.c.ordinal,
                f.c.box_top,
                f.c.box_right,
                f.c.box_bottom,
                f.c.box_left,
                f.c.blocked,
                f.c.model,
                f.c.model_version,
                f.c.vector_collected_at,
                p.c.sha256,
                p.c.taken_at,
                p.c.stored_path,
            )
            .select_from(f.join(p))
            .where(*where)
            .order_by(f.c.photo_id, f.c.ordinal)
        )
        .mappings()
        .all()
    ]


def faces_of_photos(photo_ids: Iterable[int]) -> ColumnElement[bool]:
    """The condition selecting the active faces of these photos (for ``Catalog.vectors``)."""
    return f.c.photo_id.in_(list(photo_ids)) & (f.c.status == "active")


def export_facts(conn: Connection, face_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Per face: photo id, model, version, vector date, blocked, and its photo's hashes."""
    ids = list(face_ids)
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):  # bounded IN lists
        for r in conn.execute(
            select(f.c.id, f.c.photo_id, f.c.model, f.c.model_version, f.c.vector_collected_at,
                   f.c.blocked, p.c.sha256, p.c.md5, p.c.sha1)
            .select_from(f.join(p)).where(f.c.id.in_(ids[start:start + 500]))
        ).mappings():  # fmt: skip
            out[r["id"]] = dict(r)
    return out


def selected_photo_ids(conn: Connection, selection: Selection) -> list[int]:
    """Ids of the photos with a face in the selection, sorted."""
    return list(
        conn.scalars(
            select(f.c.photo_id).where(selection.faces_where()).distinct().order_by(f.c.photo_id)
        )
    )


# -- the report ------------------------------------------------------------------------------
def report_totals(conn: Connection) -> dict[str, int]:
    """Active faces, blocked active faces and active photos."""
    active = f.c.status == "active"
    return {
        "faces": conn.scalar(select(func.count()).select_from(f).where(active)) or 0,
        "blocked_faces": conn.scalar(
            select(func.count()).select_from(f).where(active, f.c.blocked.is_(True))) or 0,
        "photos": conn.scalar(select(func.count()).select_from(t.photos)
                              .where(t.photos.c.status == "active")) or 0,
    }  # fmt: skip


def report_by_jurisdiction(conn: Connection) -> list[dict[str, Any]]:
    """Per (region, signal): active faces, their photos, and how many of the faces are blocked."""
    active = f.c.status == "active"
    rows = conn.execute(
        select(j.c.region, j.c.signal, func.count(func.distinct(f.c.id)),
               func.count(func.distinct(f.c.photo_id)),
               func.sum(f.c.blocked.cast(Integer())))
        .select_from(j.join(f, TIE)).where(active)
        .group_by(j.c.region, j.c.signal).order_by(j.c.region, j.c.signal)
    ).all()  # fmt: skip
    return [
        {"region": r, "signal": s, "faces": nf, "photos": np_, "blocked_faces": int(nb or 0)}
        for r, s, nf, np_, nb in rows
    ]


def report_vector_months(conn: Connection) -> list[tuple[str, int, int]]:
    """(month, active face vectors collected then, of them blocked), by month."""
    months: Counter[str] = Counter()
    blocked_months: Counter[str] = Counter()
    active = f.c.status == "active"
    for when, blocked in conn.execute(select(f.c.vector_collected_at, f.c.blocked).where(active)):
        month = as_utc(when).strftime("%Y-%m")
        months[month] += 1
        blocked_months[month] += int(bool(blocked))
    return [(m, months[m], blocked_months[m]) for m in sorted(months)]


def report_by_website(conn: Connection, top_sites: int) -> list[dict[str, Any]]:
    """The ``top_sites`` websites with the most photos: publisher, region, photos, rows."""
    site_rows = conn.execute(
        select(w.c.domain, w.c.publisher, w.c.publisher_region,
               func.count(func.distinct(ps.c.photo_id)), func.count(ps.c.id), w.c.sensitivity)
        .select_from(w.join(ps)).group_by(w.c.id)
        .order_by(func.count(func.distinct(ps.c.photo_id)).desc()).limit(top_sites)
    ).all()  # fmt: skip
    return [
        {"website": d, "publisher": p_, "publisher_region": r, "photos": n, "source_rows": s,
         "sensitivity": sens}
        for d, p_, r, n, s, sens in site_rows
    ]


def report_attestations(conn: Connection, names: Iterable[str]) -> list[dict[str, Any]]:
    """Every attestation on file of the users ``names``: user, role, signed, expires, hash."""
    u, a = t.users, t.attestations
    rows = conn.execute(
        select(u.c.name, u.c.role, a.c.signed_at, a.c.expires_at, a.c.sha256)
        .select_from(a.join(u, a.c.user_id == u.c.id))
        .where(u.c.name.in_(sorted(set(names)))).order_by(u.c.name, a.c.signed_at)
    ).all()  # fmt: skip
    return [
        {"user": n, "role": r, "signed_at": iso(s_), "expires_at": iso(e), "sha256": h}
        for n, r, s_, e, h in rows
    ]
