"""CompreFace's operations as library calls: subjects and examples, recognize, detect, verify.

A CompreFace *subject* is faceledger's ``subject_ref`` (the consent subject of a provenance row);
an *example* of it is a photo collected under it, named by its photo id (``image_id``). Adding an
example ingests the photo like any other, through :func:`faceledger.app.ingest.ingest`, with
the provenance of an API upload: source ``api:USER``, retrieved now, the uploader region the
client gave. So policy, blocking, consent and the audit log apply to it as to every photo.

Probes (recognize, detect, verify) are decoded and embedded in memory only. Only the searchable
index is searched and every matched face is re-checked as searchable in the catalog, so a
blocked face is never among the answers; an example whose faces are all blocked is listed only
to custodians with a current attestation (and that read is audited as a vault read).

Similarity is derived from the Euclidean distance ``d`` of two 128-d vectors as
``max(0, 1 - d / (2 * T))`` with ``T`` the library's match threshold (0.6 by default): 1 for
identical vectors, 0.5 exactly at the match threshold, 0 from ``2 * T`` on. A detection's
``probability`` is the logistic of dlib's detection score (0.5 at the detector's own boundary).
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceledger import audit
from faceledger.app.governance.destruction import destroy
from faceledger.app.governance.vault import may_read_vault
from faceledger.app.ingest import ingest
from faceledger.app.library import Actor, Library
from faceledger.app.limits import THRESHOLD_MAX, TOP_K_MAX
from faceledger.app.placement import Decider
from faceledger.app.probes import Probe, Wanted, read_probe
from faceledger.catalog import subjects as catalog_subjects
from faceledger.clock import iso, utcnow
from faceledger.errors import (
    BadOptionError,
    ConflictError,
    InputError,
    NoFaceError,
    NotFoundError,
    PermissionDenied,
)
from faceledger.policy import search_refusal
from faceledger.records import DetectedFace

__all__ = [
    "Options",
    "PLUGIN_REFUSAL",
    "parse_plugins",
    "similarity",
    "probability",
    "add_example",
    "list_examples",
    "delete_examples",
    "list_subjects",
    "add_subject",
    "rename_subject",
    "delete_subjects",
    "recognize",
    "detect",
    "verify",
    "verify_example",
]

#: Why attribute plugins are refused: the product's line, in the words the client sees.
PLUGIN_REFUSAL = (
    "faceledger does not infer age, gender, emotion, race or whether a mask is worn, and has no "
    "plugin that would: inferring such traits from a face is outside what this product does. "
    "Available face_plugins: calculator (the probe's own embedding, never stored) and landmarks"
)
_INFERRED = frozenset({"age", "gender", "emotion", "race", "mask", "ethnicity", "pose"})
_PLUGINS = frozenset({"calculator", "landmarks"})
_REGION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
#: One API upload at a time in this process (ingest itself allows one run per library).
_UPLOADS = threading.Lock()


@dataclass(frozen=True)
class Options:
    """CompreFace's request options, checked."""

    limit: int = 0  # most faces to answer for, largest first; 0: all
    det_prob_threshold: float | None = None  # least detection probability kept
    prediction_count: int = 1  # subjects per face
    plugins: frozenset[str] = field(default_factory=frozenset)


def parse_plugins(text: str | None) -> frozenset[str]:
    """The face_plugins asked for; attribute inference is refused with the product's line."""
    names = {p.strip().lower() for p in (text or "").split(",") if p.strip()}
    if names & _INFERRED:
        raise BadOptionError(PLUGIN_REFUSAL)
    unknown = names - _PLUGINS
    if unknown:
        raise BadOptionError(f"unknown face_plugins {', '.join(sorted(unknown))}; "
                             f"{PLUGIN_REFUSAL.split('. ')[-1]}")  # fmt: skip
    return frozenset(names)


def similarity(distance: float, threshold: float) -> float:
    """CompreFace's similarity from a Euclidean distance: 0.5 at the match threshold."""
    return round(max(0.0, 1.0 - float(distance) / (2.0 * threshold)), 5)


def probability(score: float) -> float:
    """A detection's probability: the logistic of dlib's detection score."""
    return round(1.0 / (1.0 + math.exp(-float(score))), 5)


def _area(face: DetectedFace) -> int:
    return face.box.width * face.box.height


def _probe_faces(lib: Library, probe: Probe, opts: Options, engine: Any) -> list[DetectedFace]:
    """The probe's faces kept by the options, largest first; NoFaceError when none is left."""
    read = read_probe(lib.settings, engine or lib.face_engine(), probe, Wanted.ALL)
    if read.error:
        raise InputError(f"{probe.name}: {read.error}")
    faces = sorted(read.faces, key=_area, reverse=True)
    if opts.det_prob_threshold is not None:
        faces = [f for f in faces if probability(f.score) >= opts.det_prob_threshold]
    if opts.limit:
        faces = faces[: opts.limit]
    if not faces:
        raise NoFaceError("No face is found in the given image")
    return faces


def _face_json(face: DetectedFace, opts: Options) -> dict[str, Any]:
    out: dict[str, Any] = {
        "box": {
            "probability": probability(face.score),
            "x_min": face.box.left,
            "y_min": face.box.top,
            "x_max": face.box.right,
            "y_max": face.box.bottom,
        }
    }
    if "landmarks" in opts.plugins:
        out["landmarks"] = [list(p) for p in face.landmarks]
    if "calculator" in opts.plugins:
        out["embedding"] = [round(float(x), 8) for x in face.vector]
    return out


def _versions(lib: Library, faces: Sequence[DetectedFace]) -> dict[str, str]:
    model = faces[0].model_version if faces else ""
    return {"detector": f"dlib {lib.settings.detector}", "calculator": model}


# -- face collection --
def _check_subject(subject: str | None) -> str:
    name = (subject or "").strip()
    if not name or len(name) > 255 or not name.isprintable():
        raise BadOptionError("a subject is 1-255 printable characters")
    return name


def _visible(lib: Library, actor: Actor, rows: list[catalog_subjects.Example]):
    """The examples ``actor`` may see, and whether some of them are vault-only."""
    vault_ok = may_read_vault(lib, actor)
    shown = [e for e in rows if e.searchable_faces or (vault_ok and e.vault_faces)]
    return shown, vault_ok and any(e.vault_faces for e in shown)


def add_example(
    lib: Library, actor: Actor, subject: str, probe: Probe, *,
    uploader_region: str | None = None, det_prob_threshold: float | None = None,
    engine: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Ingest ``probe`` as an example of ``subject`` (nothing is stored if it shows no face)."""
    lib.authorize(actor, "ingest")
    subject = _check_subject(subject)
    region = (uploader_region or "").strip().upper() or None
    if region is not None and not _REGION.match(region):
        raise BadOptionError(f"uploader_region {region!r} is not an ISO 3166 code like US-IL")
    found = _probe_faces(lib, probe, Options(det_prob_threshold=det_prob_threshold), engine)
    if len(found) > 1:
        # An example names one person: in a group photo no face could be told to be theirs.
        raise InputError(f"the image shows {len(found)} faces; an example must show the "
                         "subject alone")  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="faceledger-api-"))
    try:
        suffix = Path(probe.name).suffix.lower()
        image = folder / ("upload" + (suffix if re.fullmatch(r"\.[a-z0-9]{2,5}", suffix) else ""))
        image.write_bytes(probe.data)
        manifest = folder / "upload.csv"
        with manifest.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "source_url", "retrieved_at", "uploader_region",
                             "subject_ref", "caption"])  # fmt: skip
            writer.writerow([image.name, f"api:{actor.name}", iso(utcnow()), region or "",
                             subject, "CompreFace API upload"])  # fmt: skip
        with _UPLOADS:
            summary = ingest(lib, actor, manifests=[manifest])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if summary.errors:
        raise InputError(summary.errors[0]["message"])
    sha = hashlib.sha256(probe.data).hexdigest()
    with lib.writing() as conn:
        photo_id = lib.catalog.photo_id_by_sha256(conn, sha)
        bare = catalog_subjects.bare(lib.catalog, conn)
        if subject in bare:
            catalog_subjects.set_bare(lib.catalog, conn, [s for s in bare if s != subject])
    return {"image_id": str(photo_id), "subject": subject}


def list_examples(
    lib: Library, actor: Actor, subject: str | None = None, page: int = 0, size: int = 20
) -> dict[str, Any]:
    """The examples the caller may see, a page at a time (blocked ones: attested custodians)."""
    lib.authorize(actor, "show")
    if page < 0 or not 1 <= size <= 1000:
        raise BadOptionError("page must be 0 or more and size from 1 to 1000")
    with lib.catalog.engine.connect() as conn:
        rows = catalog_subjects.examples(conn, subject)
    shown, vault_read = _visible(lib, actor, rows)
    if vault_read:
        lib.require_vault_access(actor)  # audits the read of blocked examples
    chosen = shown[page * size : (page + 1) * size]
    with lib.writing() as conn:
        audit.append(conn, actor.name, "examples.list",
                     {"photos": sorted({e.photo_id for e in chosen})},
                     {"subject": subject, "page": page, "size": size})  # fmt: skip
    return {
        "faces": [{"image_id": str(e.photo_id), "subject": e.subject} for e in chosen],
        "page_number": page,
        "page_size": size,
        "total_pages": math.ceil(len(shown) / size),
        "total_elements": len(shown),
    }


def _erase_photos(
    lib: Library, actor: Actor, photo_ids: list[int], why: str, keep: Sequence[str] = ()
) -> dict[str, Any]:
    """Erase these photos; the subjects in ``keep`` stay registered (as CompreFace's do when
    their examples go) even if no photo names them any more."""
    result = {"destroyed_photos": [], "deferred": []}
    if photo_ids:
        result = destroy(lib, actor, photo_ids=photo_ids, action="erase",
                         rule=f"erasure request (CompreFace API): {why}")  # fmt: skip
    if keep:
        with lib.writing() as conn:
            bare = catalog_subjects.bare(lib.catalog, conn)
            left = set(catalog_subjects.named(conn))
            catalog_subjects.set_bare(lib.catalog, conn,
                                      [*bare, *(s for s in keep if s not in left)])  # fmt: skip
    return result


def delete_examples(
    lib: Library, actor: Actor, *, subject: str | None = None, image_id: str | None = None
) -> dict[str, Any]:
    """Erase completely the examples of ``subject``, or the one example ``image_id``."""
    lib.authorize(actor, "erase")
    with lib.catalog.engine.connect() as conn:
        rows = catalog_subjects.examples(conn, subject)
    if image_id is not None:
        wanted = int(image_id) if str(image_id).isdigit() else -1
        rows = [e for e in rows if e.photo_id == wanted]
        if not rows:
            raise NotFoundError(f"no example with image_id {image_id!r}")
        result = _erase_photos(lib, actor, [wanted], f"example {wanted}",
                               keep=sorted({e.subject for e in rows}))
        if wanted not in result["destroyed_photos"]:
            raise ConflictError(f"example {wanted} is under a legal hold; its erasure waits "
                                "for the hold's release")  # fmt: skip
        return {"image_id": str(wanted), "subject": rows[0].subject}
    ids = sorted({e.photo_id for e in rows})
    result = _erase_photos(lib, actor, ids, f"the examples of subject {subject!r}",
                           keep=sorted({e.subject for e in rows}))
    return {"deleted": len(result["destroyed_photos"])}


def _subjects_shown(lib: Library, actor: Actor) -> tuple[list[str], bool]:
    with lib.catalog.engine.connect() as conn:
        rows = catalog_subjects.examples(conn)
        bare = catalog_subjects.bare(lib.catalog, conn)
    shown, vault_read = _visible(lib, actor, rows)
    return sorted({e.subject for e in shown} | set(bare)), vault_read


def list_subjects(lib: Library, actor: Actor) -> dict[str, Any]:
    """Every subject the caller may see (one known only from blocked examples: custodians)."""
    lib.authorize(actor, "show")
    names, vault_read = _subjects_shown(lib, actor)
    if vault_read:
        lib.require_vault_access(actor)
    with lib.writing() as conn:
        audit.append(conn, actor.name, "subjects.list", {}, {"subjects": len(names)})
    return {"subjects": names}


def add_subject(lib: Library, actor: Actor, subject: str) -> dict[str, Any]:
    """Register a subject with no example yet."""
    lib.authorize(actor, "ingest")
    subject = _check_subject(subject)
    # Taken only among the names this user may see: refusing a name known only from blocked
    # examples would tell that they exist.
    if subject in _subjects_shown(lib, actor)[0]:
        raise ConflictError(f"subject {subject!r} already exists")
    with lib.writing() as conn:
        catalog_subjects.set_bare(lib.catalog, conn, [*catalog_subjects.bare(lib.catalog, conn),
                                                     subject])  # fmt: skip
        audit.append(conn, actor.name, "subjects.add", {}, {"subject": subject})
    return {"subject": subject}


def rename_subject(lib: Library, actor: Actor, old: str, new: str) -> dict[str, Any]:
    """Rename a subject (into an existing one: they merge); its photos are re-decided."""
    lib.authorize(actor, "ingest")
    new = _check_subject(new)
    names, _ = _subjects_shown(lib, actor)
    if old not in names:
        raise NotFoundError(f"no subject named {old!r}")
    decider = Decider.for_library(lib)
    with lib.writing() as conn:
        photo_ids = catalog_subjects.rename(conn, old, new)
        bare = catalog_subjects.bare(lib.catalog, conn)
        if old in bare:
            bare = [s for s in bare if s != old] + ([] if photo_ids else [new])
            catalog_subjects.set_bare(lib.catalog, conn, bare)
        # Consent rules name subjects: the renamed photos may now be blocked, or no longer.
        moved = decider.reevaluate(conn, lib.catalog, photo_ids)
        audit.append(conn, actor.name, "subjects.rename", {"photos": photo_ids},
                     {"from": old, "to": new, "blocked": len(moved.blocked),
                      "unblocked": len(moved.unblocked)})  # fmt: skip
    return {"updated": True}


def delete_subjects(lib: Library, actor: Actor, subject: str | None = None) -> dict[str, Any]:
    """Delete one subject (or all), erasing every example completely."""
    lib.authorize(actor, "erase")
    names, _ = _subjects_shown(lib, actor)
    if subject is not None and subject not in names:
        raise NotFoundError(f"no subject named {subject!r}")
    targets = [subject] if subject is not None else names
    ids: set[int] = set()
    with lib.catalog.engine.connect() as conn:
        for name in targets:
            ids |= {e.photo_id for e in catalog_subjects.examples(conn, name)}
    _erase_photos(lib, actor, sorted(ids), f"subjects {', '.join(targets)}")
    with lib.writing() as conn:
        bare = catalog_subjects.bare(lib.catalog, conn)
        catalog_subjects.set_bare(lib.catalog, conn, [s for s in bare if s not in targets])
        audit.append(conn, actor.name, "subjects.delete", {"photos": sorted(ids)},
                     {"subjects": targets})  # fmt: skip
    return {"subject": subject} if subject is not None else {"deleted": len(targets)}


# -- recognize, detect, verify --
def _may_search(lib: Library, actor: Actor) -> None:
    lib.authorize(actor, "search")
    refusal = search_refusal(lib.policy, actor.customer_type, actor.region)
    if refusal:
        raise PermissionDenied(f"{actor.name} may not search: {refusal}")


def recognize(
    lib: Library, actor: Actor, probe: Probe, opts: Options, engine: Any = None
) -> dict[str, Any]:
    """For each face of the probe, the most similar subjects among the searchable faces.

    The searchable index gives the nearest faces (at most the search limit); the catalog then
    names the subjects of those that are still searchable, each subject at its best distance.
    """
    _may_search(lib, actor)
    faces = _probe_faces(lib, probe, opts, engine)
    threshold = lib.settings.match_threshold
    queries = np.stack([f.vector for f in faces]).astype(np.float32)
    distances, ids = lib.index("searchable").search(queries, TOP_K_MAX)
    del queries
    wanted = {int(i) for row in ids for i in row if i >= 0}
    with lib.catalog.engine.connect() as conn:
        subjects_of = catalog_subjects.of_searchable_faces(conn, sorted(wanted))
    result, matched = [], set()
    for face, drow, irow in zip(faces, distances, ids, strict=True):
        best: dict[str, float] = {}
        for d, i in zip(drow, irow, strict=True):
            if i < 0 or d > THRESHOLD_MAX:
                continue
            for name in subjects_of.get(int(i), ()):
                if float(d) < best.get(name, math.inf):
                    best[name] = float(d)
        ranked = sorted(best.items(), key=lambda kv: (kv[1], kv[0]))[: opts.prediction_count]
        matched |= {int(i) for i in irow if int(i) in subjects_of}
        entry = _face_json(face, opts)
        entry["subjects"] = [{"subject": s, "similarity": similarity(d, threshold)}
                             for s, d in ranked]  # fmt: skip
        result.append(entry)
    with lib.writing() as conn:
        audit.append(conn, actor.name, "search", {"faces": sorted(matched)},
                     {"api": "compreface.recognize", "probes": 1, "probe_faces": len(faces),
                      "prediction_count": opts.prediction_count})  # fmt: skip
    return {"result": result, "plugins_versions": _versions(lib, faces)}


def detect(lib: Library, actor: Actor, probe: Probe, opts: Options, engine: Any = None) -> dict:
    """The faces found in the probe (boxes, and landmarks or embeddings if asked)."""
    _may_search(lib, actor)
    faces = _probe_faces(lib, probe, opts, engine)
    with lib.writing() as conn:
        audit.append(conn, actor.name, "detect", {},
                     {"api": "compreface.detect", "probe_faces": len(faces)})  # fmt: skip
    return {"result": [_face_json(f, opts) for f in faces],
            "plugins_versions": _versions(lib, faces)}  # fmt: skip


def verify(
    lib: Library, actor: Actor, source: Probe, target: Probe, opts: Options, engine: Any = None
) -> dict[str, Any]:
    """How similar each face of ``target`` is to the (largest) face of ``source``."""
    _may_search(lib, actor)
    source_face = _probe_faces(lib, source, Options(det_prob_threshold=opts.det_prob_threshold,
                                                    limit=1), engine)[0]  # fmt: skip
    targets = _probe_faces(lib, target, opts, engine)
    threshold = lib.settings.match_threshold
    matches = []
    for face in targets:
        d = float(np.linalg.norm(face.vector - source_face.vector))
        matches.append({**_face_json(face, opts), "similarity": similarity(d, threshold)})
    matches.sort(key=lambda m: -m["similarity"])
    with lib.writing() as conn:
        audit.append(conn, actor.name, "verify", {},
                     {"api": "compreface.verify", "target_faces": len(targets)})  # fmt: skip
    return {"result": [{"source_image_face": _face_json(source_face, opts),
                        "face_matches": matches,
                        "plugins_versions": _versions(lib, [source_face])}]}  # fmt: skip


def verify_example(
    lib: Library, actor: Actor, image_id: str, probe: Probe, opts: Options, engine: Any = None
) -> dict[str, Any]:
    """How similar each face of the probe is to a stored example (its searchable faces)."""
    _may_search(lib, actor)
    photo_id = int(image_id) if str(image_id).isdigit() else -1
    with lib.catalog.engine.connect() as conn:
        known = {e.photo_id for e in catalog_subjects.examples(conn) if e.searchable_faces}
    if photo_id not in known:
        raise NotFoundError(f"no example with image_id {image_id!r}")
    face_ids, vectors = lib.catalog.vectors(catalog_subjects.searchable_of_photo(photo_id))
    faces = _probe_faces(lib, probe, opts, engine)
    threshold = lib.settings.match_threshold
    result = []
    for face in faces:
        d = float(np.min(np.linalg.norm(vectors - face.vector, axis=1)))
        result.append({**_face_json(face, opts), "similarity": similarity(d, threshold)})
    del vectors
    with lib.writing() as conn:
        audit.append(conn, actor.name, "verify", {"faces": [int(i) for i in face_ids],
                                                  "photos": [photo_id]},
                     {"api": "compreface.verify_example"})  # fmt: skip
    return {"result": result}
