"""Search benchmark: faceledger's FaissIndex against numpy brute force, 10^4 … 10^6 faces.

Measures what a user's search costs: one probe vector at a time (p50/p99 latency), and how many of
the exact 10 nearest faces the index returns (recall@10 against exact search).

Vectors are real dlib face vectors of the shared photos plus synthetic people drawn to look like
them (same mean and covariance, ~10 noisy copies a person). Random vectors would make any ANN
index look broken (recall ~0.1–0.2), and evenly spread ones would make it look better than it is.
Queries are held-out noisy copies, i.e. a new photo of someone already indexed.

    .venv/bin/python bench/bench_search.py                       # 10^4, 10^5, 10^6
    .venv/bin/python bench/bench_search.py --sizes 1e4,1e5       # quick run
    .venv/bin/python bench/bench_search.py --sizes 1e6 --nlist default,1024,2048 --nprobe 8,16,32

Generated vectors and built indexes are cached under bench/cache/, so a rerun skips the build (its
first build time is kept and reported). Results go to bench/results/search-*.json.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import common
import faiss
import numpy as np

from faceledger.index import faiss_index
from faceledger.index.faiss_index import FaissIndex, IndexPlan, plan_for

DIM = 128
K = 10
COPIES = 10  # indexed photos per synthetic person; one more is generated and held out as a query
CHUNK_PERSONS = 10_000  # generation unit: fixed, so a smaller size is a prefix of a larger one
GEN_VERSION = 2  # bump when the generator changes, so stale caches are not reused
TARGET_P50_MS = 2.0
TARGET_RECALL = 0.99


# -- data ----------------------------------------------------------------------------------------
@dataclass
class FaceModel:
    """Gaussian fitted to real face vectors: where synthetic people's centres are drawn from."""

    mean: np.ndarray
    chol: np.ndarray  # Cholesky factor of the between-person covariance
    key: str


def fit_face_model(real: np.ndarray, copy_distance: float = 0.4) -> FaceModel:
    """Mean and covariance of real vectors, less the within-person part the noise will add back.

    Two copies whose per-dimension noise has std s are on average sqrt(2·128)·s apart, adding
    128·s² = d²/2 to the total variance; the centres get the rest, so synthetic vectors end up with
    the real vectors' norm and their distances between different people.
    """
    mean = real.mean(axis=0).astype(np.float64)
    cov = np.cov(real.astype(np.float64), rowvar=False)
    # ~100 real faces for 128 dimensions: the sample covariance is singular; shrink towards a
    # scaled identity (Ledoit-Wolf style, fixed weight) so every direction has some spread.
    shrink = 0.1
    cov = (1 - shrink) * cov + shrink * np.trace(cov) / DIM * np.eye(DIM)
    within = copy_distance**2 / 2
    scale = max(0.05, (np.trace(cov) - within) / np.trace(cov))
    chol = np.linalg.cholesky(cov * scale)
    key = hashlib.sha256(real.tobytes() + f"v{GEN_VERSION}/{copy_distance}".encode()).hexdigest()
    return FaceModel(mean, chol, key[:12])


def synthetic_chunk(model: FaceModel, chunk: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """CHUNK_PERSONS people: (their COPIES·people indexed vectors, one held-out copy each)."""
    rng = np.random.default_rng([seed, chunk])
    centres = model.mean + rng.standard_normal((CHUNK_PERSONS, DIM)) @ model.chol.T
    # Same-person distances of real dlib vectors spread over ~0.3–0.5: draw each person's own.
    apart = rng.uniform(0.3, 0.5, CHUNK_PERSONS)
    sigma = apart / math.sqrt(2 * DIM)
    noise = rng.standard_normal((CHUNK_PERSONS, COPIES + 1, DIM)) * sigma[:, None, None]
    copies = (centres[:, None, :] + noise).astype(np.float32)
    return copies[:, :COPIES].reshape(-1, DIM), copies[:, COPIES]


@dataclass
class Dataset:
    """Indexed vectors (row i has id i) and the held-out copies queries are drawn from."""

    vectors: np.ndarray  # real indexed faces first, then synthetic people, COPIES rows each
    heldout: np.ndarray  # one unseen copy per synthetic person
    real_queries: np.ndarray  # real faces left out of the index
    n_real: int
    key: str

    def persons_within(self, n: int) -> int:
        """Synthetic people all of whose copies are among the first n rows."""
        return max(0, (n - self.n_real) // COPIES)


def load_dataset(max_size: int, seed: int) -> Dataset:
    """Real vectors + enough synthetic people for ``max_size`` rows, from cache when possible."""
    real = common.real_face_vectors()
    # Every 5th real face is held out as a query: a real probe whose neighbours are real faces.
    held = np.arange(len(real)) % 5 == 4
    real_indexed, real_queries = real[~held], real[held]
    model = fit_face_model(real_indexed)
    chunks = math.ceil(max(0, max_size - len(real_indexed)) / (COPIES * CHUNK_PERSONS))
    key = f"{model.key}-s{seed}"
    common.CACHE.mkdir(parents=True, exist_ok=True)
    # Any cached file with at least as many chunks will do: chunk c is the same in every file.
    for have in sorted(common.CACHE.glob(f"synthetic-{key}-c*.npy")):
        if int(have.stem.rsplit("-c", 1)[1]) >= chunks:
            synth = np.load(have, mmap_mode="r")
            held_path = have.with_name(have.name.replace("synthetic-", "heldout-"))
            heldout = np.load(held_path)
            break
    else:
        started = time.perf_counter()
        parts = [synthetic_chunk(model, c, seed) for c in range(chunks)]
        synth = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, DIM), np.float32)
        heldout = np.concatenate([p[1] for p in parts]) if parts else np.empty((0, DIM))
        np.save(common.CACHE / f"synthetic-{key}-c{chunks:03d}.npy", synth)
        np.save(common.CACHE / f"heldout-{key}-c{chunks:03d}.npy", heldout)
        for smaller in common.CACHE.glob(f"*-{key}-c*.npy"):  # prefixes of the new file
            smaller.unlink()
        took = time.perf_counter() - started
        print(f"generated {len(synth):,} synthetic vectors in {took:.1f} s")
    size = min(max_size, len(real_indexed) + len(synth))
    vectors = np.empty((size, DIM), np.float32)
    vectors[: len(real_indexed)] = real_indexed
    vectors[len(real_indexed) :] = synth[: size - len(real_indexed)]
    return Dataset(vectors, heldout, real_queries, len(real_indexed), key)


def dataset_stats(data: Dataset, real: np.ndarray, rng: np.random.Generator) -> dict:
    """Norms and distances of real and synthetic vectors, to show the synthetic ones fit."""

    def pair_distances(a: np.ndarray) -> np.ndarray:
        i, j = np.triu_indices(len(a), 1)
        return np.linalg.norm(a[i] - a[j], axis=1)

    synth = data.vectors[data.n_real :]
    persons = min(200, len(synth) // COPIES)
    picks = rng.choice(len(synth) // COPIES, persons, replace=False)
    same = np.concatenate([pair_distances(synth[p * COPIES : (p + 1) * COPIES]) for p in picks])
    centres = synth[picks * COPIES]  # one copy of each sampled person
    return {
        "real_faces": len(real),
        "real_norm_mean": float(np.linalg.norm(real, axis=1).mean()),
        "real_pair_distance_pct_5_50_95": np.percentile(pair_distances(real), [5, 50, 95]),
        "synthetic_norm_mean": float(np.linalg.norm(synth[:10_000], axis=1).mean()),
        "synthetic_same_person_pct_5_50_95": np.percentile(same, [5, 50, 95]),
        "synthetic_other_person_pct_5_50_95": np.percentile(pair_distances(centres), [5, 50, 95]),
    }


def make_queries(data: Dataset, n: int, count: int, seed: int) -> np.ndarray:
    """``count`` held-out copies of people indexed in the first n rows, then the real held-out."""
    persons = data.persons_within(n)
    rng = np.random.default_rng([seed, n, 7])
    picks = rng.choice(persons, min(count, persons), replace=False)
    return np.concatenate([data.heldout[np.sort(picks)], data.real_queries]).astype(np.float32)


# -- exact search --------------------------------------------------------------------------------
class NumpyBruteForce:
    """Exact search as a numpy user writes it: one matrix-vector product and argpartition."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        # |x - q|² = |x|² - 2x·q + |q|²: the |x|² term is computed once, |q|² is the same for all.
        self.sq_norms = np.einsum("ij,ij->i", self.vectors, self.vectors)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        partial = self.sq_norms - 2 * (self.vectors @ query)
        top = np.argpartition(partial, k)[:k]
        top = top[np.argsort(partial[top])]
        return np.sqrt(np.maximum(partial[top] + query @ query, 0)), top


def face_distance_search(vectors: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """What the face_recognition package does: ``np.linalg.norm(known - probe, axis=1)``."""
    distances = np.linalg.norm(vectors - query, axis=1)
    top = np.argpartition(distances, k)[:k]
    return top[np.argsort(distances[top])]


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ground truth: the k nearest ids of each query, re-ranked in float64 to break near-ties."""
    sq_norms = np.einsum("ij,ij->i", vectors, vectors)
    result = np.empty((len(queries), k), np.int64)
    shortlist = 4 * k
    for start in range(0, len(queries), 64):
        block = queries[start : start + 64]
        partial = sq_norms[None, :] - 2 * (block @ vectors.T)
        cand = np.argpartition(partial, shortlist, axis=1)[:, :shortlist]
        for row, (query, ids) in enumerate(zip(block, cand, strict=True)):
            exact = np.linalg.norm(vectors[ids].astype(np.float64) - query, axis=1)
            result[start + row] = ids[np.argsort(exact)[:k]]
    return result


def recall_fields(found: np.ndarray, truth: np.ndarray) -> dict:
    """recall_at_10 and recall_at_1 as result-row fields."""
    at_k, at_1 = recall(found, truth)
    return {"recall_at_10": at_k, "recall_at_1": at_1}


def recall(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(recall@k, recall@1): share of the true k nearest found; share of exact top-1 hits."""
    at_k = np.mean([len(np.intersect1d(f, t)) / len(t) for f, t in zip(found, truth, strict=True)])
    return float(at_k), float(np.mean(found[:, 0] == truth[:, 0]))


# -- faceledger's index ----------------------------------------------------------------------------
@contextlib.contextmanager
def forced_plan(plan: IndexPlan | None):
    """Make ``FaissIndex.build`` use ``plan`` (to try other nlist values through the same code)."""
    if plan is None:
        yield
        return
    original = faiss_index.plan_for
    faiss_index.plan_for = lambda n, exact_max, compressed_min=None: plan
    try:
        yield
    finally:
        faiss_index.plan_for = original


def built_index(
    data: Dataset, n: int, exact_max: int, plan: IndexPlan | None, rebuild: bool
) -> tuple[FaissIndex, dict]:
    """FaissIndex over the first n rows, built by ``FaissIndex.build`` or loaded from cache."""
    path = index_cache_path(data, n, exact_max, plan)
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists() and not rebuild:
        started = time.perf_counter()
        index = FaissIndex.from_bytes(path.read_bytes())
        meta = json.loads(meta_path.read_text()) | {"cached": True}
        meta["load_s"] = time.perf_counter() - started
        return index, meta
    ids = np.arange(n, dtype=np.int64)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with forced_plan(plan):
        index = FaissIndex.build(ids, data.vectors[:n], exact_max=exact_max)
    build_s = time.perf_counter() - started
    blob = index.to_bytes()
    path.write_bytes(blob)
    meta = {"build_s": build_s, "index_mb": len(blob) / 2**20, "plan": index.plan.describe()}
    meta["build_load_average"] = [load, os.getloadavg()[0]]  # build time is judged with it
    meta_path.write_text(json.dumps(meta))
    print(f"  built {index.plan.describe()} over {n:,} in {build_s:.1f} s")
    return index, meta | {"cached": False}


def index_cache_path(data: Dataset, n: int, exact_max: int, plan: IndexPlan | None) -> Path:
    """Where the index over the first n rows built to ``plan`` (None: plan_for's) is cached."""
    effective = plan or plan_for(n, exact_max)
    # The build code is in the key: a changed build() must not reuse an old index, while other
    # edits to the module (e.g. to search()) keep the ~2-4 minute 10^6 build. Compiled code, not
    # source text: the file may be edited on disk while this runs.
    builders = (FaissIndex.build, faiss_index._sample, faiss_index._train_compressed)
    source = "".join(_code_key(f.__code__) for f in builders)
    key = hashlib.sha256(
        f"{data.key}/{n}/{effective}/{effective.factory()}/{faiss.__version__}/{source}".encode()
    ).hexdigest()[:12]
    return common.CACHE / f"index-{n}-{effective.kind}{effective.nlist}-{key}.faiss"


def _code_key(code) -> str:
    """A stable text for a code object: bytecode, names and constants (nested code recursed)."""
    consts = [_code_key(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts]
    return f"{code.co_code.hex()}/{code.co_names}/{consts}"


def set_nprobe(index: FaissIndex, nprobe: int) -> int:
    """Change the probe count of an IVF index in place (reaching into the wrapper on purpose)."""
    ivf = faiss.extract_index_ivf(index._index)
    ivf.nprobe = min(nprobe, ivf.nlist)
    return int(ivf.nprobe)


def searcher(index: FaissIndex, threads: int | None):
    """One-query search function: FaissIndex.search as the product calls it, on the process's
    OpenMP threads (threads None) or on ``threads`` of them, as a process that called
    ``faceledger.index.set_search_threads(threads)`` searches (the service: 1)."""

    def search(query: np.ndarray) -> np.ndarray:
        if threads is not None:
            faiss.omp_set_num_threads(threads)
        return index.search(query, K)[1][0]

    return search


def time_single_queries(search, queries: np.ndarray, warmup: int = 20) -> tuple[list, np.ndarray]:
    """Latency of each query asked alone, as a user's search asks it; and the ids found."""
    for query in queries[:warmup]:
        search(query)
    seconds, found = [], []
    for query in queries:
        started = time.perf_counter()
        ids = search(query)
        seconds.append(time.perf_counter() - started)
        found.append(ids)
    return seconds, np.asarray(found)


# -- driver ----------------------------------------------------------------------------------------
def parse_sizes(text: str) -> list[int]:
    """'1e4,1e5' → [10000, 100000]."""
    return [int(float(part)) for part in text.split(",") if part]


def parse_options(text: str) -> list[int | None]:
    """'default,1024' → [None, 1024] (None: what plan_for chooses)."""
    return [None if part == "default" else int(part) for part in text.split(",") if part]


def run(args: argparse.Namespace) -> dict:
    """Every size × index configuration; returns the results document."""
    sizes = parse_sizes(args.sizes)
    rng = np.random.default_rng(args.seed)
    data = load_dataset(max(sizes), args.seed)
    report = {
        "benchmark": "search",
        "machine": common.machine(),
        "args": vars(args),
        "dataset": dataset_stats(data, common.real_face_vectors(), rng),
        "rows": [],
    }
    default_threads = faiss.omp_get_max_threads()
    thread_options = [None if t == "product" else int(t) for t in args.threads.split(",") if t]
    for n in sizes:
        if n > len(data.vectors):
            raise SystemExit(f"size {n} exceeds the {len(data.vectors)} vectors generated")
        # Other work on this machine skews timings; the load average is kept to judge them.
        print(f"\n== {n:,} faces ==  (load average {os.getloadavg()[0]:.2f})")
        report.setdefault("load_average", {})[n] = {"start": os.getloadavg()}
        vectors = data.vectors[:n]
        queries = make_queries(data, n, args.queries, args.seed)
        truth = exact_neighbours(vectors, queries, K)

        brute = NumpyBruteForce(vectors)
        bq = queries[: args.brute_queries]
        seconds, found = time_single_queries(
            functools.partial(lambda q, b: b.search(q, K)[1], b=brute), bq, warmup=5
        )
        brute_row = {
            "size": n,
            "index": "numpy brute force",
            "queries": len(bq),
            **common.percentiles_ms(seconds),
            **recall_fields(found, truth[: len(bq)]),
        }
        report["rows"].append(brute_row)
        print_row(brute_row)

        pq = queries[: args.peer_queries]
        if len(pq):
            seconds, found = time_single_queries(
                functools.partial(lambda q, v: face_distance_search(v, q, K), v=vectors),
                pq,
                warmup=2,
            )
            row = {
                "size": n,
                "index": "face_recognition.face_distance",
                "queries": len(pq),
                **common.percentiles_ms(seconds),
                **recall_fields(found, truth[: len(pq)]),
            }
            report["rows"].append(row)
            print_row(row)

        default_plan = plan_for(n, args.exact_max)
        nlists = parse_options(args.nlist) if default_plan.kind != "flat" else [None]
        for nlist in dict.fromkeys(nlists):
            plan = None
            if nlist is not None and nlist != default_plan.nlist:
                plan = IndexPlan(default_plan.kind, nlist=nlist, nprobe=max(16, nlist // 128),
                                 pq_m=default_plan.pq_m,
                                 hnsw_coarse=nlist > faiss_index.FLAT_COARSE_MAX)  # fmt: skip
            index, meta = built_index(data, n, args.exact_max, plan, args.rebuild)
            nprobes = [None]
            if index.plan.kind != "flat":
                wanted = [p or index.plan.nprobe for p in parse_options(args.nprobe)]
                nprobes = sorted({min(p, index.plan.nlist) for p in wanted})
            for probe in nprobes:
                if probe is not None:
                    set_nprobe(index, probe)
                for threads_option in thread_options:
                    search = searcher(index, threads_option)
                    seconds, found = time_single_queries(search, queries)
                    # None: the process's own thread count.
                    threads = threads_option or faiss.omp_get_max_threads()
                    faiss.omp_set_num_threads(default_threads)
                    r10, r1 = recall(found, truth)
                    row = {
                        "size": n,
                        "index": "faceledger FaissIndex",
                        **meta,
                        "plan": index.plan.describe().split(" nprobe")[0],
                        "default_plan": plan is None,
                        "nlist": index.plan.nlist,
                        "nprobe": probe,
                        "default_nprobe": probe is None or probe == index.plan.nprobe,
                        "threads": threads,
                        "via": "FaissIndex.search",
                        "queries": len(queries),
                        **common.percentiles_ms(seconds),
                        "recall_at_10": r10,
                        "recall_at_1": r1,
                        "speedup_vs_numpy_p50": brute_row["p50_ms"]
                        / common.percentiles_ms(seconds)["p50_ms"],
                    }
                    row["meets_target"] = row["p50_ms"] <= TARGET_P50_MS and r10 >= TARGET_RECALL
                    report["rows"].append(row)
                    print_row(row)
            del index
        report["load_average"][n]["end"] = os.getloadavg()
    return report


def print_row(row: dict) -> None:
    """One line of the live table."""
    what = row["index"]
    if "plan" in row:
        what = f"{row['plan']}" + (f" nprobe={row['nprobe']}" if row["nprobe"] else "")
        what += f" t={row['threads']}" + (" raw" if row["via"] == "raw faiss" else "")
    build = ""
    if "build_s" in row:
        build = f"build {row['build_s']:6.1f} s{' (cached)' if row['cached'] else ''}"
    print(
        f"  {what:<34} p50 {row['p50_ms']:8.3f} ms  p99 {row['p99_ms']:8.3f} ms  "
        f"recall@10 {row['recall_at_10']:.4f}  {build}"
    )


def summary_table(report: dict) -> str:
    """Markdown table of every row, as pasted into BENCHMARKS.md."""
    lines = [
        "| faces | index | threads | build s | p50 ms | p99 ms | recall@10 | vs numpy p50 |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        what = row["index"]
        if "plan" in row:
            what = row["plan"] + (f" nprobe={row['nprobe']}" if row["nprobe"] else "")
            if row["via"] == "raw faiss":
                what += " (raw index)"
            elif row["default_plan"] and row["default_nprobe"]:
                what = f"**{what}** (default)"
        build = f"{row['build_s']:.1f}" if "build_s" in row else "–"
        speed = _ratio(row["speedup_vs_numpy_p50"]) if "speedup_vs_numpy_p50" in row else "1×"
        if row["index"] == "face_recognition.face_distance":
            numpy_p50 = next(
                r["p50_ms"]
                for r in report["rows"]
                if r["size"] == row["size"] and r["index"] == "numpy brute force"
            )
            speed = _ratio(numpy_p50 / row["p50_ms"])
        lines.append(
            f"| {row['size']:,} | {what} | {row.get('threads', '–')} | {build} | "
            f"{row['p50_ms']:.3f} | {row['p99_ms']:.3f} | {row['recall_at_10']:.4f} | {speed} |"
        )
    return "\n".join(lines)


def _ratio(value: float) -> str:
    """2 significant digits below 10 (0.59×, 2.4×), whole numbers above (51×)."""
    return f"{value:.2g}×" if value < 10 else f"{value:.0f}×"


def main() -> None:
    """Parse options, run, print the table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e4,1e5,1e6", help="comma list, e.g. 1e4,1e5")
    parser.add_argument("--queries", type=int, default=1000, help="synthetic held-out queries")
    parser.add_argument(
        "--brute-queries", type=int, default=200, help="queries timed for numpy brute force"
    )
    parser.add_argument(
        "--peer-queries", type=int, default=20, help="queries timed for face_distance (0: skip)"
    )
    parser.add_argument("--exact-max", type=int, default=50_000, help="FaissIndex.build's")
    parser.add_argument(
        "--nlist", default="default", help="IVF list counts to build: 'default' = plan_for's"
    )
    parser.add_argument(
        "--nprobe", default="default,16,32,48,64,96", help="IVF probe counts to measure"
    )
    parser.add_argument(
        "--threads",
        default="product",
        help="'product' (the process's own OpenMP threads) and/or thread counts, e.g. product,1",
    )
    parser.add_argument("--rebuild", action="store_true", help="ignore cached indexes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    report = run(args)
    report["total_s"] = time.perf_counter() - started
    table = summary_table(report)
    report["table_md"] = table
    path = common.write_results("search", report)
    print("\n" + table)
    print(f"\ndataset: {json.dumps(report['dataset'], default=common._json_default)}")
    print(f"total {report['total_s']:.0f} s; results in {path}")


if __name__ == "__main__":
    main()
