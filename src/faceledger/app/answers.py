"""Discovery questions as library calls: authorised by role, answered read-only, audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from faceledger import audit
from faceledger.app.library import Actor, Library
from faceledger.catalog import vault_counts
from faceledger.catalog.discovery import (
    Selection,
    count,
    iter_vector_dates,
    sources,
    vector_dates,
)
from faceledger.records import OnProgress

__all__ = ["answer", "stream_vector_dates", "recount", "QUESTIONS", "STREAM_END"]

QUESTIONS = {"count": count, "sources": sources, "vector_dates": vector_dates}

#: The audit action of the entry that closes a streamed answer (its row count).
STREAM_END = "discovery.vector_dates.end"


def _selection(
    lib: Library, actor: Actor, question: str, blocked: bool | None, jurisdiction: str | None,
    signal: str | None,
) -> Selection:  # fmt: skip
    lib.authorize(actor, f"discovery.{question}")
    selection = Selection(blocked, jurisdiction, signal, actor.is_custodian, lib.policy.blocking)
    if selection.blocked is not False:
        lib.require_vault_access(actor)
    return selection


def _details(selection: Selection, **more: Any) -> dict[str, Any]:
    return {"blocked": selection.blocked, "jurisdiction": selection.jurisdiction,
            "signal": selection.signal, **more}  # fmt: skip


def answer(
    lib: Library,
    actor: Actor,
    question: str,
    *,
    blocked: bool | None = None,
    jurisdiction: str | None = None,
    signal: str | None = None,
    verify: bool = False,
) -> Any:
    """Answer one discovery question; blocked faces are in scope for custodians only.

    ``verify`` (``count`` only): where the vault's kept counts answer, count the ties too and
    fail if they differ (``catalog.discovery.count``).
    """
    selection = _selection(lib, actor, question, blocked, jurisdiction, signal)
    more = {"verify": verify} if question == "count" else {}
    with lib.catalog.engine.connect() as conn:
        result = QUESTIONS[question](conn, selection, **more)
    with lib.writing() as conn:
        audit.append(
            conn, actor.name, f"discovery.{question}",
            details=_details(selection, rows=len(result) if isinstance(result, list) else None,
                             **more),
        )  # fmt: skip
    return result


def recount(
    lib: Library, actor: Actor, on_progress: OnProgress | None = None
) -> dict[str, Any]:
    """Derive the vault's kept counts (``catalog.vault_counts``) anew from the faces, ties
    and provenance, for when ``discovery count --verify`` found them edited; custodians.
    ``on_progress`` is told the vault photos folded so far and their total."""
    lib.authorize(actor, "discovery.recount")
    lib.require_vault_access(actor)  # they are counts of the vault
    photos = vault_counts.rebuild(lib.catalog.engine, on_progress)
    with lib.writing() as conn:
        audit.append(conn, actor.name, "discovery.recount", details={"vault_photos": photos})
    return {"vault_photos": photos}


def stream_vector_dates(
    lib: Library,
    actor: Actor,
    *,
    blocked: bool | None = None,
    jurisdiction: str | None = None,
    signal: str | None = None,
) -> Iterator[dict[str, Any]]:
    """``vector_dates`` row by row, for answers too large to hold (10^7 faces): the rows come
    from a server-side cursor as the caller takes them, so memory does not grow with them.

    Authorisation happens here, before the iterator is returned (a refusal raises now). The
    audit takes two entries, as DESIGN's invariant 4 asks of every read of biometric data:
    ``discovery.vector_dates`` is committed before the first row leaves the catalog (so no row
    is ever read unaudited, whatever happens to the stream), with ``rows: null`` and
    ``streamed: true``; when the stream ends, ``discovery.vector_dates.end`` names that
    entry and records how many rows were handed out and whether the stream was read to its
    end (``complete``: false when the reader stopped early, e.g. a closed connection).
    """
    selection = _selection(lib, actor, "vector_dates", blocked, jurisdiction, signal)
    with lib.writing() as conn:
        opened = audit.append(conn, actor.name, "discovery.vector_dates",
                              details=_details(selection, rows=None, streamed=True))  # fmt: skip
    return _stream(lib, actor, selection, opened)


def _stream(
    lib: Library, actor: Actor, selection: Selection, opened: int
) -> Iterator[dict[str, Any]]:
    rows, complete = 0, False
    try:
        with lib.catalog.engine.connect() as conn:
            for row in iter_vector_dates(conn, selection):
                rows += 1  # counted as handed out: a reader may stop at this yield
                yield row
        complete = True
    finally:
        with lib.writing() as conn:
            audit.append(conn, actor.name, STREAM_END,
                         details=_details(selection, entry=opened, rows=rows,
                                          complete=complete))  # fmt: skip
