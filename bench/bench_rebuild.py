"""A rebuild from the catalog (what `faceledger reindex` does for one place), streamed: its time
and the memory it holds at peak, against the size of the index it builds.

The store rebuilds into a temporary directory from an existing catalog (e.g. the 10^7-face
PostgreSQL catalog bench_policy.py builds), so the catalog's own library is not touched. The
rebuild reads the place's ids, a training sample, then the vectors 10^5 at a time; before it
read every vector at once (10^7 x 512 B = 5.1 GB of floats, plus a Python row per face).

    .venv/bin/python bench/bench_rebuild.py --catalog-url postgresql+psycopg://…/pgscale_1e7
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import common
from bench_snapshot import PeakSampler

from faceledger.catalog import Catalog
from faceledger.catalog.placement import CatalogFeed
from faceledger.index.faiss_store import FaissStore, StoreTuning


def main() -> None:
    """Rebuild one place's index from ``--catalog-url`` and report time and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog-url", required=True)
    parser.add_argument("--place", default="searchable", choices=("searchable", "vault"))
    parser.add_argument("--compressed-min", type=float, default=2e6,
                        help="FACELEDGER_COMPRESSED_INDEX_MIN for the rebuild")  # fmt: skip
    args = parser.parse_args()
    catalog = Catalog(args.catalog_url)
    feed = CatalogFeed(catalog)
    tuning = StoreTuning(compressed_min=int(args.compressed_min))
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=common.CACHE) as tmp:
        store = FaissStore(args.place, Path(tmp) / f"{args.place}.index", feed, tuning,
                           lambda: None, lambda body: body)  # fmt: skip
        with PeakSampler() as sampler:
            started = time.perf_counter()
            store.rebuild()
            seconds = time.perf_counter() - started
        described = store.describe()
        file_mb = (Path(tmp) / f"{args.place}.index").stat().st_size / 2**20
    report = {
        "benchmark": "rebuild", "machine": common.machine(), "args": vars(args),
        "seconds": seconds, "peak_added_mb": sampler.peak - sampler.before,
        "resident_before_mb": sampler.before, "file_mb": file_mb, "structure":
        described["structure"], "faces": described["faces"],
        "load_average": [load, os.getloadavg()[0]],
    }  # fmt: skip
    print(f"rebuilt {described['faces']:,} faces ({described['structure']}) in {seconds:.0f} s; "
          f"+{report['peak_added_mb']:.0f} MB at peak, file {file_mb:.0f} MB, load "
          f"{load:.1f}-{os.getloadavg()[0]:.1f}")  # fmt: skip
    print(common.write_results("rebuild", report))
    catalog.engine.dispose()


if __name__ == "__main__":
    main()
