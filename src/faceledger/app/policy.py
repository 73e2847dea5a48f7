"""Applying the policy: re-evaluate photos, move faces between the indexes, record it."""

from __future__ import annotations

from typing import Any

from faceledger.app.library import Actor, Library
from faceledger.app.placement import reevaluate_photos

__all__ = ["apply_policy", "reevaluate_photos"]


def apply_policy(lib: Library, actor: Actor) -> dict[str, Any]:
    """Re-decide every face under the current policy file and sites registry (idempotent)."""
    lib.authorize(actor, "policy.apply")
    return reevaluate_photos(lib, actor, "policy.apply", apply_file=True)
