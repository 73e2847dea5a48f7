"""Search by face: probe images are decoded and embedded in memory only, never stored."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceledger import audit
from faceledger.app.library import Actor, Library
from faceledger.app.limits import THRESHOLD_MAX, TOP_K_MAX
from faceledger.app.probes import Probe, Wanted, read_probe
from faceledger.errors import BadOptionError, PermissionDenied
from faceledger.faces import FaceBackend
from faceledger.policy import search_refusal

__all__ = ["Probe", "search_faces"]


def _provenance_for(actor: Actor, match: dict) -> dict:
    """A match as ``actor`` may see it: searchers get provenance (URLs, sites, dates), not the
    server's file system; local paths and archive offsets are for admins alone."""
    if actor.role == "admin":
        return match
    provenance = [{k: v for k, v in p.items() if k != "locator"} for p in match["provenance"]]
    source = next((p["source_url"] for p in provenance if p.get("source_url")), None)
    return {**match, "provenance": provenance, "source": source}


def search_faces(
    lib: Library,
    actor: Actor,
    probes: Sequence[Probe],
    top_k: int = 10,
    threshold: float | None = None,
    engine: FaceBackend | None = None,
) -> list[dict]:
    """For each probe, each face found and its matches in the searchable index.

    Only the searchable index is consulted: blocked faces are physically absent from it. The
    catalog read repeats the check (a face blocked since the index was loaded is dropped).
    """
    lib.authorize(actor, "search")
    if not 1 <= top_k <= TOP_K_MAX:
        raise BadOptionError(f"top_k must be between 1 and {TOP_K_MAX}, not {top_k}")
    if threshold is not None and not 0.0 <= threshold <= THRESHOLD_MAX:
        raise BadOptionError(f"threshold must be between 0 and {THRESHOLD_MAX}, not {threshold}")
    refusal = search_refusal(lib.policy, actor.customer_type, actor.region)
    if refusal:
        raise PermissionDenied(f"{actor.name} may not search: {refusal}")
    threshold = lib.settings.match_threshold if threshold is None else threshold
    engine = engine or lib.face_engine()
    results: list[dict] = []
    queries: list[np.ndarray] = []
    for probe in probes:
        read = read_probe(lib.settings, engine, probe, Wanted.ALL)
        entry: dict = {"probe": probe.name, "faces": []}
        for face in read.faces:
            entry["faces"].append({"box": vars(face.box), "matches": []})
            queries.append(face.vector)
        if read.error:
            entry["error"] = read.error
        results.append(entry)
    matched: list[int] = []
    if queries:
        index = lib.index("searchable")
        distances, ids = index.search(np.stack(queries), top_k)
        hits = [
            [
                (int(i), float(d))
                for d, i in zip(drow, irow, strict=True)
                if i >= 0 and d <= threshold
            ]
            for drow, irow in zip(distances, ids, strict=True)
        ]
        details = lib.catalog.match_details({i for row in hits for i, _ in row})
        faces = (face for entry in results for face in entry["faces"])
        for face, row in zip(faces, hits, strict=True):
            for face_id, distance in row:
                if face_id in details:
                    shown = _provenance_for(actor, details[face_id])
                    face["matches"].append({**shown, "distance": round(distance, 4)})
                    matched.append(face_id)
    with lib.writing() as conn:
        audit.append(
            conn,
            actor.name,
            "search",
            {"faces": sorted(set(matched))},
            {
                "probes": len(probes),
                "probe_faces": len(queries),
                "top_k": top_k,
                "threshold": threshold,
            },
        )
    return results
