"""Running the retention schedule: find what is due, destroy what no hold covers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from faceledger import audit
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
        return summary
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
    return summary


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
        raise BadOptionError("--reason is required: say why the purpose is satisfied")
    now = utcnow()
    with lib.writing() as conn:
        ids = catalog_faces.mark_purpose_satisfied(conn, face_ids, photo_ids, subject, now)
        audit.append(conn, actor.name, "retention.purpose_satisfied", {"faces": ids},
                     {"reason": reason, "subject": subject})  # fmt: skip
    return {"faces": ids, "marked_at": iso(now), "reason": reason,
            "next": "run `faceledger retention run` to destroy what is due and not held"}
