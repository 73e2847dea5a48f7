"""Discovery calls for counsel: class size, locate a person, Bates productions and their
register, vector export, protective orders (redaction of sensitive sites), the matter report.

Each call is authorised (custodians only, with a current attestation wherever blocked faces or
the vault are in scope), reads what it needs, and leaves an audit entry. Reference photos given
to :func:`locate` are decoded and embedded in memory only: neither their bytes nor their
vectors are written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from faceledger import audit
from faceledger.app.library import Actor, Library
from faceledger.catalog import discovery as catalog_discovery
from faceledger.catalog import productions as catalog_productions
from faceledger.catalog import sites as catalog_sites
from faceledger.catalog.discovery import Selection
from faceledger.catalog.sites import SENSITIVITIES
from faceledger.clock import as_utc, iso, utcnow
from faceledger.discovery.loadfiles import DEFAULT_PROFILE
from faceledger.discovery.loadfiles import profile as loadfile_profile
from faceledger.discovery.people import DEFAULT_THRESHOLD, estimate_people
from faceledger.discovery.production import (
    FaceRecord,
    ProductionError,
    ProductionItem,
    Redaction,
    inspect_production,
    write_production,
)
from faceledger.discovery.redaction import Redactor, SensitiveSite
from faceledger.errors import BadOptionError, InputError, NotFoundError

__all__ = [
    "people",
    "locate",
    "produce",
    "report",
    "record_order",
    "sources",
    "list_productions",
    "verify_production_dir",
    "export_vectors",
]


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
    with lib.catalog.engine.connect() as conn:
        redactor = _redactor(conn, matter)
    # Only the sites the located person's photos came from (as the seed's plaintiffs asked),
    # with the ones the matter's protective orders cover redacted.
    sites: dict[str, dict[str, Any]] = {}
    for photo in photos:
        clean_rows = []
        for source in photo["provenance"]:
            clean, done = redactor.redact_row(source, _SITE_FIELDS)
            if done:
                clean["redactions"] = sorted({f"{name}:{cat}" for name, cat in done})
            clean_rows.append(clean)
            if clean.get("website"):
                site = sites.setdefault(clean["website"], {"website": clean["website"],
                                                           "photos": set()})  # fmt: skip
                site["photos"].add(photo["photo_id"])
        photo["provenance"] = clean_rows
    site_list = [{"website": s_["website"], "photos": sorted(s_["photos"])}
                 for s_ in sorted(sites.values(), key=lambda x: x["website"])]  # fmt: skip
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
        "sites": site_list,
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


# -- protective orders and redaction ----------------------------------------------------------
def _redactor(conn: Any, matter: str | None) -> Redactor:
    """What the protective orders of ``matter`` redact (nothing without a matter or order)."""
    if not matter:
        return Redactor()
    sites = [SensitiveSite(d, pub, sens) for d, pub, sens in catalog_sites.sensitivities(conn)]
    return Redactor(catalog_productions.order_categories(conn, matter), tuple(sites))


def record_order(
    lib: Library,
    actor: Actor,
    matter: str,
    categories: Sequence[str],
    order_bytes: bytes,
    file_name: str | None,
) -> dict[str, Any]:
    """Record a protective order for ``matter``: the site sensitivities it redacts from then on
    in the matter's productions, reports, exports and source listings."""
    if not matter or not matter.strip():
        raise InputError("name the matter the protective order was entered in")
    lib.authorize(actor, "discovery.produce")
    wanted = sorted({c.strip().lower() for c in categories if c.strip()})
    if not wanted:
        raise InputError("list at least one category to redact, e.g. dating")
    unknown = [c for c in wanted if c not in SENSITIVITIES]
    if unknown:
        raise BadOptionError(
            f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}: "
            f"choose from {', '.join(SENSITIVITIES)}"
        )
    digest = hashlib.sha256(order_bytes).hexdigest()
    with lib.writing() as conn:
        order_id = catalog_productions.record_order(
            conn, matter=matter, categories=wanted, file_name=file_name, file_sha256=digest,
            recorded_by=actor.name, recorded_at=utcnow(),
        )  # fmt: skip
        sites = [d for d, _, sens in catalog_sites.sensitivities(conn) if sens in wanted]
        audit.append(conn, actor.name, "discovery.order", details={
            "matter": matter, "order_id": order_id, "categories": wanted,
            "file": file_name, "file_sha256": digest, "sites_redacted": len(sites),
        })  # fmt: skip
    return {"order_id": order_id, "matter": matter, "categories": wanted,
            "file_sha256": digest, "sites_redacted": len(sites)}  # fmt: skip


def sources(
    lib: Library,
    actor: Actor,
    *,
    matter: str | None = None,
    blocked: bool | None = None,
    jurisdiction: str | None = None,
) -> list[dict[str, Any]]:
    """`discovery sources`, with the sites the matter's protective orders cover redacted."""
    from faceledger.app.answers import answer

    rows = answer(lib, actor, "sources", blocked=blocked, jurisdiction=jurisdiction)
    with lib.catalog.engine.connect() as conn:
        redactor = _redactor(conn, matter)
    if not redactor.active:
        return rows
    out = []
    for row in rows:
        clean, done = redactor.redact_row(row, _SITE_FIELDS)
        clean["redactions"] = sorted({f"{name}:{category}" for name, category in done})
        out.append(clean)
    return out


#: The values of a provenance row that name a site (its URLs, its domain, its publisher).
_SITE_FIELDS = ("source_url", "page_url", "website", "publisher", "terms_url", "locator")
_DAT_SITE_FIELDS = ("FILENAME", "SOURCE_URL", "PAGE_URL", "WEBSITE")


# -- productions ----------------------------------------------------------------------------
def _selected_photo_ids(lib: Library, selection: Selection) -> list[int]:
    with lib.catalog.engine.connect() as conn:
        return catalog_discovery.selected_photo_ids(conn, selection)


def _when(value: Any) -> datetime | None:
    """A datetime from the catalog's ISO text or datetime (UTC)."""
    if value is None or value == "":
        return None
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _production_items(
    lib: Library, photo_ids: Iterable[int], redactor: Redactor
) -> list[ProductionItem]:
    ids = list(photo_ids)
    with lib.catalog.engine.connect() as conn:
        photos = catalog_productions.photo_files(conn, ids)
        sources_of = lib.catalog.sources(conn, ids)
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
        srcs = sources_of.get(pid, [])
        first = srcs[0] if srcs else {}
        best = catalog_discovery.preferred_source(srcs)
        dates = sorted(d for d in (_when(r.vector_collected_at) for r in faces[pid]) if d)
        extension = path.suffix.removeprefix(".") or (row.format or "bin").lower()
        metadata, done = redactor.redact_row(
            {
                "FILENAME": Path(str(first.get("locator") or path.name)).name,
                "DATETAKEN": _when(row.taken_at),
                "GPS_LAT": row.gps_lat,
                "GPS_LON": row.gps_lon,
                "SOURCE_URL": best.get("source_url"),
                "PAGE_URL": best.get("page_url"),
                "WEBSITE": best.get("website"),
                "RETRIEVED_AT": _when(best.get("retrieved_at")),
                # One value a record, the first collection; every face's is in the face file.
                "VECTOR_COLLECTED_AT": dates[0] if dates else None,
                "JURISDICTIONS": regions[pid],
                "BLOCKED": any(bool(r.blocked) for r in faces[pid]),
            },
            _DAT_SITE_FIELDS,
        )
        redactions = [Redaction(name, category, "replaced by the redaction marker")
                      for name, category in done]  # fmt: skip
        native_category = redactor.native_category(path)
        if native_category is not None:
            redactions.append(Redaction("NATIVE", native_category, "the native's own metadata "
                                        "names a redacted site"))  # fmt: skip
        items.append(
            ProductionItem(
                source=path,
                photo_id=pid,
                extension=extension,
                metadata=metadata,
                faces=[FaceRecord(r.id, (r.box_top, r.box_right, r.box_bottom, r.box_left),
                                  _when(r.vector_collected_at), r.model, r.model_version)
                       for r in faces[pid]],  # fmt: skip
                strip_metadata=native_category is not None,
                redactions=redactions,
            )
        )
    return items


def _scope(
    lib: Library, actor: Actor, photo_ids: Sequence[int] | None, jurisdiction: str | None,
    blocked: bool | None, what: str,
) -> tuple[list[int], dict[str, Any]]:  # fmt: skip
    """The photos a production or export is of, and its scope as the audit records it."""
    if photo_ids is None:
        if jurisdiction is None and blocked is None:
            raise InputError(f"choose what to {what}: a photo list or a jurisdiction")
        selection = Selection(blocked, jurisdiction, None, actor.is_custodian)
        ids = _selected_photo_ids(lib, selection)
        scope = {"jurisdiction": selection.jurisdiction, "blocked": selection.blocked}
    else:
        ids, scope = list(dict.fromkeys(photo_ids)), {"photos_file": True}
    if not ids:
        raise InputError(f"the selection holds no photos; nothing to {what}")
    return ids, scope


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
    load_profile: str = DEFAULT_PROFILE,
) -> dict[str, Any]:
    """Produce the selected photos under Bates numbers that continue the matter's numbering,
    with load files in ``load_profile`` and the matter's protective orders applied."""
    if not matter or not matter.strip():
        raise InputError("a matter is required: name the matter this production is for")
    lib.authorize(actor, "discovery.produce")
    lib.require_vault_access(actor)
    chosen = loadfile_profile(load_profile)
    photo_ids, scope = _scope(lib, actor, photo_ids, jurisdiction, blocked, "produce")
    with lib.catalog.engine.connect() as conn:
        redactor = _redactor(conn, matter)
    items = _production_items(lib, photo_ids, redactor)
    with lib.catalog.engine.connect() as conn:
        first_number = catalog_productions.next_number(conn, matter)
        head = audit.head(conn)  # the log as the production is made: its manifest names it
    volume = f"{prefix}{first_number:0{width}d}"
    produced_at = utcnow()
    result = write_production(
        Path(out_dir), prefix, first_number, items, volume, width, head,
        load_profile=chosen.name, custodian=actor.name, matter=matter, produced_at=produced_at,
    )  # fmt: skip
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
                produced_at=produced_at,
                items=[(doc.bates, doc.photo_id, doc.sha256) for doc in result.documents],
                volume=volume,
                profile=chosen.name,
                audit_head_id=head.id if head else None,
                audit_head_hash=head.hash if head else None,
                redactions=result.redactions,
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
                    "volume": volume,
                    "profile": chosen.name,
                    "first_bates": result.first_bates,
                    "last_bates": result.last_bates,
                    "out_dir": str(Path(out_dir).resolve()),
                    "manifest_sha256": result.manifest_sha256,
                    "audit_head_id": head.id if head else None,
                    "redactions": result.redactions,
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
        "profile": chosen.name,
        "first_bates": result.first_bates,
        "last_bates": result.last_bates,
        "documents": len(result.documents),
        "out_dir": str(result.out_dir),
        "dat": str(result.dat_path),
        "opt": str(result.opt_path),
        "faces": str(result.faces_path),
        "manifest": str(result.manifest_path),
        "manifest_sha256": result.manifest_sha256,
        "redactions": result.redactions,
        "audit_head": head.to_json() if head else None,
        "items": [{"bates": d.bates, "photo_id": d.photo_id} for d in result.documents],
    }


# -- export of the vectors ------------------------------------------------------------------
def export_vectors(
    lib: Library,
    actor: Actor,
    matter: str,
    out_dir: Path,
    *,
    photo_ids: Sequence[int] | None = None,
    jurisdiction: str | None = None,
    blocked: bool | None = None,
    age_recipient: str | None = None,
) -> dict[str, Any]:
    """Export the face vectors of the selected photos (scoped like `produce`) to Parquet, with
    their Bates numbers in the matter, dates, models and photo hashes; attested custodians."""
    from faceledger.discovery.export import ExportRow, write_export

    if not matter or not matter.strip():
        raise InputError("name the matter the vectors are exported for")
    lib.authorize(actor, "discovery.produce")
    lib.require_vault_access(actor)
    photo_ids, scope = _scope(lib, actor, photo_ids, jurisdiction, blocked, "export")
    ids, vectors = lib.catalog.vectors(catalog_discovery.faces_of_photos(photo_ids))
    with lib.catalog.engine.connect() as conn:
        facts = catalog_discovery.export_facts(conn, [int(i) for i in ids])
        bates = catalog_productions.bates_of_photos(conn, matter, photo_ids)
        head = audit.head(conn)
    rows = [
        ExportRow(int(fid), facts[int(fid)]["photo_id"], bates.get(facts[int(fid)]["photo_id"]),
                  vector, facts[int(fid)]["model"], facts[int(fid)]["model_version"],
                  as_utc(facts[int(fid)]["vector_collected_at"]), facts[int(fid)]["sha256"],
                  facts[int(fid)]["md5"], facts[int(fid)]["sha1"],
                  bool(facts[int(fid)]["blocked"]))
        for fid, vector in zip(ids, vectors, strict=True)
    ]  # fmt: skip
    described = ", ".join(f"{k} {v}" for k, v in scope.items() if v is not None)
    result = write_export(Path(out_dir), matter, rows, scope=described or "selected photos",
                          audit_head=head, age_recipient=age_recipient)  # fmt: skip
    del vectors, rows
    summary = {
        "matter": matter,
        "out_dir": str(result.out_dir),
        "data": str(result.data_path),
        "faces": result.faces,
        "photos": len(photo_ids),
        "encrypted": result.encrypted,
        "parquet_sha256": result.parquet_sha256,
        "manifest_sha256": result.manifest_sha256,
        "audit_head": head.to_json() if head else None,
    }
    try:
        with lib.writing() as conn:
            audit.append(conn, actor.name, "discovery.export_vectors",
                         {"faces": [int(i) for i in ids]}, {**summary, **scope})  # fmt: skip
    except BaseException:
        shutil.rmtree(result.out_dir, ignore_errors=True)  # not audited, so not exported
        raise
    return summary


# -- the production register ------------------------------------------------------------------
def _register_row(conn: Any, row: dict[str, Any]) -> dict[str, Any]:
    items = catalog_productions.production_items(conn, row["id"])
    return {
        "production_id": row["id"],
        "matter": row["matter"],
        "volume": row["volume"],
        "profile": row["profile"],
        "first_bates": items[0]["bates"] if items else None,
        "last_bates": items[-1]["bates"] if items else None,
        "documents": row["documents"] if row["documents"] is not None else len(items),
        "produced_by": row["produced_by"],
        "produced_at": iso(row["produced_at"]),
        "audit_head_id": row["audit_head_id"],
        "redactions": row["redactions"] or 0,
        "manifest_sha256": row["manifest_sha256"],
        "out_dir": row["out_dir"],
    }


def list_productions(lib: Library, actor: Actor, matter: str | None = None) -> list[dict]:
    """The production register: every production (of ``matter``), with its Bates range."""
    lib.authorize(actor, "discovery.produce")
    with lib.catalog.engine.connect() as conn:
        rows = [_register_row(conn, r) for r in catalog_productions.productions(conn, matter)]
    with lib.writing() as conn:
        audit.append(conn, actor.name, "discovery.productions",
                     details={"matter": matter, "rows": len(rows)})  # fmt: skip
    return rows


def verify_production_dir(lib: Library, actor: Actor, out_dir: Path) -> dict[str, Any]:
    """Check a production folder against itself (hashes, Bates continuity, counts) and against
    the register (its manifest, Bates range and count, and the audit head it was made at,
    which the log must still hold)."""
    lib.authorize(actor, "discovery.produce")
    check = inspect_production(Path(out_dir))
    problems = list(check.problems)
    with lib.catalog.engine.connect() as conn:
        row = catalog_productions.find_production(conn, check.manifest_sha256, check.volume)
        registered = _register_row(conn, row) if row else None
    if registered is None:
        problems.append("the register holds no production with this manifest or volume")
    else:
        if registered["manifest_sha256"] != check.manifest_sha256:
            problems.append(
                f"the manifest is not the one registered for production "
                f"{registered['production_id']} (volume {registered['volume']})"
            )
        for name in ("first_bates", "last_bates", "documents"):
            found = getattr(check, name)
            if registered[name] != found:
                problems.append(
                    f"{name.replace('_', ' ')}: the register says {registered[name]}, "
                    f"the folder {found}"
                )
        if row["audit_head_hash"] and (check.audit_head is None
                                       or check.audit_head.hash != row["audit_head_hash"]):
            problems.append("the manifest does not name the audit head the production was "
                            "made at")  # fmt: skip
    head_ok = None
    if check.audit_head is not None:
        verified = audit.verify(lib.catalog.engine,
                                anchor=(check.audit_head.id, check.audit_head.hash))  # fmt: skip
        head_ok = verified.ok
        if not verified.ok:
            problems.append(f"the audit log does not hold the production's head: {verified.reason}")
    result = {
        "out_dir": str(check.out_dir),
        "ok": not problems,
        "problems": problems,
        "volume": check.volume,
        "profile": check.profile,
        "first_bates": check.first_bates,
        "last_bates": check.last_bates,
        "documents": check.documents,
        "audit_head": check.audit_head.to_json() if check.audit_head else None,
        "audit_head_in_log": head_ok,
        "production_id": registered["production_id"] if registered else None,
    }
    with lib.writing() as conn:
        audit.append(conn, actor.name, "discovery.productions.verify", details={
            k: result[k] for k in ("out_dir", "ok", "volume", "production_id")
        } | {"problems": len(problems)})  # fmt: skip
    return result


def _matter_facts(lib: Library, actor: Actor, conn: Any, data: Any) -> None:
    """Fill the report's matter sections: productions, holds, locates, orders, attestations,
    people estimate, sensitive sites (redacted under an order, else flagged)."""
    from faceledger.catalog import holds as catalog_holds
    from faceledger.discovery.redaction import MARKER

    matter = data.matter
    data.policy_version = lib.policy_version()
    data.productions = [_register_row(conn, r)
                        for r in catalog_productions.productions(conn, matter)]  # fmt: skip
    data.holds = [
        {"id": h.id, "scope": f"{h.scope_kind}={h.scope_value}" if h.scope_value is not None
         else h.scope_kind, "created_by": h.created_by, "created_at": iso(h.created_at),
         "released_at": iso(h.released_at)}
        for h in catalog_holds.holds(conn) if h.matter == matter
    ]  # fmt: skip
    data.locates = [
        {"at": e["at"], "actor": e["actor"],
         "authority_sha256": e["details"].get("authority_sha256"),
         "include_vault": e["details"].get("include_vault"),
         "photos": len((e["object_ids"] or {}).get("photos", []))}
        for e in audit.export(lib.catalog.engine)
        if e["action"] == "discovery.locate" and (e["details"] or {}).get("matter") == matter
    ]  # fmt: skip
    data.orders = [{**o, "recorded_at": iso(o["recorded_at"])}
                   for o in catalog_productions.orders(conn, matter)]  # fmt: skip
    involved = {actor.name, *(p["produced_by"] for p in data.productions),
                *(x["actor"] for x in data.locates), *(o["recorded_by"] for o in data.orders)}
    data.attestations = catalog_discovery.report_attestations(conn, involved)
    redactor = _redactor(conn, matter)
    categories = redactor.categories
    data.sensitive_sites = [
        {"website": MARKER.format(category=sens) if sens in categories else domain,
         "sensitivity": sens,
         "status": "redacted under the order" if sens in categories
         else "flagged: no protective order covers it"}
        for domain, _, sens in catalog_sites.sensitivities(conn)
    ]  # fmt: skip
    for row in data.by_website:
        row.update(redactor.redact_row(row, ("website", "publisher"))[0])
    photo_ids = sorted({item["photo_id"] for p in data.productions
                        for item in catalog_productions.production_items(
                            conn, p["production_id"])})  # fmt: skip
    if photo_ids:
        _, vectors = lib.catalog.vectors(catalog_discovery.faces_of_photos(photo_ids))
        if len(vectors):
            estimate = estimate_people(vectors)
            data.people = {"faces": estimate.faces, "estimate": estimate.estimate,
                           "low": estimate.low, "high": estimate.high,
                           "method": "chinese whispers (dlib) at strict, default and loose "
                           "distance thresholds"}  # fmt: skip


def _answers_for_report(lib: Library, actor: Actor, matter: str) -> dict[str, Any]:
    """The report's nexus, usage and compliance sections, from the same calls as the
    `discovery nexus`, `usage` and `compliance` commands (each audited as it is there)."""
    from faceledger.app.compliance import compliance
    from faceledger.app.nexus import report_rows
    from faceledger.app.usage import usage
    from faceledger.errors import RecordIntegrityError

    rules = [f"jurisdiction-blocked={rule.region}"
             for rule in sorted(lib.policy.blocking, key=lambda r: r.region)]  # fmt: skip
    checks = []
    for rule in [*dict.fromkeys(rules), "no-private-search", "retention-met"]:
        try:
            answer = compliance(lib, actor, rule)
        except RecordIntegrityError as exc:  # a broken chain: the rule is not answered
            checks.append((rule, "not answered", "", str(exc)))
            continue
        first = answer["violations"][0] if answer["violations"] else None
        checks.append((rule, "yes" if answer["held"] else "no", len(answer["violations"]),
                       json.dumps(first, sort_keys=True, default=str) if first else ""))
    return {"nexus": report_rows(lib, matter), "usage": usage(lib, actor)["rows"],
            "compliance": checks}


def report(lib: Library, actor: Actor, matter: str, out: Path, pdf: Path | None = None) -> dict:
    """Write the matter report (HTML, and PDF if asked), each with a ``.sha256`` beside it;
    custodians with an attestation."""
    from faceledger.discovery.report import gather, render_html, render_pdf, write_sha256

    if not matter or not matter.strip():
        raise InputError("name the matter the report is for")
    lib.authorize(actor, "discovery.report")
    lib.require_vault_access(actor)  # the report counts blocked faces
    with lib.catalog.engine.connect() as conn:
        # Read just before the counts: entries appended meanwhile come after the named head.
        data = gather(conn, matter, iso(utcnow()) or "", audit_head=audit.head(conn))
        _matter_facts(lib, actor, conn, data)
    data.extra.update(_answers_for_report(lib, actor, matter))
    page = render_html(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    head = data.audit_head.to_json() if data.audit_head else None
    result = {"html": str(out), "html_sha256": hashlib.sha256(page.encode()).hexdigest(),
              "html_sha256_file": str(write_sha256(out)), "totals": data.totals,
              "audit_head": head, "policy_version": data.policy_version,
              "productions": len(data.productions), "people": data.people}  # fmt: skip
    if pdf is not None:
        pdf.parent.mkdir(parents=True, exist_ok=True)
        render_pdf(data, pdf)
        result["pdf"] = str(pdf)
        result["pdf_sha256"] = hashlib.sha256(pdf.read_bytes()).hexdigest()
        result["pdf_sha256_file"] = str(write_sha256(pdf))
    with lib.writing() as conn:
        audit.append(conn, actor.name, "discovery.report", details={"matter": matter, **result})
    return result
