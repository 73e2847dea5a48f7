"""FAISS backend: exact (flat) search for small collections, IVF over 4-bit PQ codes re-ranked
by the float vectors beside them above a size threshold, and a compressed tier (the same IVF
with an HNSW coarse quantizer once the lists are many, re-ranked by 8-bit SQ codes) for
collections too large to keep every float vector in memory.

The compressed tier's own distances are approximate: :meth:`FaissIndex.search` and
:meth:`FaissIndex.within` order its candidates by their SQ8 codes and read the exact float
vectors of those that may be in the answer from an ``exact`` lookup (the store passes the
catalog's), so the distances returned are exact and the match threshold keeps its meaning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import faiss
import numpy as np

from faceledger.errors import VectorIndexError
from faceledger.index.rerank_codes import RerankCodes

__all__ = ["FaissIndex", "IndexPlan", "plan_for", "training_size", "DIM", "ExactLookup"]

DIM = 128
#: PQ sub-quantizers of the in-memory tier (its re-rank has every vector at hand).
MID_PQ_M = 64
#: Neighbours of a graph node in the HNSW coarse quantizer (used above FLAT_COARSE_MAX lists).
HNSW_M = 32
#: Up to this many lists the coarse quantizer is exact (flat): a single query compares itself
#: with every centroid in ~0.05-0.1 ms (about what an HNSW graph with efSearch 128 costs at 4096
#: lists), the probes are the true nearest lists, and assigning the vectors at build time is one
#: BLAS product instead of an HNSW search per vector (BENCHMARKS.md, "Scale").
FLAT_COARSE_MAX = 8192
#: Candidates fetched per query from the PQ codes for the exact re-rank (at least k): 100
#: gave recall@10 0.991 at 10^6 with nprobe 64, 40 gave 0.988 (BENCHMARKS.md, "Scale").
RERANK_MIN = 100
#: The compressed tier saved before its SQ8 codes existed re-ranks fewer: each of its candidates
#: is a primary-key read from the catalog (~0.03-0.25 ms apiece; BENCHMARKS.md, "Scale").
COMPRESSED_RERANK_MIN = 40
#: Candidates the SQ8 codes order on the compressed tier: in memory, so as many as in memory.
SQ8_RERANK_MIN = RERANK_MIN
#: Float32 rounding allowed for in the SQ8 error bounds.
_BOUND_SLACK = 1e-5
#: Builds below this many vectors train on one thread (see FaissIndex.build).
SMALL_BUILD = 200_000
#: First candidate count of a radius query on the compressed tier (grown while it fills up).
WITHIN_START = 256

#: Starts a serialised ``ivfpq+flat`` index: codes and vectors, two FAISS indexes.
_PAIR_MAGIC = b"FLPQ+FLAT1\n"
#: Starts a serialised ``ivfpq+sq8`` index: PQ codes (a FAISS index), then the SQ8 codes.
_SQ8_MAGIC = b"FLPQ+SQ8-1\n"

#: Exact vectors of some ids: ``lookup(ids) -> (ids found, their float32 vectors)``. Ids the
#: lookup does not return (e.g. moved out of this place since) are dropped from the answer.
ExactLookup = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class IndexPlan:
    """The index structure chosen for a collection size."""

    # flat | ivf | ivfpq+flat (PQ codes + float vectors in memory) | ivfpq+sq8 (PQ + SQ8 codes;
    # the compressed tier) | ivfpq (PQ codes only: the compressed tier saved before SQ8)
    kind: str
    nlist: int = 0
    nprobe: int = 0
    pq_m: int = 0  # ivfpq: PQ sub-quantizers (4 bits each, so pq_m / 2 bytes a face)
    hnsw_coarse: bool = False  # ivfpq: the coarse quantizer is an HNSW graph, not exact

    @property
    def compressed(self) -> bool:
        """Whether the index holds codes only, so its re-rank needs the vectors from outside."""
        return self.kind in ("ivfpq", "ivfpq+sq8")

    @property
    def reranked(self) -> bool:
        """Whether candidates come from PQ codes and are re-ranked by exact distances."""
        return self.kind in ("ivfpq", "ivfpq+flat", "ivfpq+sq8")

    def factory(self) -> str:
        """The FAISS index_factory string of this structure."""
        if self.kind == "flat":
            return "IDMap2,Flat"
        if self.kind == "ivf":
            return f"IVF{self.nlist},Flat"
        coarse = f"IVF{self.nlist}_HNSW{HNSW_M}" if self.hnsw_coarse else f"IVF{self.nlist}"
        return f"{coarse},PQ{self.pq_m}x4fs"  # ivfpq, ivfpq+flat and ivfpq+sq8

    def describe(self) -> str:
        """A short human description, e.g. ``IVF4096,Flat nprobe=24``."""
        if self.kind == "flat":
            return "Flat (exact)"
        rerank = {
            "ivfpq+flat": " + exact re-rank (in memory)",
            "ivfpq+sq8": " + SQ8 re-rank, exact top-k (catalog)",
            "ivfpq": " + exact re-rank (catalog)",
        }.get(self.kind, "")
        return f"{self.factory()} nprobe={self.nprobe}{rerank}"


def plan_for(n: int, exact_max: int, compressed_min: int | None = None) -> IndexPlan:
    """Exact search up to ``exact_max`` vectors; above, IVF with about 2·√n lists over 4-bit PQ
    codes whose candidates are re-ranked with the float vectors kept beside them; from
    ``compressed_min`` vectors (None: never), the compressed tier: the codes alone.

    IVF rather than HNSW over the faces: it supports removal (blocking, destruction) in place,
    and trains in minutes at 10^6 where HNSW takes half an hour on 2 cores. PQ fast-scan codes
    with an exact re-rank rather than IVF-Flat: scanning 4-bit codes with SIMD is several times
    faster than float distances, and the re-rank makes the distances returned exact (so the
    match threshold means the same as in exact search). ``IVF,Flat`` indexes saved before are
    still read and searched as they are.

    The compressed tier keeps 4-bit PQ codes (32 bytes a face at ``pq_m`` 64) and 8-bit SQ codes
    (128 bytes) instead of 512-byte float vectors, so 10^8 faces fit one machine; the SQ codes
    order its candidates, and the few they cannot place are re-ranked exactly.
    Above ``FLAT_COARSE_MAX`` lists (from about 3.4·10^7 faces on that tier) the coarse
    quantizer is an HNSW graph over the centroids, so that many lists cost little to probe;
    below, it is exact.
    """
    if compressed_min is not None and n >= compressed_min:
        return _compressed_plan(n)
    if n <= exact_max:
        return IndexPlan("flat")
    # About 2·√n lists (2048 at 10^6), probing 3/128 of them (at least 32): at 10^6 this gave
    # recall@10 0.992 at 0.35 ms, where 4096 lists needed 64 probes for 0.991 at 0.40 ms and
    # took 4.5x longer to build (BENCHMARKS.md, "Scale").
    nlist = 2 ** round(math.log2(2 * math.sqrt(n)))
    nlist = max(256, min(nlist, 65536))
    return IndexPlan("ivfpq+flat", nlist=nlist, nprobe=max(32, 3 * nlist // 128), pq_m=MID_PQ_M,
                     hnsw_coarse=nlist > FLAT_COARSE_MAX)  # fmt: skip


def training_size(plan: IndexPlan) -> int:
    """How many sampled vectors a build to ``plan`` trains on (0: it trains nothing)."""
    if plan.kind == "flat":
        return 0
    # IVF k-means: ~64 a list; 4-bit PQ codebooks ~39 a list; SQ8 ranges: 65,536.
    return max(65_536, 64 * plan.nlist)


def _compressed_plan(n: int) -> IndexPlan:
    """The compressed tier's parameters for n vectors (chosen in BENCHMARKS.md, "Scale")."""
    # About 2·√n lists (8192 at 10^7): k-means costs lists x sample, i.e. grows with nlist²,
    # and scanning 4-bit codes is cheap enough that longer lists cost little; at least ~39
    # training points a list, so a tiny collection (a test lowering the threshold) gets few.
    nlist = 2 ** round(math.log2(2 * math.sqrt(max(n, 1))))
    nlist = max(1, min(nlist, 65536, 2 ** int(math.log2(max(n // 39, 1)))))
    # 64 sub-quantizers (32 bytes a face): at 32, recall@10 after the re-rank stopped near
    # 0.97 at 10^6 whatever the probes (BENCHMARKS.md, "Scale").
    return IndexPlan("ivfpq+sq8", nlist=nlist, nprobe=min(nlist, 64), pq_m=64,
                     hnsw_coarse=nlist > FLAT_COARSE_MAX)  # fmt: skip


class FaissIndex:
    """A FAISS index addressed by face id (int64)."""

    def __init__(
        self, index: faiss.Index, plan: IndexPlan, vectors: faiss.Index | None = None,
        rerank: RerankCodes | None = None,
    ):  # fmt: skip
        """Wrap an existing FAISS index built to ``plan`` (``ivfpq+flat``: and ``vectors``, an
        ``IndexIDMap2`` over the same ids holding their float vectors for the re-rank;
        ``ivfpq+sq8``: and ``rerank``, the SQ8 codes of the same ids)."""
        self._index = index
        self.plan = plan
        if plan.kind == "ivfpq+flat" and vectors is None:
            vectors = faiss.IndexIDMap2(faiss.IndexFlatL2(DIM))
        if (plan.kind == "ivfpq+sq8") != (rerank is not None):
            raise VectorIndexError("the SQ8 re-rank codes do not match the index; run "
                                   "`faceledger reindex`")  # fmt: skip
        self._vectors = vectors
        self._rerank = rerank
        self._ids = self._read_ids()

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        exact_max: int = 50_000,
        compressed_min: int | None = None,
    ) -> FaissIndex:
        """A new index over these vectors, structured for their number."""
        plan = plan_for(len(ids), exact_max, compressed_min)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        slices = (  # in slices: vectors may be a memmap
            (ids[start : start + 1_000_000], vectors[start : start + 1_000_000])
            for start in range(0, len(ids), 1_000_000)
        )
        return cls.build_from(plan, len(ids), vectors, slices)

    @classmethod
    def build_from(
        cls, plan: IndexPlan, count: int, sample: np.ndarray,
        batches: Iterable[tuple[np.ndarray, np.ndarray]],
    ) -> FaissIndex:  # fmt: skip
        """A new index built to ``plan`` for ``count`` faces: trained on ``sample`` (vectors
        drawn from them; a random subset of :func:`training_size` rows is used), then filled
        from ``batches`` of (ids not repeated, vectors), so no more than a batch of float
        vectors is ever in memory beside the index."""
        if plan.reranked and count < SMALL_BUILD:
            # Training a PQ runs thousands of tiny OpenMP regions; on a busy machine their
            # synchronisation dominates (31 s on 2 threads against 6 s on one, 6,000 faces).
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                return cls._build(plan, sample, batches)
            finally:
                faiss.omp_set_num_threads(threads)
        return cls._build(plan, sample, batches)

    @classmethod
    def _build(
        cls, plan: IndexPlan, sample: np.ndarray, batches: Iterable[tuple[np.ndarray, np.ndarray]]
    ) -> FaissIndex:
        if plan.kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatL2(DIM))
        elif plan.kind == "ivf":
            quantizer = faiss.IndexFlatL2(DIM)
            index = faiss.IndexIVFFlat(quantizer, DIM, plan.nlist, faiss.METRIC_L2)
            # k-means on a sample of ~64 points a list: enough for stable centroids, fast.
            index.train(_sample(sample, 64 * plan.nlist))
            index.nprobe = plan.nprobe
        else:  # ivfpq, ivfpq+flat, ivfpq+sq8
            index = _train_compressed(plan, sample)
        rerank = None
        if plan.kind == "ivfpq+sq8":  # per-dimension ranges: a sample shows them
            rerank = RerankCodes.trained(_sample(sample, 65_536))
        built = cls(index, plan, rerank=rerank)
        for ids, vectors in batches:
            # New ids: no earlier copies to remove (that would scan every list per slice).
            built._append(np.ascontiguousarray(ids, dtype=np.int64), vectors)
        return built

    @classmethod
    def empty(cls) -> FaissIndex:
        """An empty exact index."""
        return cls.build(np.empty(0, np.int64), np.empty((0, DIM), np.float32))

    # -- VectorIndex -----------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of vectors held."""
        # The id array, not ``ntotal``: a SWIG attribute read costs ~9 µs, several per search.
        return len(self._ids)

    def ids(self) -> np.ndarray:
        """Every id held, sorted."""
        return np.sort(self._ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under the given ids (ids already held are replaced)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) and len(self._ids):
            self.remove(ids)
        self._append(ids, vectors)

    def _append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under ids this index does not hold."""
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._index.add_with_ids(vectors, ids)
        if self._vectors is not None:
            self._vectors.add_with_ids(vectors, ids)
        if self._rerank is not None:
            self._rerank.add(ids, vectors)
        self._ids = np.concatenate([self._ids, ids])

    def remove(self, ids: np.ndarray) -> int:
        """Remove these ids; returns how many were held."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0 or len(self._ids) == 0:
            return 0
        removed = int(self._index.remove_ids(ids))
        if removed:
            if self._vectors is not None:
                self._vectors.remove_ids(ids)
            if self._rerank is not None:
                self._rerank.remove(ids)
            self._ids = self._ids[~np.isin(self._ids, ids)]
        return removed

    def search(
        self, queries: np.ndarray, k: int, exact: ExactLookup | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest ids and Euclidean distances for each query row.

        On the compressed tier, ``exact`` (required there) gives the float vectors of the
        candidates, which are re-ranked by their exact distances.
        """
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        held = len(self._ids)
        if held == 0 or k <= 0:
            return _no_neighbours(len(queries), max(k, 0))
        k = min(k, held)
        # OpenMP threads are a process-wide setting, chosen once by the process (see
        # faceledger.index.set_search_threads), never toggled per call: another thread may be
        # searching at the same time.
        if not self.plan.reranked:
            squared, ids = self._index.search(queries, k)
            return np.sqrt(np.maximum(squared, 0)), ids
        lookup = self._lookup(exact)
        depth = {"ivfpq": COMPRESSED_RERANK_MIN, "ivfpq+sq8": SQ8_RERANK_MIN}.get(
            self.plan.kind, RERANK_MIN
        )
        _, candidates = self._index.search(queries, min(max(k, depth), held))
        distances, ids = _no_neighbours(len(queries), k)
        for row in range(len(queries)):
            query, chosen = queries[row], candidates[row]
            if self._rerank is not None:
                chosen = self._may_be_nearest(query, chosen, k)
            d, i = _exact_order(query, chosen, lookup)
            found = min(k, len(i))
            distances[row, :found], ids[row, :found] = d[:found], i[:found]
        return distances, ids

    def within(
        self, queries: np.ndarray, radius: float, exact: ExactLookup | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query row, every (Euclidean distances, ids) no farther than ``radius``.

        On the compressed tier (``exact`` required there) the nearest candidates are re-ranked
        exactly (those the SQ8 codes show may be within it), and their number grows until fewer
        than half of them are within the radius.
        """
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(self) == 0:
            return [(np.empty(0, np.float32), np.empty(0, np.int64)) for _ in queries]
        if self.plan.reranked:
            lookup = self._lookup(exact)
            return [self._within_compressed(q, float(radius), lookup) for q in queries]
        # FAISS's L2 range is on squared distances.
        limits, squared, ids = self._index.range_search(queries, float(radius) ** 2)
        return [
            (np.sqrt(np.maximum(squared[a:b], 0)), ids[a:b].astype(np.int64))
            for a, b in zip(limits[:-1], limits[1:], strict=True)
        ]

    def _lookup(self, exact: ExactLookup | None) -> ExactLookup:
        """The exact vectors of the re-rank: in memory, or (compressed tier) ``exact``'s."""
        if self._vectors is not None:
            return self._in_memory
        if exact is None:
            raise VectorIndexError(
                "the compressed index needs the exact vectors to re-rank; search it through "
                "its store"
            )
        return exact

    def _in_memory(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self._vectors is not None
        return ids, self._vectors.reconstruct_batch(ids)

    def _may_be_nearest(self, query: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
        """The candidates that may be among the k exactly nearest of them, by their SQ8
        distances and error bounds: a candidate whose lower bound exceeds the k-th smallest
        upper bound cannot be (k others are surely nearer), so only the rest are read."""
        assert self._rerank is not None
        ids, approx, error = self._rerank.approximate(query, candidates[candidates >= 0])
        if len(ids) <= k:
            return ids
        cutoff = np.partition(approx + error, k - 1)[k - 1]
        return ids[approx - error <= cutoff + _BOUND_SLACK]

    def _within_compressed(
        self, query: np.ndarray, radius: float, lookup: ExactLookup
    ) -> tuple[np.ndarray, np.ndarray]:
        """A radius query on the compressed tier: exact re-rank of a growing candidate set."""
        k = WITHIN_START
        while True:
            k = min(k, len(self))
            _, candidates = self._index.search(query[None, :], k)
            chosen = candidates[0]
            near = None
            if self._rerank is not None:  # read only those the SQ8 bounds may put inside
                ids, approx, error = self._rerank.approximate(query, chosen[chosen >= 0])
                chosen = ids[approx - error <= radius + _BOUND_SLACK]
                near = int((approx <= radius).sum())
            d, i = _exact_order(query, chosen, lookup)
            inside = d <= radius
            # Most candidates inside: the radius may hold more than were fetched.
            if (near if near is not None else int(inside.sum())) * 2 < k or k >= len(self):
                return d[inside], i[inside]
            k *= 4

    # -- persistence -----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The index serialised by FAISS (``ivfpq+flat``: codes, then vectors, each framed;
        ``ivfpq+sq8``: PQ codes, then SQ8 codes)."""
        return b"".join(self.to_parts())

    def to_parts(self) -> list[bytes | memoryview]:
        """:meth:`to_bytes` as buffers to write one after another (the SQ8 codes as views of
        the arrays in memory, not copies)."""
        codes = _serialized(self._index)
        size = sum(len(chunk) for chunk in codes).to_bytes(8, "little")
        if self._rerank is not None:
            return [_SQ8_MAGIC, size, *codes, *self._rerank.to_parts()]
        if self._vectors is None:
            return codes
        return [_PAIR_MAGIC, size, *codes, *_serialized(self._vectors)]

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> FaissIndex:
        """An index from :meth:`to_bytes` output (bytes, or a view of a mapped file)."""
        vectors = rerank = None
        data = memoryview(data)
        try:
            for magic in (_PAIR_MAGIC, _SQ8_MAGIC):
                if bytes(data[: len(magic)]) == magic:
                    start = len(magic) + 8
                    end = start + int.from_bytes(data[len(magic) : start], "little")
                    rest, data = data[end:], data[start:end]
                    if magic == _SQ8_MAGIC:
                        rerank = RerankCodes.from_bytes(rest)
                    else:
                        vectors = faiss.deserialize_index(np.frombuffer(rest, dtype=np.uint8))
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except (RuntimeError, ValueError) as exc:
            raise VectorIndexError(
                f"cannot read the vector index ({exc}); run `faceledger reindex`"
            ) from exc
        plan = _plan_of(index)
        if vectors is not None or rerank is not None:
            kind = "ivfpq+flat" if vectors is not None else "ivfpq+sq8"
            plan = IndexPlan(kind, plan.nlist, plan.nprobe, plan.pq_m, plan.hnsw_coarse)
            held = vectors.ntotal if vectors is not None else len(rerank)
            if held != index.ntotal:
                raise VectorIndexError("the vector index is inconsistent; run `faceledger reindex`")
        return cls(index, plan, vectors, rerank)

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


def _serialized(index: faiss.Index) -> list[bytes]:
    """A FAISS index's serialisation as the chunks FAISS writes (``serialize_index`` would
    hold it twice at once: its C++ buffer and the numpy copy)."""
    chunks: list[bytes] = []
    faiss.write_index(index, faiss.PyCallbackIOWriter(chunks.append))
    return chunks


def _plan_of(index: faiss.Index) -> IndexPlan:
    """The plan a deserialised index was built to."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        return IndexPlan("flat")
    ivf = faiss.downcast_index(ivf)
    if isinstance(ivf, faiss.IndexIVFPQFastScan):
        hnsw = isinstance(faiss.downcast_index(ivf.quantizer), faiss.IndexHNSW)
        return IndexPlan("ivfpq", ivf.nlist, ivf.nprobe, pq_m=int(ivf.M), hnsw_coarse=hnsw)
    return IndexPlan("ivf", ivf.nlist, ivf.nprobe)


def _train_compressed(plan: IndexPlan, vectors: np.ndarray) -> faiss.Index:
    """An empty compressed-tier index, its centroids and PQ codebooks trained on a sample."""
    index = faiss.index_factory(DIM, plan.factory(), faiss.METRIC_L2)
    ivf = faiss.extract_index_ivf(index)
    # k-means on ~32 points a list and 10 iterations: the training cost grows with
    # lists x sample (quadratic in nlist), and the re-rank absorbs slightly rougher centroids.
    ivf.cp.niter = 10
    ivf.cp.max_points_per_centroid = 32
    # 4-bit codebooks want ~39 points a centroid (16 per sub-quantizer); k-means wants one a
    # list (it subsamples to 32 a list itself). A collection smaller than that trains on
    # jittered copies of itself: only the codebooks see them, and the exact re-rank keeps the
    # answers exact.
    need = max(16 * 39, plan.nlist * 39)
    sample = _sample(vectors, max(need, 65_536))
    if 0 < len(sample) < need:
        rng = np.random.default_rng(0)
        picks = sample[rng.integers(0, len(sample), need)]
        sample = (picks + rng.normal(0, 0.02, picks.shape)).astype(np.float32)
    index.train(sample)
    ivf.nprobe = plan.nprobe
    quantizer = faiss.downcast_index(ivf.quantizer)
    if isinstance(quantizer, faiss.IndexHNSW):
        quantizer.hnsw.efSearch = max(64, 2 * plan.nprobe)
    return index


def _exact_order(
    query: np.ndarray, candidates: np.ndarray, lookup: ExactLookup
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates' exact Euclidean distances to ``query`` and their ids, nearest first."""
    candidates = candidates[candidates >= 0]
    ids, vectors = lookup(candidates)
    if len(ids) == 0:
        return np.empty(0, np.float32), np.empty(0, np.int64)
    diff = np.asarray(vectors, np.float32) - query
    distances = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    order = np.argsort(distances, kind="stable")
    return distances[order], np.asarray(ids, np.int64)[order]


def _no_neighbours(rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((rows, k), np.inf, np.float32), np.full((rows, k), -1, np.int64)


def _sample(vectors: np.ndarray, n: int) -> np.ndarray:
    if len(vectors) <= n:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(0)
    return np.ascontiguousarray(vectors[rng.choice(len(vectors), n, replace=False)], np.float32)
