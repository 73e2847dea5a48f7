"""Discovery questions as library calls: authorised by role, answered read-only, audited."""

from __future__ import annotations

from typing import Any

from faceledger import audit
from faceledger.app.library import Actor, Library
from faceledger.catalog.discovery import Selection, count, sources, vector_dates

__all__ = ["answer", "QUESTIONS"]

QUESTIONS = {"count": count, "sources": sources, "vector_dates": vector_dates}


def answer(
    lib: Library,
    actor: Actor,
    question: str,
    *,
    blocked: bool | None = None,
    jurisdiction: str | None = None,
    signal: str | None = None,
) -> Any:
    """Answer one discovery question; blocked faces are in scope for custodians only."""
    lib.authorize(actor, f"discovery.{question}")
    selection = Selection(blocked, jurisdiction, signal, actor.is_custodian, lib.policy.blocking)
    if selection.blocked is not False:
        lib.require_vault_access(actor)
    with lib.catalog.engine.connect() as conn:
        result = QUESTIONS[question](conn, selection)
    with lib.writing() as conn:
        audit.append(
            conn,
            actor.name,
            f"discovery.{question}",
            details={
                "blocked": selection.blocked,
                "jurisdiction": selection.jurisdiction,
                "signal": selection.signal,
                "rows": len(result) if isinstance(result, list) else None,
            },
        )
    return result
