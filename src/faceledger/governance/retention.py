"""Running the retention schedule: find what is due, destroy what no hold covers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from faceledger import audit
from faceledger.catalog import schema as t
from faceledger.clock import iso, utcnow
from faceledger.governance.destruction import destroy
from faceledger.governance.holds import held_photo_ids
from faceledger.policy import destruction_due

if TYPE_CHECKING:
    from faceledger.library import Actor, Library

__all__ = ["run_retention"]


def run_retention(
    lib: Library, actor: Actor, dry_run: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """Destroy every face vector the schedule makes due (photos too if the policy says)."""
    lib.authorize(actor, "retention.run")
    now = now or utcnow()
    policy = lib.policy
    with lib.catalog.engine.connect() as conn:
        rows = conn.execute(
            select(t.faces.c.id, t.faces.c.photo_id, t.faces.c.last_interaction_at)
            .where(t.faces.c.status == "active")
        ).all()  # fmt: skip
        held = held_photo_ids(conn)
    # No catalog field says a face's purpose is satisfied yet: only the time limit applies here.
    due: dict[str, list[int]] = {}
    faces_of: dict[int, list[int]] = {}
    for face_id, photo_id, last in rows:
        faces_of.setdefault(photo_id, []).append(face_id)
        rule = destruction_due(policy, last, purpose_satisfied=False, now=now)
        if rule:
            due.setdefault(rule, []).append(face_id)
    due_ids = {f for ids in due.values() for f in ids}
    photo_of = {f: p for f, p, _ in rows}
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
