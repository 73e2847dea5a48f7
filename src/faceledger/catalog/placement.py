"""The catalog's SQL for where faces are: the place columns, the index change log, index marks.

A face's place is derived from two columns of ``faces``: ``status`` (active | destroyed) and
``blocked``. Database triggers (migration 0005) append a ``placement_log`` row for every change
of place, so the log cannot miss a move whatever code made it. Only
:mod:`faceledger.app.placement` calls the writers here.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    event,
    func,
    insert,
    select,
    update,
)

from faceledger.catalog import schema as t
from faceledger.catalog.database import catalog_lock
from faceledger.catalog.vectors import DIM, VectorSealer, from_blob, to_blob
from faceledger.clock import utcnow
from faceledger.records import DetectedFace, IndexChanges, PlaceIds

if TYPE_CHECKING:
    from faceledger.catalog.store import Catalog

__all__ = [
    "Place",
    "PLACE_WHERE",
    "PLACED",
    "CatalogFeed",
    "insert_faces",
    "set_blocked",
    "mark_destroyed",
    "log_entries",
    "log_head",
    "read_mark",
    "compare_and_set_mark",
]

_CHUNK = 10_000
#: The log head as one primary-key lookup, read on a connection of its own before every search.
_HEAD_SQL = f"SELECT max(seq) FROM {t.placement_log.name}"
#: Set in a connection's ``info`` by every writer here: ``Library.writing`` then catches the
#: vector indexes up once the transaction has committed.
PLACED = "faceledger.placed"


class Place(StrEnum):
    """Where a face is: which vector index may hold it, if any."""

    SEARCHABLE = "searchable"
    VAULT = "vault"
    DESTROYED = "destroyed"


_ACTIVE = t.faces.c.status == "active"
#: The catalog condition for each place a vector index mirrors.
PLACE_WHERE = {
    Place.SEARCHABLE: and_(_ACTIVE, t.faces.c.blocked.is_(False)),
    Place.VAULT: and_(_ACTIVE, t.faces.c.blocked.is_(True)),
}


#: Rows per fetch when a read streams (ids of a place).
_STREAM_BATCH = 100_000


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start : start + _CHUNK])


# -- writers (called by faceledger.app.placement alone) ------------------------------------------
def insert_faces(
    conn: Connection,
    sealer: VectorSealer,
    photo_id: int,
    found: Sequence[DetectedFace],
    detector: str,
    blocked: Sequence[bool],
) -> list[int]:
    """Insert a photo's faces with their vectors and block flags; returns their ids in order."""
    conn.info[PLACED] = True
    now = utcnow()
    ids = []
    for ordinal, (face, is_blocked) in enumerate(zip(found, blocked, strict=True)):
        ids.append(
            conn.execute(
                insert(t.faces).values(
                    photo_id=photo_id,
                    ordinal=ordinal,
                    box_top=face.box.top,
                    box_right=face.box.right,
                    box_bottom=face.box.bottom,
                    box_left=face.box.left,
                    landmarks=[list(p) for p in face.landmarks],
                    detector=detector,
                    det_score=face.score,
                    vector=to_blob(face.vector, sealer),
                    vector_key_id=sealer.key_id,
                    model=face.model,
                    model_version=face.model_version,
                    vector_collected_at=now,
                    last_interaction_at=now,
                    blocked=is_blocked,
                )
            ).inserted_primary_key[0]
        )
    return ids


def set_blocked(conn: Connection, face_ids: Sequence[int], blocked: bool) -> None:
    """Set the block flag of these active faces."""
    conn.info[PLACED] = True
    for chunk in _chunks(face_ids):
        conn.execute(
            update(t.faces).where(t.faces.c.id.in_(chunk), _ACTIVE).values(blocked=blocked)
        )


def mark_destroyed(conn: Connection, face_ids: Sequence[int], now: datetime) -> None:
    """Reduce these faces to tombstones: vector, box and landmarks wiped, status destroyed."""
    conn.info[PLACED] = True
    for chunk in _chunks(face_ids):
        conn.execute(
            update(t.faces)
            .where(t.faces.c.id.in_(chunk))
            .values(
                vector=None, vector_key_id=None, landmarks=[], box_top=0, box_right=0,
                box_bottom=0, box_left=0, det_score=0.0, status="destroyed", destroyed_at=now,
            )
        )  # fmt: skip


# -- the log ---------------------------------------------------------------------------------
def log_head(conn: Connection) -> int:
    """The newest seq in the change log (0 when empty)."""
    return int(conn.scalar(select(func.max(t.placement_log.c.seq))) or 0)


def log_entries(
    conn: Connection, face_ids: Iterable[int] | None = None, after: int = 0
) -> list[dict]:
    """Log rows (of these faces, or all) after ``after``, in order."""
    query = select(t.placement_log).where(t.placement_log.c.seq > after)
    if face_ids is not None:
        query = query.where(t.placement_log.c.face_id.in_(list(face_ids)))
    return [dict(r) for r in conn.execute(query.order_by(t.placement_log.c.seq)).mappings()]


def read_mark(conn: Connection, name: str) -> int | None:
    """The seq an external index ``name`` last applied (None if it never applied any)."""
    return conn.scalar(select(t.index_marks.c.applied_seq).where(t.index_marks.c.name == name))


def compare_and_set_mark(conn: Connection, name: str, expected: int | None, new: int) -> bool:
    """Move the mark of ``name`` from ``expected`` to ``new``; False if another writer moved it."""
    m = t.index_marks
    if expected is None:
        if read_mark(conn, name) is not None:
            return False
        conn.execute(insert(m).values(name=name, applied_seq=new, updated_at=utcnow()))
        return True
    done = conn.execute(
        update(m)
        .where(m.c.name == name, m.c.applied_seq == expected)
        .values(applied_seq=new, updated_at=utcnow())
    )
    return done.rowcount == 1


#: The vectors of some faces with their place columns (the compressed index's re-rank). The
#: place is checked in Python: with it in the WHERE clause, SQLite's planner chose the
#: (status, blocked, photo_id) index and scanned every face in the place (57 ms for 40 ids
#: at 2·10^5 faces) instead of 40 primary-key reads.
_VECTORS_OF = select(
    t.faces.c.id, t.faces.c.vector, t.faces.c.vector_key_id, t.faces.c.status, t.faces.c.blocked
).where(t.faces.c.id.in_(bindparam("ids", expanding=True)))


class CatalogFeed:
    """The change feed a vector index reads: the log, and the vectors of faces in a place."""

    def __init__(self, catalog: Catalog):
        """Read from ``catalog``; vectors are opened with its sealer as it is at each read."""
        self.catalog = catalog
        # Head reads: one autocommit DB-API connection per thread, outside the pool, closed
        # when the catalog's engine is disposed (Catalog.close).
        self._local = threading.local()
        self._head_conns: list = []
        self._head_lock = threading.Lock()
        self._generation = 0
        event.listen(catalog.engine, "engine_disposed", self._close_head_connections)

    @property
    def engine(self) -> Engine:
        """The catalog's database engine."""
        return self.catalog.engine

    def head(self) -> int:
        """The newest seq in the change log.

        Every search asks first, so this skips SQLAlchemy's pool (checkout, pre-ping, reset:
        ~0.1-0.2 ms) for a DB-API connection of this thread's own in autocommit, which never
        holds a snapshot and so sees every commit (~5 µs on SQLite).
        """
        raw = self._head_connection()
        if raw is not None:
            try:
                cursor = raw.cursor()
                try:
                    cursor.execute(_HEAD_SQL)
                    row = cursor.fetchone()
                finally:
                    cursor.close()
                return int(row[0] or 0)
            except Exception:  # e.g. a server connection dropped: reopened on the next call
                self._local.conn = None
                with contextlib.suppress(Exception):
                    raw.close()
        with self.engine.connect() as conn:
            return log_head(conn)

    def _head_connection(self):
        """This thread's head-reading connection (None where the pool must be used)."""
        local = self._local
        conn = getattr(local, "conn", None)
        if (conn is not None and local.pid == os.getpid()
                and local.generation == self._generation):  # fmt: skip
            return conn
        dialect, database = self.engine.dialect.name, self.engine.url.database
        if dialect not in ("sqlite", "postgresql") or (
            dialect == "sqlite" and database in (None, "", ":memory:")
        ):
            return None
        fairy = self.engine.raw_connection()
        conn = fairy.driver_connection
        fairy.detach()  # ours now: the pool neither resets nor reuses it
        if dialect == "postgresql":
            conn.rollback()
            conn.autocommit = True
        else:
            conn.isolation_level = None  # autocommit: each SELECT reads the newest commit
        with self._head_lock:
            self._head_conns.append(conn)
        local.conn, local.pid, local.generation = conn, os.getpid(), self._generation
        return conn

    def _close_head_connections(self, _engine=None) -> None:
        with self._head_lock:
            conns, self._head_conns = self._head_conns, []
            self._generation += 1
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()

    def changes(self, place: str, after: int) -> IndexChanges:
        """What an index of ``place`` that applied the log up to ``after`` must do now.

        Every face moved since ``after`` is looked up as it is now: those in ``place`` are
        (re)added with their vectors, the others removed. Reading the present rather than
        replaying each row is idempotent, and a state newer than the head read first is still a
        committed state that the next call confirms.
        """
        where = PLACE_WHERE[Place(place)]
        with self.engine.connect() as conn:
            head = log_head(conn)
            if head <= after:
                return IndexChanges(after, *_no_vectors(), np.empty(0, np.int64))
            touched = conn.scalars(
                select(t.placement_log.c.face_id)
                .where(t.placement_log.c.seq > after, t.placement_log.c.seq <= head)
                .distinct()
            ).all()
            rows = []
            for chunk in _chunks(sorted(touched)):
                rows += conn.execute(
                    select(t.faces.c.id, t.faces.c.vector, t.faces.c.vector_key_id)
                    .where(t.faces.c.id.in_(chunk), where)
                    .order_by(t.faces.c.id)
                ).all()
        ids, vectors = self._matrix(rows)
        removed = np.setdiff1d(np.asarray(touched, np.int64), ids)
        return IndexChanges(head, ids, vectors, removed)

    def place_ids(self, place: str) -> PlaceIds:
        """Every face id now in ``place``, after the log head (a rebuild's count and sample:
        8 bytes a face in memory, streamed from the database)."""
        with self.engine.connect() as conn:
            head = log_head(conn)
            result = conn.execution_options(yield_per=_STREAM_BATCH).execute(
                select(t.faces.c.id).where(PLACE_WHERE[Place(place)]).order_by(t.faces.c.id)
            )
            parts = [np.fromiter((r[0] for r in part), np.int64, len(part))
                     for part in result.partitions()]  # fmt: skip
        ids = np.concatenate(parts) if parts else np.empty(0, np.int64)
        return PlaceIds(head, ids)

    def batches(self, place: str, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every face now in ``place`` with its vector, ``size`` at a time, in the table's
        physical order (no sort: one sequential pass, through a server-side cursor on
        PostgreSQL), so a rebuild never holds every vector at once."""
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=size).execute(
                select(t.faces.c.id, t.faces.c.vector, t.faces.c.vector_key_id).where(
                    PLACE_WHERE[Place(place)]
                )
            )
            for part in result.partitions():
                yield self._matrix(part)

    def vectors(self, place: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of those ``ids`` now in ``place``: a compressed index re-ranks its
        candidates with them (exact distances), and drops any the catalog moved out."""
        wanted = [int(i) for i in ids]
        if not wanted:
            return _no_vectors()
        vault = Place(place) == Place.VAULT
        with self.engine.connect() as conn:
            rows = []
            for chunk in _chunks(wanted):
                rows += [
                    (r.id, r.vector, r.vector_key_id)
                    for r in conn.execute(_VECTORS_OF, {"ids": chunk})
                    if r.status == "active" and bool(r.blocked) == vault
                ]
        return self._matrix(rows)

    # -- for indexes that keep their data outside the library (Milvus) ---------------------------
    def read_mark(self, name: str) -> int | None:
        """The seq the external index ``name`` last applied (None if it never applied any)."""
        with self.engine.connect() as conn:
            return read_mark(conn, name)

    def compare_and_set_mark(self, name: str, expected: int | None, new: int) -> bool:
        """Move the mark of ``name`` from ``expected`` to ``new``; False if it had moved."""
        with self.engine.begin() as conn:
            return compare_and_set_mark(conn, name, expected, new)

    @contextmanager
    def applier_lock(self, name: str) -> Iterator[None]:
        """Hold the lock that serialises the appliers of index ``name`` across processes
        (:func:`catalog_lock`: an advisory lock on PostgreSQL, a file lock beside SQLite)."""
        with catalog_lock(self.engine, f"index-{name}"):
            yield

    def _matrix(self, rows: Sequence) -> tuple[np.ndarray, np.ndarray]:
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.empty((len(rows), DIM), dtype=np.float32)
        for i, (_, blob, key_id) in enumerate(rows):
            matrix[i] = from_blob(blob, key_id, self.catalog.sealer)
        return ids, matrix


def _no_vectors() -> tuple[np.ndarray, np.ndarray]:
    return np.empty(0, np.int64), np.empty((0, DIM), np.float32)
