"""Database housekeeping: scrubbing freed storage, folding the write-ahead log, a liveness check."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

__all__ = ["secure_delete", "checkpoint", "ping"]


def secure_delete(conn: Connection) -> None:
    """Make SQLite zero the space freed by this connection's deletes and updates.

    Without it a wiped vector blob survives in the page's free space, readable with a hex editor.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA secure_delete=ON")


def checkpoint(engine: Engine) -> None:
    """Fold the SQLite write-ahead log into the database and empty it (old page images go)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def ping(engine: Engine) -> None:
    """Raise unless the database answers a trivial query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
