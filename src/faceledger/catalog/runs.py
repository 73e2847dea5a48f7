"""The catalog's SQL for reading ingest runs and their error and warning rows.

The writes (start, finish, record an error) are :class:`faceledger.catalog.Catalog` methods.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from faceledger.catalog import schema as t

__all__ = ["runs", "problems"]


def runs(conn: Connection, limit: int) -> list[Any]:
    """The newest ``limit`` ingest runs, newest first."""
    r = t.ingest_runs
    return list(conn.execute(select(r).order_by(r.c.id.desc()).limit(limit)).mappings())


def problems(conn: Connection, run_id: int, level: str | None, limit: int) -> list[Any]:
    """Error (and warning) rows of one run, in the order they were recorded."""
    e = t.ingest_errors
    stmt = select(e).where(e.c.run_id == run_id)
    if level is not None:
        stmt = stmt.where(e.c.level == level)
    return list(conn.execute(stmt.order_by(e.c.id).limit(limit)).mappings())
