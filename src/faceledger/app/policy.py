"""Applying the policy: re-evaluate photos, move faces between the indexes, record it."""

from __future__ import annotations

from typing import Any

from faceledger.app.library import Actor, Library
from faceledger.app.placement import reevaluate_photos

__all__ = ["apply_policy", "reevaluate_photos"]


def apply_policy(lib: Library, actor: Actor, full: bool = False) -> dict[str, Any]:
    """Put the policy file in force and re-decide the faces it and the sites registry move
    (idempotent).

    Only the photos the change can affect are re-decided (``app.placement.changed_photos``:
    ties to regions whose blocking changed, copies from websites whose publisher region
    changed), so the work grows with the faces moved, not with the library. ``full``, or no
    earlier apply to compare with (a new library, a catalog upgraded from before migration
    0010), or consent rules in force: every photo is re-decided.
    """
    lib.authorize(actor, "policy.apply")
    return reevaluate_photos(lib, actor, "policy.apply", apply_file=True, full=full)
