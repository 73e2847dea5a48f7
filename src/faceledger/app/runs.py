"""Ingest runs and the items they could not store, as library calls (admins: they name paths)."""

from __future__ import annotations

from typing import Any

from faceledger.app.library import Actor, Library
from faceledger.catalog import runs as catalog_runs
from faceledger.clock import iso
from faceledger.errors import BadOptionError

__all__ = ["list_runs", "run_problems"]

#: Most rows one call answers.
MAX_ROWS = 1000


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_ROWS:
        raise BadOptionError(f"limit must be from 1 to {MAX_ROWS}, not {limit}")
    return limit


def list_runs(lib: Library, actor: Actor, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ingest runs, newest first, with their inputs and counters."""
    lib.authorize(actor, "ingest")
    with lib.catalog.engine.connect() as conn:
        rows = catalog_runs.runs(conn, _limit(limit))
    return [
        {"id": r["id"], "started_at": iso(r["started_at"]), "finished_at": iso(r["finished_at"]),
         "status": r["status"], "actor": r["actor"], "inputs": list(r["inputs"] or []),
         "counters": r["counters"]}
        for r in rows
    ]  # fmt: skip


def run_problems(
    lib: Library, actor: Actor, run_id: int, level: str | None = None, limit: int = MAX_ROWS
) -> list[dict[str, Any]]:
    """The error rows (``level`` error) and warning rows (warning) of one run, or both."""
    lib.authorize(actor, "ingest")
    if level not in (None, "error", "warning"):
        raise BadOptionError(f"level must be error or warning, not {level!r}")
    with lib.catalog.engine.connect() as conn:
        rows = catalog_runs.problems(conn, run_id, level, _limit(limit))
    return [
        {"id": r["id"], "run_id": r["run_id"], "item": r["item"], "level": r["level"],
         "error_type": r["error_type"], "message": r["message"], "at": iso(r["at"])}
        for r in rows
    ]  # fmt: skip
