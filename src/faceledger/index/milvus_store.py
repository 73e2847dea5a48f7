"""A Milvus collection per place, kept in step with the catalog's index change log.

Milvus is a database of its own, so nothing here is a snapshot: the collection *is* the index,
and the log seq it reflects (its mark) lives in the catalog's ``index_marks`` table. Applying
the log works like this, in one process at a time:

1. take the applier lock of the collection (a PostgreSQL advisory lock, or a file lock beside
   ``catalog.sqlite``), read the mark;
2. read what changed since the mark (:meth:`ChangeFeed.changes`: each face touched, as the
   catalog has it *now*), delete the removed faces and upsert the others, both by primary key
   (the face id), so applying twice is harmless;
3. move the mark by compare-and-set. If another applier moved it meanwhile (one that lost its
   lock, e.g. a dropped database connection), what this one wrote may be older than what the
   other wrote (an insert applied late could put back a face that the other deleted), so it
   re-applies every face touched since its start as the catalog has it now, and tries again.

A crash after step 2 leaves the mark behind; the next applier repeats the work, harmlessly.
Searches read with ``Strong`` consistency, so a search after a catch-up (by any process) sees
every write of that catch-up.

Milvus's L2 metric is the *squared* distance; every distance returned here is Euclidean (its
square root), so the match thresholds mean what they mean for FAISS.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceledger.errors import ConfigError, VectorIndexError
from faceledger.index.base import IndexChanges, MarkedFeed, counted
from faceledger.index.faiss_index import DIM
from faceledger.index.faiss_index import plan_for as faiss_plan
from faceledger.records import OnProgress

__all__ = ["MilvusStore", "MilvusTarget", "MilvusPlan", "milvus_plan", "MAX_TOPK"]

#: The largest ``limit`` (top-k) and number of queries a Milvus search accepts.
MAX_TOPK = 16_384
_WRITE_BATCH = 5_000  # rows an upsert sends at once (~2.6 MB of vectors)
_DELETE_BATCH = 10_000
_REBUILD_BATCH = 100_000  # faces a rebuild reads from the catalog at a time
_QUERY_BATCH = 1_024
_CAS_ATTEMPTS = 5
_ID, _VECTOR = "id", "vector"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MilvusTarget:
    """Where one place's collection lives and how to reach it (from the settings)."""

    uri: str
    collection: str
    token: str = ""
    index: str = "auto"
    exact_max: int = 50_000

    @property
    def embedded(self) -> bool:
        """Whether this is milvus-lite on a local data directory rather than a server."""
        return "://" not in self.uri

    def check(self) -> None:
        """Raise ConfigError where the URI cannot work."""
        if self.embedded and not self.uri.endswith(".db"):
            raise ConfigError(
                f"FACELEDGER_MILVUS_URI={self.uri!r}: a local milvus-lite path must end in .db "
                "(or give a server as http://host:19530)"
            )
        if self.embedded and self.index in ("IVF_PQ", "DISKANN"):
            raise ConfigError(f"milvus-lite has no {self.index} index: use FLAT, IVF_FLAT, "
                              "IVF_SQ8 or HNSW, or a Milvus server")  # fmt: skip

    def shown(self) -> str:
        """The URI without any credentials in it (for ``stats``)."""
        if "@" in self.uri and "://" in self.uri:
            scheme, rest = self.uri.split("://", 1)
            return f"{scheme}://{rest.split('@', 1)[1]}"
        return self.uri


@dataclass(frozen=True)
class MilvusPlan:
    """A Milvus index type with its build and search parameters."""

    index_type: str
    build: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)

    def search_params(self, limit: int) -> dict[str, Any]:
        """Search parameters for a top-``limit`` search (HNSW's ef must be at least limit)."""
        params = dict(self.search)
        if self.index_type == "HNSW":
            params["ef"] = max(int(params.get("ef", 0)), limit)
        if self.index_type == "DISKANN":
            params["search_list"] = max(int(params.get("search_list", 0)), limit)
        return {"metric_type": "L2", "params": params}

    def describe(self) -> str:
        """A short description, e.g. ``IVF_FLAT nlist=1024 nprobe=32``."""
        if self.index_type == "FLAT":
            return "FLAT (exact)"
        words = [f"{k}={v}" for k, v in {**self.build, **self.search}.items()]
        return " ".join([self.index_type, *words])


def milvus_plan(n: int, index: str = "auto", exact_max: int = 50_000) -> MilvusPlan:
    """The index for ``n`` faces: ``auto`` is exact (FLAT) up to ``exact_max``, IVF_FLAT above
    with the list counts the FAISS backend uses (so both answer alike); a named type is kept
    whatever the size (set one on a cluster, where changing an index means rebuilding it)."""
    if index == "auto":
        index = "FLAT" if n <= exact_max else "IVF_FLAT"
    if index == "FLAT":
        return MilvusPlan("FLAT")
    ivf = faiss_plan(max(n, exact_max + 1), exact_max)
    if index in ("IVF_FLAT", "IVF_SQ8"):
        return MilvusPlan(index, {"nlist": ivf.nlist}, {"nprobe": ivf.nprobe})
    if index == "IVF_PQ":
        return MilvusPlan(index, {"nlist": ivf.nlist, "m": 32, "nbits": 8}, {"nprobe": ivf.nprobe})
    if index == "HNSW":
        return MilvusPlan(index, {"M": 32, "efConstruction": 200}, {"ef": 128})
    if index == "DISKANN":
        return MilvusPlan(index, {}, {"search_list": 100})
    raise ConfigError(f"unknown Milvus index type {index!r}")


class MilvusStore:
    """One place's faces as a Milvus collection, fed by the catalog's change log."""

    backend = "milvus"

    def __init__(self, place: str, target: MilvusTarget, feed: MarkedFeed):
        """A store for ``place`` in ``target``'s collection; connects on first use."""
        target.check()
        self.place = place
        self.target = target
        self._feed = feed
        self._client: Any = None
        self._plan: MilvusPlan | None = None
        # True once this process removed vectors that compaction should purge.
        self._removed_since_persist = False
        # One process's threads share one client; the applier lock serialises processes.
        self._lock = threading.RLock()

    @property
    def mark_name(self) -> str:
        """The name of this collection's mark in the catalog's ``index_marks`` table."""
        return f"milvus:{self.target.collection}"

    # -- connecting ---------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:
            raise ConfigError(
                "FACELEDGER_INDEX=milvus needs pymilvus: pip install 'faceledger[milvus]'"
            ) from exc
        try:
            client = MilvusClient(uri=self.target.uri, token=self.target.token)
            present = client.has_collection(self.target.collection)
            if present:
                client.load_collection(self.target.collection)  # idempotent; lite starts released
        except Exception as exc:  # pymilvus raises MilvusException and grpc errors alike
            raise VectorIndexError(
                f"cannot use Milvus collection {self.target.collection!r} at "
                f"{self.target.shown()}: {exc}"
            ) from exc
        self._client = client
        if present:
            self._plan = self._read_plan()
        else:
            with self._feed.applier_lock(self.mark_name):
                if not client.has_collection(self.target.collection):
                    self._rebuild_locked()
                else:
                    client.load_collection(self.target.collection)
                    self._plan = self._read_plan()
        return client

    def _read_plan(self) -> MilvusPlan:
        described = self._client.describe_index(self.target.collection, _VECTOR) or {}
        kind = str(described.get("index_type", "FLAT"))
        build = {k: described[k] for k in ("nlist", "M", "efConstruction", "m", "nbits")
                 if k in described}  # fmt: skip
        search = milvus_plan(0, kind, self.target.exact_max).search if kind != "FLAT" else {}
        return MilvusPlan(kind, build, search)

    # -- the collection -----------------------------------------------------------------------
    def _create(self, plan: MilvusPlan) -> None:
        from pymilvus import DataType, MilvusClient

        client, name = self._client, self.target.collection
        if client.has_collection(name):
            client.drop_collection(name)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(_ID, DataType.INT64, is_primary=True)
        schema.add_field(_VECTOR, DataType.FLOAT_VECTOR, dim=DIM)
        client.create_collection(
            name, schema=schema, index_params=self._index_params(plan),
            consistency_level="Strong",
        )  # fmt: skip
        client.load_collection(name)
        self._plan = plan

    def _index_params(self, plan: MilvusPlan) -> Any:
        params = self._client.prepare_index_params()
        params.add_index(
            field_name=_VECTOR, index_name=_VECTOR, index_type=plan.index_type,
            metric_type="L2", params=plan.build,
        )  # fmt: skip
        return params

    def _reindex_structure(self, plan: MilvusPlan) -> None:
        """Replace the collection's index with ``plan``'s (searches wait for the reload)."""
        client, name = self._client, self.target.collection
        client.release_collection(name)
        client.drop_index(name, _VECTOR)
        client.create_index(name, self._index_params(plan))
        client.load_collection(name)
        self._plan = plan

    def _write(self, changes: IndexChanges) -> None:
        """Delete and upsert by primary key: applying the same changes twice is harmless."""
        client, name = self._client, self.target.collection
        removed = changes.remove_ids.tolist()
        for start in range(0, len(removed), _DELETE_BATCH):
            client.delete(name, ids=removed[start : start + _DELETE_BATCH])
        if removed:
            self._removed_since_persist = True
        ids, vectors = changes.add_ids, changes.add_vectors
        for start in range(0, len(ids), _WRITE_BATCH):
            stop = start + _WRITE_BATCH
            rows = [{_ID: int(i), _VECTOR: v.tolist()}
                    for i, v in zip(ids[start:stop], vectors[start:stop], strict=True)]  # fmt: skip
            client.upsert(name, rows)

    # -- catching up --------------------------------------------------------------------------
    @property
    def applied(self) -> int:
        """The last log seq applied to the collection (its mark in the catalog)."""
        return self._feed.read_mark(self.mark_name) or 0

    def catch_up(self) -> int:
        """Apply the change log past the mark, under the applier lock; returns the mark."""
        with self._lock:
            self._connect()
            mark = self._feed.read_mark(self.mark_name)
            if mark is not None and mark >= self._feed.head():
                return mark
            with self._feed.applier_lock(self.mark_name):
                mark = self._feed.read_mark(self.mark_name)
                if mark is None:
                    return self._rebuild_locked()
                return self._converge(mark, mark)

    def _converge(self, start: int, expected: int | None) -> int:
        """Apply every face touched after ``start``; move the mark from ``expected``."""
        for _ in range(_CAS_ATTEMPTS):
            changes = self._feed.changes(self.place, start)
            self._write(changes)
            new = max(changes.upto, start)
            if expected is not None and new <= expected:
                return expected  # nothing past the mark: it already says so
            if self._feed.compare_and_set_mark(self.mark_name, expected, new):
                return new
            # Another applier moved the mark while this one wrote: re-apply from ``start``.
            log.warning("the mark of %s moved under its applier; re-applying from seq %d",
                        self.mark_name, start)  # fmt: skip
            expected = self._feed.read_mark(self.mark_name)
        raise VectorIndexError(
            f"the Milvus collection {self.target.collection!r} kept being changed by another "
            "applier; is a process writing to it without the catalog's lock?"
        )

    def _rebuild_locked(self, on_progress: OnProgress | None = None) -> int:
        """Drop and recreate the collection from every face in this place; returns the mark."""
        expected = self._feed.read_mark(self.mark_name)
        listing = self._feed.place_ids(self.place)
        count = len(listing.ids)
        if on_progress is not None:
            on_progress(0, count)
        plan = milvus_plan(count, self.target.index, self.target.exact_max)
        self._create(plan)
        none = np.empty(0, np.int64)
        batches = counted(self._feed.batches(self.place, _REBUILD_BATCH), count, on_progress)
        for ids, vectors in batches:
            self._write(IndexChanges(listing.upto, ids, vectors, none))
        self._removed_since_persist = False  # a new collection holds nothing removed
        return self._converge(listing.upto, expected)

    # -- answering ----------------------------------------------------------------------------
    def _search(self, queries: np.ndarray, limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(Euclidean distances, ids) of the top ``limit`` for each query row."""
        assert self._plan is not None
        out = []
        for start in range(0, len(queries), _QUERY_BATCH):
            chunk = queries[start : start + _QUERY_BATCH]
            for attempt in range(20):
                try:
                    found = self._client.search(
                        self.target.collection, data=chunk, limit=limit, anns_field=_VECTOR,
                        search_params=self._plan.search_params(limit), output_fields=[_ID],
                        consistency_level="Strong",
                    )  # fmt: skip
                    break
                except Exception as exc:
                    # Another process is replacing the index (release, rebuild, load): wait.
                    if "load" not in str(exc).lower() or attempt == 19:
                        raise VectorIndexError(f"Milvus search failed: {exc}") from exc
                    time.sleep(0.5)
                    self._client.load_collection(self.target.collection)
            for hits in found:
                squared = np.fromiter((h["distance"] for h in hits), np.float64, len(hits))
                ids = np.fromiter((h["id"] for h in hits), np.int64, len(hits))
                out.append((np.sqrt(np.maximum(squared, 0)).astype(np.float32), ids))
        return out

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest (Euclidean distances, ids) per query row (at most 16 384), after
        catching up; rows with fewer hits are padded with ``inf`` and id -1."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        with self._lock:
            self.catch_up()
            rows = self._search(queries, min(k, MAX_TOPK)) if k > 0 and len(queries) else []
        width = max((len(ids) for _, ids in rows), default=0) or max(k, 0)
        distances = np.full((len(queries), width), np.inf, np.float32)
        found = np.full((len(queries), width), -1, np.int64)
        for row, (d, ids) in enumerate(rows):
            distances[row, : len(d)], found[row, : len(ids)] = d, ids
        return distances, found

    def within(self, queries: np.ndarray, radius: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every (Euclidean distances, ids) closer than ``radius`` per query row.

        A top-k search whose k grows until a row's farthest hit is out of range (as FAISS's
        range search, the bound is strict); rather than Milvus's range search, whose ``limit``
        and bounds differ between Milvus versions.
        """
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        out: list[tuple[np.ndarray, np.ndarray]] = [
            (np.empty(0, np.float32), np.empty(0, np.int64)) for _ in queries
        ]
        with self._lock:
            self.catch_up()
            pending, limit = list(range(len(queries))), 64
            while pending:
                rows = self._search(queries[pending], limit)
                again = []
                for row, (d, ids) in zip(pending, rows, strict=True):
                    near = d.astype(np.float64) ** 2 < float(radius) ** 2
                    out[row] = (d[near], ids[near])
                    if len(ids) == limit and near.all() and limit < MAX_TOPK:
                        again.append(row)
                    elif len(ids) == MAX_TOPK and near.all():
                        log.warning("within(%s) stopped at %d faces", radius, MAX_TOPK)
                pending, limit = again, min(limit * 8, MAX_TOPK)
        return out

    def count(self) -> int:
        """Faces held, after catching up."""
        with self._lock:
            self.catch_up()
            return self._count()

    def _count(self) -> int:
        rows = self._client.query(
            self.target.collection, filter="", output_fields=["count(*)"],
            consistency_level="Strong",
        )  # fmt: skip
        return int(rows[0]["count(*)"]) if rows else 0

    def ids(self) -> np.ndarray:
        """Every face id held, sorted, after catching up (for checks and tests)."""
        with self._lock:
            self.catch_up()
            iterator = self._client.query_iterator(
                self.target.collection, batch_size=4096, filter="", output_fields=[_ID],
                consistency_level="Strong",
            )  # fmt: skip
            found: list[int] = []
            try:
                while batch := iterator.next():
                    found += [int(r[_ID]) for r in batch]
            finally:
                iterator.close()
        return np.sort(np.asarray(found, np.int64))

    # -- writing ------------------------------------------------------------------------------
    def persist(self, force: bool = False) -> bool:
        """Catch up; re-index when ``auto`` outgrew the structure; after removals (or when
        ``force``) flush and request a compaction, so deleted vectors leave the segments
        where the server supports it (milvus-lite accepts the call and does nothing)."""
        with self._lock:
            self.catch_up()
            assert self._plan is not None
            written = False
            if self.target.index == "auto":
                want = milvus_plan(self._count(), "auto", self.target.exact_max)
                if self._outgrown(want):
                    with self._feed.applier_lock(self.mark_name):
                        self._reindex_structure(want)
                    written = True
            if force or self._removed_since_persist:
                self._client.flush(self.target.collection)
                if not self.target.embedded:
                    self._client.compact(self.target.collection)
                self._removed_since_persist = False
                written = True
            return written

    def _outgrown(self, want: MilvusPlan) -> bool:
        assert self._plan is not None
        have = self._plan
        if want.index_type != have.index_type:
            return want.index_type != "FLAT" or self._count() < self.target.exact_max // 2
        if have.index_type != "IVF_FLAT":
            return False
        nlist, wanted = int(have.build.get("nlist", 0)), int(want.build["nlist"])
        return not nlist // 4 <= wanted <= nlist * 4

    def rebuild(self, on_progress: OnProgress | None = None) -> None:
        """Drop and recreate the collection from the catalog (``reindex``), telling
        ``on_progress`` the faces written so far (see :meth:`IndexStore.rebuild`)."""
        with self._lock:
            self._connect()
            with self._feed.applier_lock(self.mark_name):
                self._rebuild_locked(on_progress)

    def describe(self) -> dict[str, Any]:
        """Backend, index type, collection, size and the log seq applied."""
        with self._lock:
            mark = self.catch_up()
            assert self._plan is not None
            return {
                "backend": self.backend,
                "structure": self._plan.describe(),
                "index_type": self._plan.index_type,
                "collection": self.target.collection,
                "uri": self.target.shown(),
                "embedded": self.target.embedded,
                "faces": self._count(),
                "applied_seq": mark,
                "compaction": "not supported by milvus-lite (deleted vectors stay in its "
                "segment files until its own size-tiered compaction)"
                if self.target.embedded else "requested after removals",
            }  # fmt: skip

    def close(self) -> None:
        """Release the connection (milvus-lite's in-process server stays until exit)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None
            self._plan = None
