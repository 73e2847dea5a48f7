"""Ingest runs as admins see them: when, what, counters, and the errors of their items."""

from __future__ import annotations

from typing import Any

from faceledger.app.library import Actor, Library
from faceledger.catalog import runs as catalog_runs
from faceledger.clock import iso

__all__ = ["list_runs", "run_problems"]


def list_runs(lib: Library, actor: Actor, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ingest runs, newest first, with how many items failed or warned."""
    lib.authorize(actor, "ingest")
    with lib.catalog.engine.connect() as conn:
        rows = catalog_runs.recent_runs(conn, limit)
    return [
        {"id": r["id"], "status": r["status"], "actor": r["actor"],
         "started_at": iso(r["started_at"]), "finished_at": iso(r["finished_at"]),
         "inputs": r["inputs"], "counters": r["counters"] or {},
         "errors": r["errors"], "warnings": r["warnings"]}
        for r in rows
    ]  # fmt: skip


def run_problems(lib: Library, actor: Actor, run_id: int, limit: int = 500) -> list[dict]:
    """The errors and warnings of one run's items (item, level, type, message, when)."""
    lib.authorize(actor, "ingest")
    with lib.catalog.engine.connect() as conn:
        rows = catalog_runs.run_problems(conn, run_id, limit)
    return [{**r, "at": iso(r["at"])} for r in rows]
