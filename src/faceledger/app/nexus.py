"""`discovery nexus`: for a selection of photos, every fact that ties each one to a
jurisdiction, and a summary of how many signals tie them (the facts of an extraterritoriality
defence, which the court called "a fact intense inquiry").

Per photo: where it was taken (GPS), uploaded from (uploader region), published from (the
site's publisher region), whose face it holds (opt-outs matched to its faces, consent records
of the subjects its sources name), and when and where it was ingested (the ingest runs, and the
operator's site: ``FACELEDGER_OPERATOR_REGION`` as set now; runs do not record it). The signals
tying a photo to the jurisdiction are ``gps``, ``uploader``, ``publisher``, ``subject`` (the
catalog's jurisdiction rows) and ``operator`` (the operator's site lies in it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from faceledger import audit
from faceledger.app.compliance import audit_entries
from faceledger.catalog import history as catalog_history
from faceledger.clock import iso
from faceledger.errors import BadOptionError
from faceledger.policy import region_covers

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = ["NEXUS_SIGNALS", "BUCKETS", "located_photos", "nexus", "report_rows"]

#: What can tie a photo to a jurisdiction, in the order the table shows them.
NEXUS_SIGNALS = ("gps", "uploader", "publisher", "subject", "operator")
#: Summary buckets: photos tied by 0, 1, 2, 3 or more signals.
BUCKETS = ("0", "1", "2", "3+")


def located_photos(lib: Library, matter: str) -> list[int]:
    """The photos every `discovery locate` for ``matter`` found, from the audit log."""
    found: set[int] = set()
    for entry in audit_entries(lib):
        if entry["action"] == "discovery.locate" and entry["details"].get("matter") == matter:
            found |= {int(i) for i in entry["object_ids"].get("photos", [])}
    return sorted(found)


def _row(photo_id: int, facts: dict[str, Any], region: str, operator: str) -> dict[str, Any]:
    sources = facts["sources"]
    ties = [j for j in facts["jurisdictions"] if region_covers(region, j["region"])]
    signals = {j["signal"] for j in ties}
    if operator and region_covers(region, operator):
        signals.add("operator")
    gps = [j["region"] for j in facts["jurisdictions"] if j["signal"] == "gps"]
    return {
        "photo_id": photo_id,
        "signals": [s for s in NEXUS_SIGNALS if s in signals],
        "signal_count": len(signals),
        "taken_at": iso(facts["taken_at"]),
        "gps": None if facts["gps_lat"] is None else [facts["gps_lat"], facts["gps_lon"]],
        "gps_regions": sorted(set(gps)),
        "uploader_regions": sorted({s["uploader_region"] for s in sources
                                    if s["uploader_region"]}),  # fmt: skip
        "websites": sorted({s["domain"] for s in sources if s["domain"]}),
        "publisher_regions": sorted({s["publisher_region"] for s in sources
                                     if s["publisher_region"]}),  # fmt: skip
        "source_urls": sorted({s["source_url"] for s in sources if s["source_url"]}),
        "subject_regions": sorted({j["region"] for j in facts["jurisdictions"]
                                   if j["signal"] == "subject"}),  # fmt: skip
        "optouts": facts["optouts"],
        "subjects": sorted({s["subject_ref"] for s in sources if s["subject_ref"]}),
        "consents": [{"id": c["id"], "subject": c["subject_ref"], "purpose": c["purpose"],
                      "recorded_at": iso(c["recorded_at"]), "expires_at": iso(c["expires_at"]),
                      "revoked_at": iso(c["revoked_at"])} for c in facts["consents"]],
        "ingest_runs": sorted({(s["run_id"], iso(s["run_at"])) for s in sources
                               if s["run_id"] is not None}),  # fmt: skip
        "operator_region": operator or None,
        "faces": facts["faces"],
    }


def _gather(lib: Library, jurisdiction: str, photo_ids: Sequence[int]) -> dict[str, Any]:
    region = jurisdiction.strip().upper()
    operator = lib.settings.operator_region.upper()
    with lib.catalog.engine.connect() as conn:
        facts = catalog_history.nexus_facts(conn, photo_ids)
    rows = [_row(pid, facts[pid], region, operator) for pid in sorted(facts)]
    buckets = dict.fromkeys(BUCKETS, 0)
    by_signal = dict.fromkeys(NEXUS_SIGNALS, 0)
    for row in rows:
        buckets[BUCKETS[min(row["signal_count"], 3)]] += 1
        for signal in row["signals"]:
            by_signal[signal] += 1
    missing = sorted(set(photo_ids) - set(facts))
    return {"jurisdiction": region, "operator_region": operator or None, "photos": rows,
            "summary": {"photos": len(rows), "by_signal_count": buckets, "by_signal": by_signal},
            "not_found": missing}  # fmt: skip


def nexus(
    lib: Library, actor: Actor, jurisdiction: str = "US-IL",
    photo_ids: Sequence[int] | None = None, matter: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The nexus table and summary for the photos listed, or those ``matter``'s locates found,
    or (neither given) every photo tied to ``jurisdiction`` by a stored signal (custodians)."""
    lib.authorize(actor, "discovery.nexus")
    if photo_ids is not None and matter is not None:
        raise BadOptionError("give a photo list or a matter, not both")
    if not jurisdiction or not jurisdiction.strip():
        raise BadOptionError("give the jurisdiction the ties are counted for, e.g. US-IL")
    if matter is not None:
        ids = located_photos(lib, matter)
    elif photo_ids is not None:
        ids = sorted({int(i) for i in photo_ids})
    else:
        with lib.catalog.engine.connect() as conn:
            ids = catalog_history.photos_tied_to(conn, jurisdiction)
    data = _gather(lib, jurisdiction, ids)
    if any(row["faces"]["vault"] for row in data["photos"]):
        lib.require_vault_access(actor)  # the selection holds blocked faces' photos
    data["selection"] = ("matter" if matter is not None else "photos" if photo_ids is not None
                         else "jurisdiction")  # fmt: skip
    data["matter"] = matter
    with lib.writing() as conn:
        audit.append(conn, actor.name, "discovery.nexus",
                     {"photos": [r["photo_id"] for r in data["photos"]]},
                     {"jurisdiction": data["jurisdiction"], "matter": matter,
                      "selection": data["selection"], "summary": data["summary"]})  # fmt: skip
    return data


def report_rows(lib: Library, matter: str) -> dict[str, Any]:
    """The matter report's nexus data: for each region the policy blocks (US-IL when it blocks
    none), the matter's located photos with the signals that tie them there, and a summary."""
    regions = sorted({rule.region for rule in lib.policy.blocking}) or ["US-IL"]
    ids = located_photos(lib, matter)
    rows: list[tuple[Any, ...]] = []
    summaries: list[str] = []
    for region in regions:
        data = _gather(lib, region, ids)
        counts = data["summary"]["by_signal_count"].items()
        buckets = ", ".join(f"{k} signals: {v}" for k, v in counts)
        summaries.append(f"{region}: {data['summary']['photos']} photos ({buckets})")
        for row in data["photos"]:
            rows.append((region, row["photo_id"], " ".join(row["signals"]) or "none",
                         " ".join(row["gps_regions"]), " ".join(row["uploader_regions"]),
                         " ".join(row["publisher_regions"]), " ".join(row["subject_regions"]),
                         " ".join(f"{r} ({at})" for r, at in row["ingest_runs"]),
                         row["operator_region"] or ""))  # fmt: skip
    return {"located": len(ids), "rows": rows, "summaries": summaries}
