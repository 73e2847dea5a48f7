"""The comparison behind the default tier at 10^6 (BENCHMARKS.md, "Scale"): IVF-Flat against
IVF-HNSW over 4-bit PQ fast-scan codes (m = 32 and 64) re-ranked exactly from the float vectors,
on the same k-means centroids and queries, one thread per query, one run.

    PYTHONPATH=src .venv/bin/python bench/bench_ivf_choice.py 1e6 4096
"""

from __future__ import annotations

import sys
import time

import bench_search as bs
import faiss
import numpy as np


def main() -> None:
    """Build the three indexes over n vectors and time nprobe x re-rank depth."""
    faiss.omp_set_num_threads(2)
    n, nlist = int(float(sys.argv[1])), int(sys.argv[2])
    data = bs.load_dataset(n, 0)
    x = data.vectors[:n]
    queries = bs.make_queries(data, n, 500, 0)
    truth = bs.exact_neighbours(x, queries, 10)
    started = time.time()
    km = faiss.Kmeans(128, nlist, niter=12, seed=1, max_points_per_centroid=64)
    rng = np.random.default_rng(0)
    sample = x[rng.choice(n, min(n, 64 * nlist), replace=False)]
    km.train(sample)
    print(f"kmeans {time.time() - started:.1f}s", flush=True)
    for spec in ["flat", 32, 64]:
        quantizer = faiss.IndexHNSWFlat(128, 32)
        quantizer.add(km.centroids)
        quantizer.hnsw.efSearch = 64
        if spec == "flat":
            index = faiss.IndexIVFFlat(quantizer, 128, nlist)
        else:
            index = faiss.IndexIVFPQFastScan(quantizer, 128, nlist, spec, 4)
        started = time.time()
        index.train(sample[:200_000])
        index.add_with_ids(x, np.arange(n))
        size = len(faiss.serialize_index(index)) / n
        print(f"{spec}: train+add {time.time() - started:.1f}s bytes/face {size:.1f}", flush=True)
        faiss.omp_set_num_threads(1)
        for nprobe in [16, 32, 64, 128]:
            index.nprobe = nprobe
            for depth in [10] if spec == "flat" else [40, 100]:
                times, found = [], []
                for q in queries[:20]:
                    index.search(q[None], depth)
                for q in queries:
                    t0 = time.perf_counter()
                    _, cand = index.search(q[None], depth)
                    t1 = time.perf_counter()
                    ids = cand[0][cand[0] >= 0]
                    if spec != "flat":  # the exact re-rank, from the float vectors
                        ids = ids[np.argsort(((x[ids] - q) ** 2).sum(1))[:10]]
                    times.append((t1 - t0, time.perf_counter() - t0))
                    found.append(np.pad(ids, (0, 10 - len(ids)), constant_values=-1))
                ms = np.array(times) * 1e3
                r10, _ = bs.recall(np.array(found), truth)
                print(f"  {spec} nprobe={nprobe} k'={depth}: faiss p50 {np.median(ms[:, 0]):.3f} "
                      f"total p50 {np.median(ms[:, 1]):.3f} p99 {np.percentile(ms[:, 1], 99):.3f} "
                      f"recall@10 {r10:.4f}", flush=True)  # fmt: skip
        faiss.omp_set_num_threads(2)


if __name__ == "__main__":
    main()
