"""Opt-out by face: a selfie's vector, held in memory only, blocks every stored face it matches.

What is stored is the request (name, contact, region), its status and the ids of the matched
faces. Those faces' own stored vectors then block later arrivals of the same person at ingest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faceledger import audit
from faceledger.app.governance import vault
from faceledger.app.library import Actor, Library
from faceledger.app.placement import Decider
from faceledger.app.probes import Probe, Wanted, read_probe
from faceledger.catalog import faces as catalog_faces
from faceledger.catalog import optouts as catalog_optouts
from faceledger.catalog.optouts import OptOut
from faceledger.clock import iso, utcnow
from faceledger.errors import InputError, NotFoundError
from faceledger.faces import FaceBackend
from faceledger.records import Jurisdiction

__all__ = ["submit_optout", "list_optouts", "show_optout", "VAULT_ONLY"]

#: The stored status of an opt-out whose every match was already in the vault.
VAULT_ONLY = "matched_vault"


def submit_optout(
    lib: Library,
    actor: Actor,
    selfie: Path | Probe,
    region: str,
    name: str,
    email: str | None = None,
    engine: FaceBackend | None = None,
    receipt: str | None = None,
) -> dict[str, Any]:
    """File an opt-out: match the selfie against both indexes and block what matches.

    ``selfie`` is a file or a :class:`Probe` already in memory (the public page's upload);
    ``receipt``, when given, is recorded in the audit entry so a request can be found by it.
    """
    lib.authorize(actor, "optout.submit")
    region = region.strip().upper()
    probe = selfie if isinstance(selfie, Probe) else Probe(str(selfie), selfie.read_bytes())
    read = read_probe(lib.settings, engine or lib.face_engine(), probe, Wanted.ONE)
    if read.error:
        raise InputError(f"{probe.name}: {read.error}")
    threshold = lib.settings.optout_threshold
    matches: dict[int, float] = {}
    in_vault: set[int] = set()  # matched faces that were already blocked
    if read.faces:
        query = read.faces[0].vector[None, :]
        # The vault is matched for everyone, so that its faces stay blocked for this person too.
        for name_ in ("searchable", "vault"):
            distances, ids = lib.index(name_).within(query, threshold)[0]
            for d, i in zip(distances, ids, strict=True):
                matches[int(i)] = min(float(d), matches.get(int(i), 9.0))
                if name_ == "vault":
                    in_vault.add(int(i))
    status = (
        "no_face"
        if not read.found
        else "several_faces"
        if read.found > 1
        else ("matched" if matches else "no_match")
    )
    if status == "matched" and in_vault == set(matches):
        status = VAULT_ONLY  # shown as "no_match" to anyone without vault access
    # Asked whatever matched, so the work done (and its time) does not depend on the vault.
    reader = vault.may_read_vault(lib, actor)
    decider = Decider.for_library(lib)
    with lib.writing() as conn:
        optout_id = catalog_optouts.insert_optout(
            conn, name, email, region, status, actor.name, utcnow()
        )
        photo_of = catalog_faces.photo_of(conn, list(matches))
        for face_id, distance in matches.items():
            lib.catalog.add_jurisdictions(
                conn,
                photo_of[face_id],
                [Jurisdiction(region, "subject")],
                face_id=face_id,
                ref=f"optout:{optout_id}",
            )
            decider.link_optout(conn, optout_id, face_id, distance)
        # Always one reevaluation (over no photo when nothing matched): the same queries run.
        moved = decider.reevaluate(conn, lib.catalog, sorted(set(photo_of.values())))
        audit.append(
            conn,
            actor.name,
            "optout.submit",
            {"optouts": [optout_id], "faces": sorted(matches)},
            {"status": status, "region": region, "blocked_now": len(moved.blocked)}
            | ({"receipt": receipt} if receipt else {}),
        )
    shown = sorted(matches)
    if in_vault and not reader:
        # Without vault access, an opt-out that matched only vault faces answers exactly as one
        # that matched nothing: its answer must not reveal that blocked faces exist.
        shown = sorted(set(matches) - in_vault)
    elif in_vault:
        vault.require_vault_access(lib, actor, sorted(in_vault))  # audits the vault read
    return {
        "optout_id": optout_id,
        "status": _status(status, reader),
        "matched_faces": shown,
        "newly_blocked": len(moved.blocked),
    }


def _status(stored: str, reader: bool) -> str:
    """An opt-out's status as ``reader`` (vault access or not) may see it."""
    if stored == VAULT_ONLY:
        return "matched" if reader else "no_match"
    return stored


def list_optouts(lib: Library, actor: Actor) -> list[dict[str, Any]]:
    """Every opt-out request with its status and number of matched faces."""
    lib.authorize(actor, "optout.list")
    reader = vault.may_read_vault(lib, actor)
    with lib.catalog.engine.connect() as conn:
        rows = catalog_optouts.optouts(conn, hide_vault=not reader)
    return [_optout_dict(r, reader) | {"matched_faces": r.matched_faces} for r in rows]


def show_optout(lib: Library, actor: Actor, optout_id: int) -> dict[str, Any]:
    """One opt-out request and the ids of the faces it matched (vault faces, which an opt-out's
    matches become, only for those with vault access)."""
    lib.authorize(actor, "optout.list")
    redact = vault.Redaction(lib, actor)
    with lib.catalog.engine.connect() as conn:
        row = catalog_optouts.optout(conn, optout_id)
        if row is None:
            raise NotFoundError(f"no opt-out with id {optout_id}; `faceledger optout list`")
        faces = catalog_optouts.matched_faces(conn, optout_id)
    visible = set(redact.faces(f for f, _ in faces))
    with lib.writing() as conn:
        audit.append(conn, actor.name, "optout.show", {"optouts": [optout_id]})
    return _optout_dict(row, redact.full) | {
        "faces": [{"face_id": f, "distance": round(d, 4)} for f, d in faces if f in visible]
    }


def _optout_dict(row: OptOut, reader: bool) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "region": row.region,
        "status": _status(row.status, reader),
        "submitted_by": row.submitted_by,
        "submitted_at": iso(row.submitted_at),
    }
