"""Discovery calls that reach biometric data: class size, locate a person, Bates productions.

Each call is authorised (custodians only, with a current attestation wherever blocked faces or
the vault are in scope), reads what it needs, and leaves an audit entry. Reference photos given
to :func:`locate` are decoded and embedded in memory only: neither their bytes nor their
vectors are written anywhere.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceledger import audit
from faceledger.app.library import Actor, Library
from faceledger.catalog import discovery as catalog_discovery
from faceledger.catalog import productions as catalog_productions
from faceledger.catalog.discovery import Selection
from faceledger.clock import iso, utcnow
from faceledger.discovery.people import DEFAULT_THRESHOLD, estimate_people
from faceledger.discovery.production import (
    ProductionError,
    ProductionItem,
    write_production,
)
from faceledger.errors import InputError, NotFoundError

__all__ = ["people", "locate", "produce", "report"]


# -- class size -----------------------------------------------------------------------------
def people(
    lib: Library,
    actor: Actor,
    *,
    blocked: bool | None = None,
    jurisdiction: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """Estimate how many distinct people the selected faces show, with a low-high range."""
    lib.authorize(actor, "discovery.people")
    selection = Selection(blocked, jurisdiction, None, actor.is_custodian)
    if selection.blocked is not False:
        lib.require_vault_access(actor)
    ids, vectors = lib.catalog.vectors(selection.faces_where())
    estimate = estimate_people(vectors, threshold=threshold)
    result = {
        "blocked": selection.blocked,
        "jurisdiction": selection.jurisdiction,
        "faces": estimate.faces,
        "estimate": estimate.estimate,
        "low": estimate.low,
        "high": estimate.high,
        "thresholds": {
            "strict": round(estimate.thresholds[0], 4),
            "threshold": round(estimate.thresholds[1], 4),
            "loose": round(estimate.thresholds[2], 4),
        },
        "counts": {
            "strict": estimate.counts[0],
            "threshold": estimate.counts[1],
            "loose": estimate.counts[2],
        },
        "singletons": estimate.singletons,
        "cluster_sizes": list(estimate.cluster_sizes),
        "method": "chinese whispers (dlib) over faces closer than each threshold",
    }
    with lib.writing() as conn:
        audit.append(
            conn,
            actor.name,
            "discovery.people",
            {"faces": [int(i) for i in ids]},
            {
                "blocked": selection.blocked,
                "jurisdiction": selection.jurisdiction,
                "estimate": estimate.estimate,
                "low": estimate.low,
                "high": estimate.high,
            },
        )
    return result


# -- locate a person ------------------------------------------------------------------------
def _photo_details(
    lib: Library, face_hits: dict[int, float], include_vault: bool
) -> list[dict[str, Any]]:
    """Matched faces grouped by photo, with provenance and vector dates (vault rows included)."""
    if not face_hits:
        return []
    with lib.catalog.engine.connect() as conn:
        rows = catalog_discovery.located_faces(conn, face_hits, include_vault)
        sources = lib.catalog.sources(conn, [r["photo_id"] for r in rows])
    photos: dict[int, dict[str, Any]] = {}
    for row in rows:
        photo = photos.setdefault(
            row["photo_id"],
            {
                "photo_id": row["photo_id"],
                "sha256": row["sha256"],
                "taken_at": iso(row["taken_at"]),
                "stored": row["stored_path"] is not None,
                "blocked": False,
                "best_distance": None,
                "faces": [],
                "provenance": sources.get(row["photo_id"], []),
            },
        )
        distance = round(face_hits[row["id"]], 4)
        photo["faces"].append(
            {
                "face_id": row["id"],
                "ordinal": row["ordinal"],
                "box": {
                    "top": row["box_top"],
                    "right": row["box_right"],
                    "bottom": row["box_bottom"],
                    "left": row["box_left"],
                },
                "blocked": bool(row["blocked"]),
                "distance": distance,
                "vector_collected_at": iso(row["vector_collected_at"]),
                "model": row["model"],
                "model_version": row["model_version"],
            }
        )
        photo["blocked"] = photo["blocked"] or bool(row["blocked"])
        if photo["best_distance"] is None or distance < photo["best_distance"]:
            photo["best_distance"] = distance
    return sorted(photos.values(), key=lambda p: (p["best_distance"], p["photo_id"]))


def locate(
    lib: Library,
    actor: Actor,
    matter: str,
    *,
    probes: Sequence[Any] = (),
    face_id: int | None = None,
    include_vault: bool = False,
    authority_text: str | None = None,
    authority_name: str | None = None,
    threshold: float | None = None,
    engine: Any = None,
) -> dict[str, Any]:
    """Every photo of the person in the reference photos (``probes``) or of stored ``face_id``.

    ``probes`` are :class:`faceledger.app.search.Probe` objects (bytes in memory); their vectors
    exist only inside this call. Custodians with a current attestation only.
    """
    if not matter or not matter.strip():
        raise InputError("a matter is required: name the matter this search is for")
    if bool(probes) == (face_id is not None):
        raise InputError("give reference photos or a stored face, not both")
    lib.authorize(actor, "discovery.locate")
    lib.require_vault_access(actor)
    threshold = lib.settings.match_threshold if threshold is None else threshold
    queries: list[np.ndarray] = []
    probe_report: list[dict[str, Any]] = []
    if face_id is not None:
        ids, vectors = lib.catalog.vectors(catalog_discovery.one_face(face_id))
        if not len(ids):
            raise NotFoundError(f"no face with id {face_id}")
        queries.append(vectors[0])
        probe_report.append({"face_id": int(face_id), "faces": 1})
    else:
        from faceledger.app.probes import Wanted, read_probe

        engine = engine or lib.face_engine()
        for probe in probes:
            # A reference photo must show the one person: the largest face is used.
            read = read_probe(lib.settings, engine, probe, Wanted.LARGEST)
            entry: dict[str, Any] = {"probe": probe.name, "faces": len(read.faces)}
            if read.error:
                entry["error"] = read.error
            if read.note:
                entry["note"] = read.note
            queries.extend(face.vector for face in read.faces)
            probe_report.append(entry)
    hits: dict[int, float] = {}
    if queries:
        matrix = np.stack(queries).astype(np.float32)
        for name in ("searchable", "vault") if include_vault else ("searchable",):
            for distances, ids in lib.index(name).within(matrix, threshold):
                for d, i in zip(distances, ids, strict=True):
                    hits[int(i)] = min(float(d), hits.get(int(i), float("inf")))
        del matrix
    queries.clear()
    photos = _photo_details(lib, hits, include_vault)
    authority_sha = (
        hashlib.sha256(authority_text.encode("utf-8")).hexdigest()
        if authority_text is not None
        else None
    )
    face_ids = sorted(face["face_id"] for p in photos for face in p["faces"])
    result = {
        "matter": matter,
        "authority_sha256": authority_sha,
        "include_vault": include_vault,
        "threshold": threshold,
        "references": probe_report,
        "photos": photos,
    }
    with lib.writing() as conn:
        audit.append(
            conn,
            actor.name,
            "discovery.locate",
            {"faces": face_ids, "photos": [p["photo_id"] for p in photos]},
            {
                "matter": matter,
                "authority_sha256": authority_sha,
                "authority_file": authority_name,
                "include_vault": include_vault,
                "threshold": threshold,
                "from_face": int(face_id) if face_id is not None else None,
                "reference_photos": len(probes),
                "reference_faces": sum(e["faces"] for e in probe_report),
            },
        )
    return result


# -- productions ----------------------------------------------------------------------------
def _selected_photo_ids(lib: Library, selection: Selection) -> list[int]:
    with lib.catalog.engine.connect() as conn:
        return catalog_discovery.selected_photo_ids(conn, selection)


def _production_items(lib: Library, photo_ids: Iterable[int]) -> list[ProductionItem]:
    ids = list(photo_ids)
    with lib.catalog.engine.connect() as conn:
        photos = catalog_productions.photo_files(conn, ids)
        sources = lib.catalog.sources(conn, ids)
        faces = catalog_productions.face_facts(conn, ids)
        regions = catalog_productions.photo_regions(conn, ids)
    items = []
    for pid in ids:
        row = photos.get(pid)
        if row is None or row.status != "active":
            raise NotFoundError(f"no photo with id {pid}")
        path = lib.photo_file(row.stored_path)
        if path is None or not path.is_file():
            raise ProductionError(f"photo {pid} has no stored file to produce")
        srcs = sources.get(pid, [])
        first = srcs[0] if srcs else {}
        with_url = next((s for s in srcs if s.get("source_url")), first)
        dates = sorted({iso(r.vector_collected_at) for r in faces[pid]})
        extension = path.suffix.removeprefix(".") or (row.format or "bin").lower()
        items.append(
            ProductionItem(
                source=path,
                photo_id=pid,
                extension=extension,
                metadata={
                    "FILENAME": Path(str(first.get("locator") or path.name)).name,
                    "SOURCE_URL": with_url.get("source_url"),
                    "PAGE_URL": with_url.get("page_url"),
                    "RETRIEVED_AT": with_url.get("retrieved_at"),
                    "VECTOR_COLLECTED_AT": dates,
                    "JURISDICTIONS": regions[pid],
                    "BLOCKED": any(bool(r.blocked) for r in faces[pid]),
                },
            )
        )
    return items


def produce(
    lib: Library,
    actor: Actor,
    matter: str,
    prefix: str,
    out_dir: Path,
    *,
    photo_ids: Sequence[int] | None = None,
    jurisdiction: str | None = None,
    blocked: bool | None = None,
    width: int = 8,
) -> dict[str, Any]:
    """Produce the selected photos under Bates numbers that continue the matter's numbering."""
    if not matter or not matter.strip():
        raise InputError("a matter is required: name the matter this production is for")
    lib.authorize(actor, "discovery.produce")
    lib.require_vault_access(actor)
    if photo_ids is None:
        if jurisdiction is None and blocked is None:
            raise InputError("choose what to produce: a list of photo ids, or a jurisdiction")
        selection = Selection(blocked, jurisdiction, None, actor.is_custodian)
        photo_ids = _selected_photo_ids(lib, selection)
        scope = {"jurisdiction": selection.jurisdiction, "blocked": selection.blocked}
    else:
        scope = {"photos_file": True}
    if not photo_ids:
        raise InputError("the selection holds no photos; nothing to produce")
    items = _production_items(lib, photo_ids)
    with lib.catalog.engine.connect() as conn:
        first_number = catalog_productions.next_number(conn, matter)
        head = audit.head(conn)  # the log as the production is made: its manifest names it
    volume = f"{prefix}{first_number:0{width}d}"
    result = write_production(Path(out_dir), prefix, first_number, items, volume, width, head)
    try:
        with lib.writing() as conn:
            if catalog_productions.next_number(conn, matter) != first_number:
                raise ProductionError(
                    f"another production of matter {matter!r} was recorded meanwhile; run again"
                )
            production_id = catalog_productions.insert_production(
                conn,
                matter=matter,
                prefix=prefix,
                first_number=result.first_number,
                last_number=result.last_number,
                out_dir=str(Path(out_dir).resolve()),
                manifest_sha256=result.manifest_sha256,
                produced_by=actor.name,
                produced_at=utcnow(),
                items=[(doc.bates, doc.photo_id, doc.sha256) for doc in result.documents],
            )
            audit.append(
                conn,
                actor.name,
                "discovery.produce",
                {"photos": [doc.photo_id for doc in result.documents]},
                {
                    "matter": matter,
                    "production_id": production_id,
                    "prefix": prefix,
                    "first_bates": result.first_bates,
                    "last_bates": result.last_bates,
                    "out_dir": str(Path(out_dir).resolve()),
                    "manifest_sha256": result.manifest_sha256,
                    "audit_head_id": head.id if head else None,
                    **scope,
                },
            )
    except BaseException:
        # Not recorded, so not produced: a number the catalog does not know must not circulate.
        shutil.rmtree(result.out_dir, ignore_errors=True)
        raise
    return {
        "production_id": production_id,
        "matter": matter,
        "prefix": prefix,
        "volume": volume,
        "first_bates": result.first_bates,
        "last_bates": result.last_bates,
        "documents": len(result.documents),
        "out_dir": str(result.out_dir),
        "dat": str(result.dat_path),
        "opt": str(result.opt_path),
        "manifest": str(result.manifest_path),
        "manifest_sha256": result.manifest_sha256,
        "audit_head": head.to_json() if head else None,
        "items": [{"bates": d.bates, "photo_id": d.photo_id} for d in result.documents],
    }


def report(lib: Library, actor: Actor, matter: str, out: Path, pdf: Path | None = None) -> dict:
    """Write the discovery report (HTML, and PDF if asked); custodians with an attestation."""
    from faceledger.discovery.report import gather, render_html, render_pdf

    lib.authorize(actor, "discovery.report")
    lib.require_vault_access(actor)  # the report counts blocked faces
    with lib.catalog.engine.connect() as conn:
        # Read just before the counts: entries appended meanwhile come after the named head.
        data = gather(conn, matter, iso(utcnow()) or "", audit_head=audit.head(conn))
    page = render_html(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    head = data.audit_head.to_json() if data.audit_head else None
    result = {"html": str(out), "html_sha256": hashlib.sha256(page.encode()).hexdigest(),
              "totals": data.totals, "audit_head": head}  # fmt: skip
    if pdf is not None:
        render_pdf(data, pdf)
        result["pdf"] = str(pdf)
        result["pdf_sha256"] = hashlib.sha256(pdf.read_bytes()).hexdigest()
    with lib.writing() as conn:
        audit.append(conn, actor.name, "discovery.report", details={"matter": matter, **result})
    return result
