"""The audit log as governance commands: verify and export, authorized by role."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from faceledger import audit

if TYPE_CHECKING:
    from faceledger.library import Actor, Library

__all__ = ["verify_log", "export_log"]


def verify_log(lib: Library, actor: Actor) -> dict[str, Any]:
    """Check the audit chain; name the first entry that was edited, removed, added or moved."""
    lib.authorize(actor, "audit.verify")
    result = audit.verify(lib.catalog.engine)
    return {"ok": result.ok, "checked": result.checked, "first_bad_id": result.first_bad_id,
            "reason": result.reason, "last_id": result.last_id,
            "last_hash": result.last_hash}  # fmt: skip


def export_log(lib: Library, actor: Actor, since: datetime | None = None) -> Iterator[dict]:
    """Audit entries (from ``since`` on), then an entry recording this export."""
    lib.authorize(actor, "audit.export")
    count = 0
    for entry in audit.export(lib.catalog.engine, since):
        count += 1
        yield entry
    with lib.writing() as conn:
        audit.append(
            conn,
            actor.name,
            "audit.export",
            {},
            {"since": since.isoformat() if since else None, "entries": count},
        )
