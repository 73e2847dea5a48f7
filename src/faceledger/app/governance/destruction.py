"""The one destruction routine (retention, erasure and deferred requests all use it).

Destruction is total outside legal holds: the vector blob is wiped and the face row reduced to a
tombstone (id, photo id, status, time), face-level jurisdictions and opt-out links are deleted,
the face leaves both vector indexes and their saved files, photo files are deleted when photos
are destroyed, and SQLite's freed pages and write-ahead log are scrubbed. A certificate (ids,
SHA-256 of what was destroyed, time, actor, rule) is written to the audit log in the same
transaction. Held items are not touched: a deferred_actions row records the request instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from faceledger import audit
from faceledger.app.governance import vault
from faceledger.app.governance.common import checkpoint, secure_delete
from faceledger.app.governance.holds import held_photo_ids
from faceledger.app.placement import place_faces
from faceledger.catalog import faces as catalog_faces
from faceledger.catalog import holds as catalog_holds
from faceledger.catalog import optouts as catalog_optouts
from faceledger.catalog import photos as catalog_photos
from faceledger.catalog import vault_counts
from faceledger.clock import iso, utcnow
from faceledger.errors import BadOptionError, NotFoundError

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = ["destroy", "erase", "carry_out_deferred"]

_CHUNK = 500


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def destroy(
    lib: Library, actor: Actor, *, face_ids: Iterable[int] = (), photo_ids: Iterable[int] = (),
    action: str, rule: str, deferred_ids: Iterable[int] = (),
) -> dict[str, Any]:  # fmt: skip
    """Destroy these faces and photos (a photo's faces with it) unless held; defer the held.

    ``action`` is ``destroy`` (retention) or ``erase``; ``rule`` names why, for the certificate.
    ``deferred_ids`` are deferred_actions rows this call carries out (marked done with it).
    Callers authorize; this routine only destroys.
    """
    want_photos = sorted({int(i) for i in photo_ids})
    want_faces = {int(i) for i in face_ids}
    # Load both indexes first: if they cannot be opened (no key), nothing is committed.
    lib.load_indexes()
    now = utcnow()
    with lib.writing() as conn:
        secure_delete(conn)
        held = held_photo_ids(conn)
        photos = {}
        for chunk in _chunks(want_photos):
            for row in catalog_photos.for_destruction(conn, chunk):
                photos[row.id] = row
        for pid in want_photos:
            if pid not in photos:
                raise NotFoundError(f"no photo with id {pid}")
        live_photos = [p for p in want_photos if photos[p].status == "active"]
        face_rows = []
        for chunk in _chunks(sorted(want_faces)):
            face_rows += catalog_faces.active_with_vectors(conn, chunk)
        for chunk in _chunks(live_photos):
            face_rows += catalog_faces.active_of_photos(conn, chunk)
        faces = {r.id: r for r in face_rows}

        deferred = []
        for pid in live_photos:
            if pid in held:
                new = catalog_holds.defer(conn, action, "photo", pid, rule, actor.name)
                deferred.append({"photo": pid, "deferred_action": new})
        photo_targets = [p for p in live_photos if p not in held]
        face_targets = []
        for fid, row in sorted(faces.items()):
            if row.photo_id in held:
                if row.photo_id not in live_photos:  # a held photo's faces wait with it
                    new = catalog_holds.defer(conn, action, "face", fid, rule, actor.name)
                    deferred.append({"face": fid, "deferred_action": new})
            else:
                face_targets.append(fid)

        certificate_faces = [
            {"id": fid, "photo_id": faces[fid].photo_id,
             "vector_sha256": hashlib.sha256(faces[fid].vector or b"").hexdigest()}
            for fid in face_targets
        ]  # fmt: skip
        certificate_photos = [
            {"id": pid, "sha256": photos[pid].sha256, "file": photos[pid].stored_path}
            for pid in photo_targets
        ]
        place_faces(conn, lib.catalog, destroy=face_targets, now=now)
        for chunk in _chunks(face_targets):
            catalog_photos.delete_face_jurisdictions(conn, chunk)
            catalog_optouts.unlink_faces(conn, chunk)
        for chunk in _chunks(photo_targets):
            catalog_photos.mark_destroyed(conn, chunk, now)
            catalog_photos.delete_photo_jurisdictions(conn, chunk)
        done = [int(i) for i in deferred_ids]
        for chunk in _chunks(done):
            catalog_holds.mark_deferred_done(conn, chunk, now)
        entry = None
        if face_targets or photo_targets or done:
            entry = audit.append(
                conn, actor.name, "destroy" if action == "destroy" else "erase",
                {"faces": face_targets, "photos": photo_targets, "deferred_actions": done},
                {"certificate": {"rule": rule, "destroyed_at": iso(now), "actor": actor.name,
                                 "faces": certificate_faces, "photos": certificate_photos}},
            )  # fmt: skip
        new_deferred = [d for d in deferred if d["deferred_action"] is not None]
        if new_deferred:
            audit.append(conn, actor.name, f"{action}.deferred",
                         {"deferred_actions": [d["deferred_action"] for d in new_deferred]},
                         {"rule": rule, "held": new_deferred})  # fmt: skip
    # The commit above logged the moves; lib.writing() then removed the faces from both indexes
    # and rewrote their files (a crash in between is healed by the next process to open them).
    for item in certificate_photos:
        path = lib.photo_file(item["file"])
        if path is not None:
            path.unlink(missing_ok=True)
    # The destroyed faces leave the vault's kept counts now, before the scrub below, not at
    # the next count.
    vault_counts.catch_up(lib.catalog.engine)
    checkpoint(lib.catalog.engine)
    return {"rule": rule, "destroyed_faces": face_targets, "destroyed_photos": photo_targets,
            "deferred": deferred, "certificate": entry}  # fmt: skip


def erase(
    lib: Library, actor: Actor, *, face: int | None = None, photo: int | None = None,
    optout: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Erase one face, one photo (file and faces) or every face matched to an opt-out."""
    lib.authorize(actor, "erase")
    if sum(x is not None for x in (face, photo, optout)) != 1:
        raise BadOptionError("give exactly one of a face id, a photo id or an opt-out id")
    # Without vault access a vault face, or a photo hidden in the vault, is not there.
    redact = vault.Redaction(lib, actor)
    with lib.catalog.engine.connect() as conn:
        if face is not None:
            if not catalog_faces.exists(conn, face) or not redact.faces([face]):
                raise NotFoundError(f"no face with id {face}")
            return destroy(lib, actor, face_ids=[face], action="erase",
                           rule=f"erasure request: face {face}")  # fmt: skip
        if photo is not None:
            if not redact.photos([photo]):
                raise NotFoundError(f"no photo with id {photo}")
            return destroy(lib, actor, photo_ids=[photo], action="erase",
                           rule=f"erasure request: photo {photo}")  # fmt: skip
        if not catalog_optouts.exists(conn, optout):
            raise NotFoundError(f"no opt-out with id {optout}")
        ids = catalog_optouts.matched_face_ids(conn, optout)
    # The person's erasure covers their vault faces too, but the answer names only the faces
    # the actor may see: without vault access a vault face is not there (DESIGN 1).
    shown = set(redact.faces(ids))
    result = destroy(lib, actor, face_ids=ids, action="erase",
                     rule=f"erasure request: opt-out {optout}")  # fmt: skip
    if not redact.full:
        result["destroyed_faces"] = [f for f in result["destroyed_faces"] if f in shown]
        result["deferred"] = [d for d in result["deferred"] if d.get("face") in shown]
    return result


def carry_out_deferred(lib: Library, actor: Actor) -> dict[str, Any]:
    """Carry out every deferred request whose items no active hold covers any more."""
    with lib.catalog.engine.connect() as conn:
        pending = catalog_holds.pending_deferred(conn)
        held = held_photo_ids(conn)
        face_photo = catalog_faces.photo_of(
            conn, [r.object_id for r in pending if r.object_kind == "face"]
        )
    groups: dict[str, dict[str, list[int]]] = {}
    still_held = []
    for r in pending:
        kind, oid = r.object_kind, r.object_id
        photo_id = oid if kind == "photo" else face_photo.get(oid)
        if photo_id in held:
            still_held.append(r.id)
            continue
        g = groups.setdefault(r.action, {"faces": [], "photos": [], "ids": []})
        g["faces" if kind == "face" else "photos"].append(oid)
        g["ids"].append(r.id)
    results = []
    for action, g in groups.items():
        results.append(destroy(
            lib, actor, face_ids=g["faces"], photo_ids=g["photos"], action=action,
            rule=f"deferred {action} carried out after hold release "
                 f"(requests {', '.join(map(str, g['ids']))})",
            deferred_ids=g["ids"],
        ))  # fmt: skip
    return {
        "carried_out": sum(len(g["ids"]) for g in groups.values()),
        "still_held": len(still_held),
        "destroyed_faces": sorted(f for r in results for f in r["destroyed_faces"]),
        "destroyed_photos": sorted(p for r in results for p in r["destroyed_photos"]),
    }
