"""The catalog's SQL for reading ingest runs and the errors and warnings of their items."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from faceledger.catalog import schema as t

__all__ = ["recent_runs", "run_problems"]


def recent_runs(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """The newest ingest runs with their counters and how many errors and warnings each had."""
    r, e = t.ingest_runs, t.ingest_errors
    errors = (
        select(func.count()).where(e.c.run_id == r.c.id, e.c.level == "error").scalar_subquery()
    )
    warnings = (
        select(func.count()).where(e.c.run_id == r.c.id, e.c.level == "warning").scalar_subquery()
    )
    rows = conn.execute(
        select(r, errors.label("errors"), warnings.label("warnings"))
        .order_by(r.c.id.desc())
        .limit(limit)
    ).mappings()
    return [dict(row) for row in rows]


def run_problems(conn: Connection, run_id: int, limit: int) -> list[dict[str, Any]]:
    """The errors and warnings of one run's items, in the order they happened."""
    e = t.ingest_errors
    rows = conn.execute(
        select(e.c.item, e.c.level, e.c.error_type, e.c.message, e.c.at)
        .where(e.c.run_id == run_id)
        .order_by(e.c.id)
        .limit(limit)
    ).mappings()
    return [dict(row) for row in rows]
