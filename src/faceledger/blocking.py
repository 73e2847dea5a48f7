"""Applying the policy: re-evaluate photos, move faces between the indexes, record it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faceledger import audit
from faceledger.decide import Decider
from faceledger.library import Actor, Library

__all__ = ["apply_policy", "reevaluate_photos"]


def reevaluate_photos(
    lib: Library, actor: Actor, action: str, photo_ids: Sequence[int] | None = None,
    apply_file: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Re-decide the faces of these photos (all if None) and move them; audited as ``action``.

    With ``apply_file`` the policy file is first validated and put in force as a new version.
    """
    with lib.writing() as conn:
        if apply_file:
            version, policy = lib.record_policy(conn, actor.name)
        else:
            version, policy = lib.policy_version(), lib.policy
        decider = Decider.for_library(lib, policy)
        moved = decider.reevaluate(conn, photo_ids)
        if moved.blocked or moved.unblocked:
            lib.bump_generation(conn, "searchable", "vault")
        result = {
            "policy_version": version,
            "blocked": len(moved.blocked),
            "unblocked": len(moved.unblocked),
        }
        audit.append(
            conn, actor.name, action, {"blocked": moved.blocked, "unblocked": moved.unblocked},
            result,
        )  # fmt: skip
    if moved.blocked or moved.unblocked:
        lib.refresh_indexes()
    return result


def apply_policy(lib: Library, actor: Actor) -> dict[str, Any]:
    """Re-decide every face under the current policy file and sites registry (idempotent)."""
    lib.authorize(actor, "policy.apply")
    return reevaluate_photos(lib, actor, "policy.apply", apply_file=True)
