"""Running the retention schedule: find what is due, destroy what no hold covers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from faceledger import audit
from faceledger.app.governance import vault
from faceledger.app.governance.destruction import destroy
from faceledger.app.governance.holds import held_photo_ids
from faceledger.catalog import faces as catalog_faces
from faceledger.clock import iso, utcnow
from faceledger.errors import BadOptionError
from faceledger.policy import destruction_due

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = ["run_retention", "mark_purpose_satisfied"]


def run_retention(
    lib: Library, actor: Actor, dry_run: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """Destroy every face vector the schedule makes due (photos too if the policy says)."""
    lib.authorize(actor, "retention.run")
    now = now or utcnow()
    policy = lib.policy
    with lib.catalog.engine.connect() as conn:
        rows = catalog_faces.retention_rows(conn)
        held = held_photo_ids(conn)
    due: dict[str, list[int]] = {}
    faces_of: dict[int, list[int]] = {}
    for face_id, photo_id, last, satisfied in rows:
        faces_of.setdefault(photo_id, []).append(face_id)
        rule = destruction_due(policy, last, purpose_satisfied=satisfied is not None, now=now)
        if rule:
            due.setdefault(rule, []).append(face_id)
    due_ids = {f for ids in due.values() for f in ids}
    photo_of = {f: p for f, p, _, _ in rows}
    photos = []
    if policy.retention.destroy_photos:
        # A photo goes when every face in it is due: its other faces may still serve the purpose.
        photos = sorted(p for p, fs in faces_of.items() if all(f in due_ids for f in fs))
    # Ids of the vault hidden from this actor, found before destruction takes them out of it.
    redact = vault.Redaction(lib, actor)
    hidden_faces = due_ids - set(redact.faces(sorted(due_ids)))
    hidden_photos = set(photos) - set(redact.photos(photos))
    summary = {
        "now": iso(now), "dry_run": dry_run,
        "due_faces": sorted(due_ids), "held_faces": sorted(f for f in due_ids
                                                          if photo_of[f] in held),
        "due_photos": photos, "rules": {rule: len(ids) for rule, ids in due.items()},
    }  # fmt: skip
    if dry_run:
        with lib.writing() as conn:
            audit.append(
                conn,
                actor.name,
                "retention.dry_run",
                {"faces": summary["due_faces"]},
                {"rules": summary["rules"], "held": len(summary["held_faces"])},
            )
        return _redacted(summary, due, hidden_faces, hidden_photos)
    results = []
    for n, (rule, ids) in enumerate(sorted(due.items())):
        results.append(destroy(lib, actor, face_ids=ids, photo_ids=photos if n == 0 else (),
                               action="destroy", rule=rule))  # fmt: skip
    with lib.writing() as conn:
        audit.append(conn, actor.name, "retention.run", {"faces": summary["due_faces"]},
                     {"rules": summary["rules"], "now": iso(now)})  # fmt: skip
    summary["destroyed_faces"] = sorted(f for r in results for f in r["destroyed_faces"])
    summary["destroyed_photos"] = sorted(p for r in results for p in r["destroyed_photos"])
    summary["deferred"] = [d for r in results for d in r["deferred"]]
    return _redacted(summary, due, hidden_faces, hidden_photos)


def _redacted(
    summary: dict[str, Any], due: dict[str, list[int]], faces: set[int], photos: set[int]
) -> dict[str, Any]:
    """The summary without the vault's faces and hidden photos (none given: unchanged)."""
    if not faces and not photos:
        return summary
    out = dict(summary)
    for key in ("due_faces", "held_faces", "destroyed_faces"):
        if key in out:
            out[key] = [f for f in out[key] if f not in faces]
    for key in ("due_photos", "destroyed_photos"):
        if key in out:
            out[key] = [p for p in out[key] if p not in photos]
    out["rules"] = {
        rule: n for rule, ids in due.items() if (n := len([f for f in ids if f not in faces]))
    }
    if "deferred" in out:
        out["deferred"] = [d for d in out["deferred"]
                           if d.get("face") not in faces and d.get("photo") not in photos]
    return out


def mark_purpose_satisfied(
    lib: Library, actor: Actor, reason: str, face_ids: Sequence[int] = (),
    photo_ids: Sequence[int] = (), subject: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Record that the purpose of these faces' vectors is satisfied; retention then destroys them.

    Faces are named directly, by photo, or by the consent subject their photos were collected
    under (a closed account, a finished verification).
    """
    lib.authorize(actor, "retention.run")
    if not reason.strip():
        raise BadOptionError("a reason is required: say why the purpose is satisfied")
    now = utcnow()
    with lib.writing() as conn:
        ids = catalog_faces.mark_purpose_satisfied(conn, face_ids, photo_ids, subject, now)
        audit.append(conn, actor.name, "retention.purpose_satisfied", {"faces": ids},
                     {"reason": reason, "subject": subject})  # fmt: skip
    # Marked all the same; the answer names vault faces only to those with vault access.
    shown = vault.Redaction(lib, actor).faces(ids)
    return {"faces": shown, "marked_at": iso(now), "reason": reason,
            "next": "run `faceledger retention run` to destroy what is due and not held"}
