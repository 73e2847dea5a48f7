"""FAISS backend: exact (flat) search for small collections, IVF-Flat above a size threshold."""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

from faceledger.errors import VectorIndexError

__all__ = ["FaissIndex", "IndexPlan", "plan_for", "DIM"]

DIM = 128


@dataclass(frozen=True)
class IndexPlan:
    """The index structure chosen for a collection size."""

    kind: str  # flat | ivf
    nlist: int = 0
    nprobe: int = 0

    def describe(self) -> str:
        """A short human description, e.g. ``IVF4096,Flat nprobe=24``."""
        return (
            "Flat (exact)" if self.kind == "flat" else f"IVF{self.nlist},Flat nprobe={self.nprobe}"
        )


def plan_for(n: int, exact_max: int) -> IndexPlan:
    """Exact search up to ``exact_max`` vectors; above, IVF with about 4·√n lists.

    IVF-Flat rather than HNSW: it supports removal (blocking, destruction) in place, returns exact
    distances for the candidates it scans (so the match threshold means the same as in exact
    search), and trains in minutes at 10^6 where HNSW takes half an hour on 2 cores.
    """
    if n <= exact_max:
        return IndexPlan("flat")
    nlist = 2 ** round(math.log2(4 * math.sqrt(n)))
    nlist = max(256, min(nlist, 65536))
    # Probing 1/64 of the lists (at least 32) gave recall@10 >= 0.99 at 10^6 (BENCHMARKS.md).
    return IndexPlan("ivf", nlist=nlist, nprobe=max(32, nlist // 64))


class FaissIndex:
    """A FAISS index addressed by face id (int64)."""

    def __init__(self, index: faiss.Index, plan: IndexPlan):
        """Wrap an existing FAISS index built to ``plan``."""
        self._index = index
        self.plan = plan
        self._ids = self._read_ids()

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, exact_max: int = 50_000) -> FaissIndex:
        """A new index over these vectors, structured for their number."""
        plan = plan_for(len(ids), exact_max)
        if plan.kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatL2(DIM))
        else:
            quantizer = faiss.IndexFlatL2(DIM)
            index = faiss.IndexIVFFlat(quantizer, DIM, plan.nlist, faiss.METRIC_L2)
            # k-means on a sample of ~64 points a list: enough for stable centroids, fast.
            sample = _sample(vectors, 64 * plan.nlist)
            index.train(sample)
            index.nprobe = plan.nprobe
        built = cls(index, plan)
        built.add(ids, vectors)
        return built

    @classmethod
    def empty(cls) -> FaissIndex:
        """An empty exact index."""
        return cls.build(np.empty(0, np.int64), np.empty((0, DIM), np.float32))

    # -- VectorIndex -----------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of vectors held."""
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """Every id held, sorted."""
        return np.sort(self._ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under the given ids (ids already held are replaced)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        self.remove(ids)
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self._ids = np.concatenate([self._ids, ids])

    def remove(self, ids: np.ndarray) -> int:
        """Remove these ids; returns how many were held."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0 or len(self._ids) == 0:
            return 0
        removed = int(self._index.remove_ids(ids))
        if removed:
            self._ids = self._ids[~np.isin(self._ids, ids)]
        return removed

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest ids and Euclidean distances for each query row."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(self) == 0 or k <= 0:
            shape = (len(queries), max(k, 0))
            return np.full(shape, np.inf, np.float32), np.full(shape, -1, np.int64)
        # OpenMP threads are a process-wide setting, chosen once by the process (see
        # faceledger.index.set_search_threads), never toggled per call: another thread may be
        # searching at the same time.
        squared, ids = self._index.search(queries, min(k, len(self)))
        return np.sqrt(np.maximum(squared, 0)), ids

    def within(self, queries: np.ndarray, radius: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query row, every (Euclidean distances, ids) no farther than ``radius``."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(self) == 0:
            return [(np.empty(0, np.float32), np.empty(0, np.int64)) for _ in queries]
        # FAISS's L2 range is on squared distances.
        limits, squared, ids = self._index.range_search(queries, float(radius) ** 2)
        return [
            (np.sqrt(np.maximum(squared[a:b], 0)), ids[a:b].astype(np.int64))
            for a, b in zip(limits[:-1], limits[1:], strict=True)
        ]

    # -- persistence -----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The index serialised by FAISS."""
        return faiss.serialize_index(self._index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> FaissIndex:
        """An index from :meth:`to_bytes` output."""
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:
            raise VectorIndexError(
                f"cannot read the vector index ({exc}); run `faceledger reindex`"
            ) from exc
        ivf = faiss.try_extract_index_ivf(index)
        plan = IndexPlan("ivf", ivf.nlist, ivf.nprobe) if ivf is not None else IndexPlan("flat")
        return cls(index, plan)

    def _read_ids(self) -> np.ndarray:
        ivf = faiss.try_extract_index_ivf(self._index)
        if ivf is None:
            if self._index.ntotal == 0:
                return np.empty(0, np.int64)
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        lists = ivf.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(ivf.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)


def _sample(vectors: np.ndarray, n: int) -> np.ndarray:
    if len(vectors) <= n:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(0)
    return np.ascontiguousarray(vectors[rng.choice(len(vectors), n, replace=False)], np.float32)
