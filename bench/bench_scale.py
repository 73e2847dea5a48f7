"""Search at scale: the FAISS compressed tier at 10^6-10^7 faces, against numpy brute force.

The compressed tier (``IVF{nlist},PQ{m}x4fs``, its candidates ordered by SQ8 codes and the
possible top k re-ranked exactly) is built through ``FaissIndex.build`` on vectors from
bench_search's generator fitted to real dlib vectors, written chunk by chunk into a memmap under
bench/cache/ (10^7 x 128 float32 is 5.1 GB: never held in memory twice). The index is built once
and cached (a PQ-only index cached before the SQ8 codes existed gets them added). Each (tier,
nprobe, re-rank depth) is timed over single queries, ``--repeats`` times, as FaissIndex.search
answers them with an exact lookup into the memmap, and the exact vectors each query read are
counted: ``--tiers sq8`` is the SQ8-ordered tier, ``pq`` the codes-only one that re-ranks every
candidate from the lookup. In the product the lookup is the catalog: ``--catalog-lookup`` times
that part on a SQLite catalog apart. Recall@10 is against exact search (faiss.knn over the memmap,
chunked). Peers in the same run: numpy brute force (``|x|² − 2x·q``) and face_recognition's
``face_distance`` formula (``np.linalg.norm(known − probe, axis=1)``, chunked by 10^6 rows so
its temporary stays ~0.5 GB).

    .venv/bin/python bench/bench_scale.py --size 1e6 --nprobe 32,64 --rerank 64,128
    nice -n 10 .venv/bin/python bench/bench_scale.py --size 1e7 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import time
from pathlib import Path

import bench_search
import common
import faiss
import numpy as np

from faceledger.index import faiss_index
from faceledger.index.faiss_index import FaissIndex, IndexPlan, plan_for
from faceledger.index.rerank_codes import RerankCodes

DIM = 128
K = 10


# -- data ------------------------------------------------------------------------------------------
def dataset(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(memmap of n vectors: real indexed faces then synthetic people, queries, cache key)."""
    real = common.real_face_vectors()
    held = np.arange(len(real)) % 5 == 4  # as bench_search: every 5th real face is a query
    real_indexed, real_queries = real[~held], real[held]
    model = bench_search.fit_face_model(real_indexed)
    key = f"{model.key}-s{seed}-n{n}"
    path = common.CACHE / f"scale-{key}.f32"
    held_path = common.CACHE / f"scale-heldout-{key}.npy"
    per_chunk = bench_search.COPIES * bench_search.CHUNK_PERSONS
    chunks = math.ceil((n - len(real_indexed)) / per_chunk)
    if not (path.exists() and held_path.exists()):
        common.CACHE.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        out = np.memmap(path.with_suffix(".part"), np.float32, "w+", shape=(n, DIM))
        out[: len(real_indexed)] = real_indexed
        heldout = []
        row = len(real_indexed)
        for c in range(chunks):  # chunk c is the same as in bench_search's cache
            copies, held_copy = bench_search.synthetic_chunk(model, c, seed)
            take = min(len(copies), n - row)
            out[row : row + take] = copies[:take]
            heldout.append(held_copy[: take // bench_search.COPIES])
            row += take
        out.flush()
        del out
        np.save(held_path, np.concatenate(heldout).astype(np.float32))
        path.with_suffix(".part").rename(path)
        print(f"generated {n:,} vectors in {time.perf_counter() - started:.0f} s")
    vectors = np.memmap(path, np.float32, "r", shape=(n, DIM))
    heldout = np.load(held_path)
    return vectors, np.concatenate([heldout, real_queries]), key


def pick_queries(heldout_and_real: np.ndarray, count: int, n_real_queries: int, seed: int):
    """``count`` held-out synthetic copies (a new photo of someone indexed) + the real ones."""
    synth, real = heldout_and_real[:-n_real_queries], heldout_and_real[-n_real_queries:]
    rng = np.random.default_rng([seed, 11])
    picks = np.sort(rng.choice(len(synth), min(count, len(synth)), replace=False))
    return np.ascontiguousarray(np.concatenate([synth[picks], real]), np.float32)


def exact_truth(vectors: np.ndarray, queries: np.ndarray, k: int, path: Path) -> np.ndarray:
    """The exact k nearest rows of every query: faiss.knn over 10^6-row slices, merged."""
    if path.exists():
        return np.load(path)
    best_d = np.full((len(queries), k), np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    for start in range(0, len(vectors), 1_000_000):
        part = np.ascontiguousarray(vectors[start : start + 1_000_000])
        d, i = faiss.knn(queries, part, k)
        all_d = np.concatenate([best_d, d], axis=1)
        all_i = np.concatenate([best_i, i + start], axis=1)
        order = np.argsort(all_d, axis=1, kind="stable")[:, :k]
        best_d = np.take_along_axis(all_d, order, 1)
        best_i = np.take_along_axis(all_i, order, 1)
    np.save(path, best_i)
    return best_i


# -- the index -------------------------------------------------------------------------------------
@contextlib.contextmanager
def forced_plan(plan: IndexPlan):
    """Make ``FaissIndex.build`` use ``plan`` (other lists or PQ sizes through the same code)."""
    original = faiss_index.plan_for
    faiss_index.plan_for = lambda n, exact_max, compressed_min=None: plan
    try:
        yield
    finally:
        faiss_index.plan_for = original


def built(vectors: np.ndarray, key: str, plan: IndexPlan, rebuild: bool) -> tuple[FaissIndex, dict]:
    """The compressed index over ``vectors`` built to ``plan``, or loaded from its cache."""
    path = common.CACHE / f"scale-index-{key}-{plan.factory().replace(',', '_')}.faiss"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists() and not rebuild:
        started = time.perf_counter()
        index = FaissIndex.from_bytes(path.read_bytes())
        meta = json.loads(meta_path.read_text()) | {"cached": True}
        if index.plan.kind == "ivfpq" and plan.kind == "ivfpq+sq8":
            index, meta["sq8"] = with_sq8_codes(index, vectors, path.with_suffix(".sq8"))
        return index, meta | {"load_s": time.perf_counter() - started}
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with forced_plan(plan):
        index = FaissIndex.build(np.arange(len(vectors), dtype=np.int64), vectors,
                                 compressed_min=1)  # fmt: skip
    build_s = time.perf_counter() - started
    blob = index.to_bytes()
    path.write_bytes(blob)
    meta = {
        "build_s": build_s,
        "bytes": len(blob),
        "bytes_per_face": len(blob) / len(vectors),
        "plan": index.plan.describe(),
        "build_load_average": [load, os.getloadavg()[0]],
    }
    meta_path.write_text(json.dumps(meta))
    print(f"built {index.plan.describe()} over {len(vectors):,} in {build_s:.0f} s")
    return index, meta | {"cached": False}


def with_sq8_codes(index: FaissIndex, vectors: np.ndarray, path: Path) -> tuple[FaissIndex, dict]:
    """A PQ-only index cached before SQ8 with the SQ8 codes of ``vectors`` (row i is id i)
    added, as FaissIndex.build would add them; the codes are cached at ``path``."""
    started = time.perf_counter()
    if path.exists():
        codes = RerankCodes.from_bytes(path.read_bytes())
    else:
        codes = RerankCodes.trained(faiss_index._sample(vectors, 65_536))
        for start in range(0, len(vectors), 1_000_000):
            part = np.asarray(vectors[start : start + 1_000_000])
            codes.add(np.arange(start, start + len(part), dtype=np.int64), part)
        path.write_bytes(codes.to_bytes())
    old = index.plan
    plan = IndexPlan("ivfpq+sq8", old.nlist, old.nprobe, old.pq_m, old.hnsw_coarse)
    meta = {"seconds": time.perf_counter() - started, "bytes": path.stat().st_size,
            "bytes_per_face": path.stat().st_size / len(vectors)}  # fmt: skip
    return FaissIndex(index._index, plan, rerank=codes), meta


def memmap_lookup(vectors: np.ndarray, reads: list[int] | None = None):
    """The exact-vector lookup of the re-rank, here rows of the memmap (row i is id i); the
    number of vectors each call reads is appended to ``reads``."""

    def lookup(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if reads is not None:
            reads.append(len(ids))
        ids = np.sort(ids)
        return ids, vectors[ids]

    return lookup


def catalog_lookup_ms(rows: int, depth: int, repeats: int) -> dict:
    """p50 of CatalogFeed.vectors(place, ids) for ``depth`` random ids, on a SQLite catalog of
    ``rows`` faces (the re-rank's fetch in the product)."""
    import tempfile

    from sqlalchemy import insert

    from faceledger.catalog import Catalog
    from faceledger.catalog import schema as t
    from faceledger.catalog.placement import CatalogFeed
    from faceledger.clock import utcnow

    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(f"sqlite:///{tmp}/catalog.sqlite")
        catalog.create()
        now = utcnow()
        rng = np.random.default_rng(0)
        with catalog.engine.begin() as conn:
            conn.execute(insert(t.photos), [
                {"id": 1, "sha256": "0" * 64, "md5": "0" * 32, "sha1": "0" * 40, "byte_size": 1,
                 "width": 1, "height": 1, "format": "JPEG", "added_at": now}])  # fmt: skip
            for start in range(0, rows, 50_000):
                conn.execute(insert(t.faces), [
                    {"id": i + 1, "photo_id": 1, "ordinal": i, "box_top": 0, "box_right": 1,
                     "box_bottom": 1, "box_left": 0, "landmarks": [], "detector": "hog",
                     "det_score": 1.0, "model": "bench", "model_version": "bench",
                     "vector": rng.standard_normal(DIM).astype("<f4").tobytes(),
                     "vector_collected_at": now, "last_interaction_at": now, "blocked": False}
                    for i in range(start, min(rows, start + 50_000))])  # fmt: skip
        feed = CatalogFeed(catalog)
        seconds = []
        for _ in range(repeats):
            ids = rng.choice(rows, depth, replace=False) + 1
            started = time.perf_counter()
            got, _ = feed.vectors("searchable", ids)
            seconds.append(time.perf_counter() - started)
            assert len(got) == depth
        catalog.engine.dispose()
    return common.percentiles_ms(seconds)


def server_lookup_ms(url: str, depths: list[int], draws: int, seed: int) -> dict:
    """CatalogFeed.vectors on an existing catalog at ``url`` (e.g. bench_policy.py's 10^7-face
    PostgreSQL catalog): for each depth, ``draws`` sets of random searchable face ids read
    once (``cold``: pages most likely never read since the server started) and then the same
    sets again (``warm``: their pages now cached)."""
    from sqlalchemy import func, select

    from faceledger.catalog import Catalog
    from faceledger.catalog import schema as t
    from faceledger.catalog.placement import CatalogFeed

    catalog = Catalog(url)
    with catalog.engine.connect() as conn:
        top = int(conn.scalar(select(func.max(t.faces.c.id))))
    feed = CatalogFeed(catalog)
    rng = np.random.default_rng([seed, 12])
    out = {}
    for depth in depths:
        sets = [rng.integers(1, top + 1, depth) for _ in range(draws)]
        row = {}
        for turn in ("cold", "warm"):
            seconds = []
            for ids in sets:
                started = time.perf_counter()
                feed.vectors("searchable", ids)
                seconds.append(time.perf_counter() - started)
            row[turn] = common.percentiles_ms(seconds)
        out[depth] = row
        print(f"  catalog read of {depth} ids: cold p50 {row['cold']['p50_ms']:.2f} ms "
              f"(p99 {row['cold']['p99_ms']:.2f}), warm p50 {row['warm']['p50_ms']:.2f} ms "
              f"(p99 {row['warm']['p99_ms']:.2f})", flush=True)  # fmt: skip
    catalog.engine.dispose()
    return out


# -- driver ----------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict:
    """Build (or load) the index, then time every (nprobe, re-rank) and the peers."""
    if args.catalog_url:  # the catalog's part alone
        depths = [int(d) for d in args.catalog_ids.split(",")]
        return {"benchmark": "scale-catalog-read", "machine": common.machine(),
                "args": vars(args), "load_average": os.getloadavg(),
                "catalog_read": server_lookup_ms(args.catalog_url, depths, 200, args.seed)}
    n = int(float(args.size))
    faiss.omp_set_num_threads(args.build_threads)
    vectors, held, key = dataset(n, args.seed)
    n_real_queries = len(common.real_face_vectors()) // 5
    queries = pick_queries(held, args.queries, n_real_queries, args.seed)
    truth_path = common.CACHE / f"scale-truth-{key}-q{len(queries)}.npy"
    truth = exact_truth(vectors, queries, K, truth_path)
    default = plan_for(n, 50_000, compressed_min=1)
    nlist = args.nlist or default.nlist
    plan = IndexPlan("ivfpq+sq8", nlist=nlist, nprobe=default.nprobe,
                     pq_m=args.pq_m or default.pq_m,
                     hnsw_coarse=nlist > faiss_index.FLAT_COARSE_MAX)  # fmt: skip
    index, meta = built(vectors, key, plan, args.rebuild)
    report = {"benchmark": "scale", "machine": common.machine(), "args": vars(args), "size": n,
              "index": meta, "rows": [], "load_average": {"start": os.getloadavg()}}  # fmt: skip
    faiss.omp_set_num_threads(1)  # single queries: one thread, as the product searches
    reads: list[int] = []
    lookup = memmap_lookup(vectors, reads)
    ivf = faiss.extract_index_ivf(index._index)
    codes_only = FaissIndex(index._index, IndexPlan("ivfpq", index.plan.nlist, index.plan.nprobe,
                                                    index.plan.pq_m, index.plan.hnsw_coarse))
    tiers = {"sq8": (index, "SQ8_RERANK_MIN"), "pq": (codes_only, "COMPRESSED_RERANK_MIN")}
    original_depths = {name: getattr(faiss_index, name) for _, name in tiers.values()}
    for nprobe in [int(p) for p in args.nprobe.split(",")]:
        ivf.nprobe = nprobe
        quantizer = faiss.downcast_index(ivf.quantizer)
        if isinstance(quantizer, faiss.IndexHNSW):
            quantizer.hnsw.efSearch = max(64, 2 * nprobe)
        for tier in args.tiers.split(","):
            searched, depth_name = tiers[tier]
            for depth in [int(r) for r in args.rerank.split(",")]:
                setattr(faiss_index, depth_name, depth)
                p50s, p99s, recalls = [], [], []
                reads.clear()
                for _ in range(args.repeats):
                    seconds, found = bench_search.time_single_queries(
                        lambda q, s=searched: s.search(q[None, :], K, lookup)[1][0], queries
                    )
                    stats = common.percentiles_ms(seconds)
                    p50s.append(stats["p50_ms"])
                    p99s.append(stats["p99_ms"])
                    recalls.append(bench_search.recall(found, truth)[0])
                row = {"index": searched.plan.describe(), "tier": tier, "nprobe": nprobe,
                       "rerank": depth, "p50_ms": statistics.median(p50s), "p50_ms_runs": p50s,
                       "p99_ms": statistics.median(p99s), "p99_ms_runs": p99s,
                       "recall_at_10": recalls[0], "exact_reads_mean": float(np.mean(reads)),
                       "exact_reads_p99": float(np.percentile(reads, 99)),
                       "load_average": os.getloadavg()[0]}  # fmt: skip
                report["rows"].append(row)
                print(f"  {tier:<3} nprobe={nprobe:<4} rerank={depth:<4} p50 {row['p50_ms']:.3f} "
                      f"ms ({min(p50s):.3f}-{max(p50s):.3f})  p99 {row['p99_ms']:.3f} ms  "
                      f"recall@10 {row['recall_at_10']:.4f}  exact reads "
                      f"{row['exact_reads_mean']:.1f} (p99 {row['exact_reads_p99']:.0f})",
                      flush=True)  # fmt: skip
    for name, depth in original_depths.items():
        setattr(faiss_index, name, depth)
    faiss.omp_set_num_threads(args.build_threads)
    report["peers"] = peers(vectors, queries, truth, args)
    if args.catalog_lookup:
        report["catalog_lookup"] = {
            depth: catalog_lookup_ms(args.catalog_lookup, depth, 200)
            for depth in [int(r) for r in args.rerank.split(",")]
        }
        print(f"  catalog lookup: {json.dumps(report['catalog_lookup'])}")
    report["load_average"]["end"] = os.getloadavg()
    return report


def peers(vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, args) -> dict:
    """numpy brute force and face_distance's formula on the same vectors, a few queries each."""
    out = {}
    sq_norms = np.empty(len(vectors), np.float32)
    for start in range(0, len(vectors), 1_000_000):
        part = np.asarray(vectors[start : start + 1_000_000])
        sq_norms[start : start + len(part)] = np.einsum("ij,ij->i", part, part)

    def brute(q: np.ndarray) -> np.ndarray:
        partial = sq_norms - 2 * (vectors @ q)
        top = np.argpartition(partial, K)[:K]
        return top[np.argsort(partial[top])]

    def face_distance(q: np.ndarray) -> np.ndarray:
        # face_recognition.face_distance(known, probe) = norm(known - probe, axis=1), per slice.
        d = np.concatenate([np.linalg.norm(vectors[s : s + 1_000_000] - q, axis=1)
                            for s in range(0, len(vectors), 1_000_000)])  # fmt: skip
        top = np.argpartition(d, K)[:K]
        return top[np.argsort(d[top])]

    for name, fn in (("numpy brute force", brute), ("face_distance formula", face_distance)):
        p50s = []
        for _ in range(args.repeats):
            seconds, found = bench_search.time_single_queries(
                fn, queries[: args.brute_queries], warmup=1
            )
            p50s.append(common.percentiles_ms(seconds)["p50_ms"])
        found_recall = bench_search.recall(found, truth[: len(found)])[0]
        out[name] = {"p50_ms": statistics.median(p50s), "p50_ms_runs": p50s,
                     "recall_at_10": found_recall}  # fmt: skip
        print(f"  {name:<24} p50 {out[name]['p50_ms']:.1f} ms ({min(p50s):.1f}-{max(p50s):.1f})")
    return out


def main() -> None:
    """Parse options, run, write bench/results/scale-*.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1e7")
    parser.add_argument("--nlist", type=int, default=0, help="0: plan_for's")
    parser.add_argument("--pq-m", type=int, default=0, help="PQ sub-quantizers; 0: plan_for's")
    parser.add_argument("--nprobe", default="32,64,128")
    parser.add_argument("--rerank", default="40,100", help="candidates re-ranked (sq8: ordered by "
                        "their SQ8 codes; pq: each read exactly)")
    parser.add_argument("--tiers", default="sq8,pq", help="sq8: the compressed tier; pq: its "
                        "codes alone, re-ranked from the exact lookup (as saved before SQ8)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--brute-queries", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--catalog-lookup", type=int, default=0,
                        help="also time CatalogFeed.vectors on a SQLite catalog of this many faces")
    parser.add_argument("--catalog-url", default="",
                        help="only time the re-rank's catalog read on this existing catalog")
    parser.add_argument("--catalog-ids", default="12,40,100",
                        help="ids a --catalog-url read asks for (the SQ8 tier reads ~12)")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    report = run(args)
    report["total_s"] = time.perf_counter() - started
    name = "scale-catalog-read" if args.catalog_url else f"scale-{int(float(args.size))}"
    path = common.write_results(name, report)
    print(f"total {report['total_s']:.0f} s; results in {path}")


if __name__ == "__main__":
    main()
