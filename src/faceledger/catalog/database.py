"""Engine creation and migrations: SQLite in the library directory by default, or PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from faceledger.files import file_lock

__all__ = [
    "make_engine", "migrate", "current_revision", "head_revision", "catalog_lock", "SCHEMA_HEAD",
]

#: The newest migration. Every command checks the catalog against it, so it is a constant
#: rather than a parse of the migration scripts (Alembic's import alone costs 0.2 s a command);
#: a test keeps it equal to Alembic's head.
SCHEMA_HEAD = "0012"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            # The change log's trigger hashes each row with it (migration 0009).
            dbapi_conn.create_function("faceledger_sha256", 1, _sha256_hex, deterministic=True)

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")  # psycopg 3 driver
    return create_engine(url, pool_pre_ping=True)


@contextmanager
def catalog_lock(engine: Engine, name: str) -> Iterator[None]:
    """Hold the lock ``name`` of this catalog across processes, outside any transaction.

    A session-level PostgreSQL advisory lock on a connection of its own when the catalog is
    PostgreSQL (processes on any host), so a transaction begun after it starts its snapshot
    after the lock is held; a file lock ``.NAME.lock`` beside ``catalog.sqlite`` otherwise
    (SQLite is one host's).
    """
    if engine.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        raise ValueError("a catalog lock needs a catalog in a file or on a server")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    with file_lock(Path(database).parent / f".{safe}.lock"):
        yield


def _sha256_hex(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(str(value).encode()).hexdigest()


def _alembic_config():
    from alembic.config import Config  # only init and upgrades need Alembic

    cfg = Config()
    cfg.set_main_option("script_location", str(files("faceledger.catalog") / "migrations"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the catalog schema to the newest revision."""
    from alembic import command

    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None if never migrated)."""
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT version_num FROM alembic_version"))
    except (OperationalError, ProgrammingError):  # no alembic_version table: never migrated
        return None


def head_revision() -> str:
    """The newest schema revision among the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""
