"""The audit_log table's SQL: the append lock, the chain's tail, the insert and the reads.

Only :mod:`faceledger.audit.log` calls these: it computes each entry's hash and decides what is
appended; this module only says how the rows are locked, written and read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import JSON, Connection, Engine, Row, Text, bindparam, cast, insert, select, text
from sqlalchemy.sql import Executable

from faceledger.catalog.schema import audit_log
from faceledger.clock import as_utc
from faceledger.records import EVERY_AUDIT_ENTRY, AuditFilter

__all__ = ["take_append_lock", "tail", "insert_entry", "newest", "iter_entries"]

# One 64-bit key for pg_advisory_xact_lock: serialises appends across sessions and hosts.
_PG_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"faceledger.audit_log").digest()[:8], "big", signed=True
)
_STREAM_BATCH = 5_000

_TAIL = select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
# A write that writes nothing: SQLite takes its single write lock before we read the tail, so a
# concurrent appender waits (busy timeout) instead of computing the same id.
_SQLITE_TAKE_WRITE_LOCK = text("INSERT INTO audit_log SELECT * FROM audit_log WHERE 0")
_PG_LOCK = text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_PG_LOCK_KEY)
_NEWEST = (
    select(audit_log.c.id, audit_log.c.hash, audit_log.c.at)
    .order_by(audit_log.c.id.desc())
    .limit(1)
)


def _insert(json_param: Any) -> Executable:
    # JSON members are stored as the exact canonical text that was hashed (bypassing the JSON
    # type's own serialiser), so verify() can hash the stored text without re-encoding it.
    return insert(audit_log).values(
        object_ids=json_param(bindparam("object_ids_json", type_=Text)),
        details=json_param(bindparam("details_json", type_=Text)),
    )


# PostgreSQL's json type keeps its input text verbatim. SQLite must not CAST: to it "JSON" means
# NUMERIC affinity, and CAST would turn the text into 0.
_INSERT_PG = _insert(lambda param: cast(param, JSON))
_INSERT_TEXT = _insert(lambda param: param)


def take_append_lock(conn: Connection) -> None:
    """Serialise appenders for the rest of the caller's transaction.

    Other databases take no lock: the primary key on id is the backstop, so a racing append
    fails and the chain never forks.
    """
    if conn.dialect.name == "sqlite":
        conn.execute(_SQLITE_TAKE_WRITE_LOCK)
    elif conn.dialect.name == "postgresql":
        conn.execute(_PG_LOCK)


def tail(conn: Connection) -> Row | None:
    """The last entry's (id, hash), or None for an empty log."""
    return conn.execute(_TAIL).first()


def insert_entry(conn: Connection, values: dict[str, Any]) -> None:
    """Insert one entry; ``object_ids_json`` and ``details_json`` are the hashed JSON texts."""
    conn.execute(_INSERT_PG if conn.dialect.name == "postgresql" else _INSERT_TEXT, values)


def newest(conn: Connection) -> Row | None:
    """The newest entry's (id, hash, at) as ``conn`` sees it, or None for an empty log."""
    return conn.execute(_NEWEST).first()


def iter_entries(engine: Engine, where: AuditFilter = EVERY_AUDIT_ENTRY) -> Iterator[tuple]:
    """Entries in id order, JSON members as their stored text, streamed (memory stays flat)."""
    stmt = select(
        audit_log.c.id,
        audit_log.c.at,
        audit_log.c.actor,
        audit_log.c.action,
        cast(audit_log.c.object_ids, Text),
        cast(audit_log.c.details, Text),
        audit_log.c.prev_hash,
        audit_log.c.hash,
    ).order_by(audit_log.c.id)
    if where.since is not None:
        # SQLite stores UTC wall time and ignores tzinfo when binding: convert first.
        stmt = stmt.where(audit_log.c.at >= as_utc(where.since))
    if where.until is not None:
        stmt = stmt.where(audit_log.c.at <= as_utc(where.until))
    if where.actor is not None:
        stmt = stmt.where(audit_log.c.actor == where.actor)
    if where.action is not None:
        stmt = stmt.where(audit_log.c.action == where.action)
    with engine.connect() as conn:
        # yield_per streams (a server-side cursor on PostgreSQL).
        yield from conn.execution_options(yield_per=_STREAM_BATCH).execute(stmt)
