"""milvus-lite at 10^5 faces: single-query latency and recall, against FAISS on the same vectors.

The collection is built as faceledger's Milvus backend builds it (``milvus_plan``: IVF_FLAT with
the FAISS backend's list counts above 5·10^4 faces, L2, Strong reads) on vectors from
bench_search's fitted generator; FAISS is ``FaissIndex.build`` on the same vectors. "Overhead a
call" is the p50 of a search on a one-vector collection: what a call costs before any vector is
compared (client, gRPC to the embedded server, consistency wait).

    PYTHONPATH=src .venv/bin/python bench/bench_milvus_lite.py --size 1e5 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import bench_search
import common
import numpy as np

from faceledger.index import FaissIndex
from faceledger.index.milvus_store import milvus_plan

K = 10


def _collection(client, name: str, vectors: np.ndarray, plan) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=128)
    params = client.prepare_index_params()
    params.add_index("vector", index_type=plan.index_type, metric_type="L2", params=plan.build)
    client.create_collection(name, schema=schema, index_params=params)
    for start in range(0, len(vectors), 5_000):
        rows = [{"id": start + i, "vector": v.tolist()}
                for i, v in enumerate(vectors[start : start + 5_000])]  # fmt: skip
        client.insert(name, rows)
    client.flush(name)
    client.load_collection(name)


def _timed(fn, queries) -> tuple[dict, np.ndarray]:
    for q in queries[:10]:
        fn(q)
    seconds, found = [], []
    for q in queries:
        started = time.perf_counter()
        found.append(fn(q))
        seconds.append(time.perf_counter() - started)
    return common.percentiles_ms(seconds), np.asarray(found)


def main() -> None:
    """Build both, time single queries ``--repeats`` times, print and write results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1e5")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from pymilvus import MilvusClient

    n = int(float(args.size))
    data = bench_search.load_dataset(n, 0)
    vectors = data.vectors[:n]
    queries = bench_search.make_queries(data, n, args.queries, 0)
    truth = bench_search.exact_neighbours(vectors, queries, K)
    plan = milvus_plan(n)
    report = {"benchmark": "milvus-lite", "machine": common.machine(), "size": n,
              "plan": plan.describe(), "rows": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        client = MilvusClient(str(Path(tmp) / "bench.db"))
        started = time.perf_counter()
        _collection(client, "faces", vectors, plan)
        report["milvus_build_s"] = time.perf_counter() - started
        _collection(client, "one", vectors[:1], milvus_plan(1))
        started = time.perf_counter()
        faiss = FaissIndex.build(np.arange(n, dtype=np.int64), vectors)
        report["faiss_build_s"] = time.perf_counter() - started
        search_params = plan.search_params(K)

        def milvus(q, name="faces"):
            hits = client.search(name, [q.tolist()], limit=K, search_params=search_params,
                                 consistency_level="Strong")[0]  # fmt: skip
            return [h["id"] for h in hits] + [-1] * (K - len(hits))

        runs = {
            "milvus-lite": milvus,
            "milvus-lite, one-vector collection (overhead a call)": lambda q: milvus(q, "one")[:1]
            + [-1] * (K - 1),
            f"FAISS {faiss.plan.describe()}": lambda q: faiss.search(q[None, :], K)[1][0],
        }
        for name, fn in runs.items():
            p50s = []
            for _ in range(args.repeats):
                stats, found = _timed(fn, queries)
                p50s.append(stats["p50_ms"])
            recall = bench_search.recall(found, truth)[0]
            report["rows"][name] = {"p50_ms": statistics.median(p50s), "p50_ms_runs": p50s,
                                    "p99_ms": stats["p99_ms"], "recall_at_10": recall}  # fmt: skip
            print(f"{name:<58} p50 {statistics.median(p50s):.3f} ms "
                  f"({min(p50s):.3f}-{max(p50s):.3f})  recall@10 {recall:.4f}", flush=True)
        client.close()
    builds = f"milvus-lite {report['milvus_build_s']:.0f} s, FAISS {report['faiss_build_s']:.0f} s"
    print(f"build: {builds}")
    common.write_results("milvus-lite", report)


if __name__ == "__main__":
    main()
