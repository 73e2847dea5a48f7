"""Memory of saving and loading an index snapshot: streamed parts and a mapped file, against
joining the whole body in memory and reading the whole file (what the store did before).

Each operation runs in a fresh child process, which first loads the compressed-tier index that
bench_scale.py cached for ``--size`` faces (run that first); the figure is the child's peak
anonymous resident memory during the operation (``RssAnon``, sampled every 2 ms; a mapped
file's pages are the OS's cache and not counted) less that just before, i.e. what the operation
adds on top of the index it saves or the process it loads into.

    .venv/bin/python bench/bench_snapshot.py --size 1e7
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import multiprocessing
import os
import tempfile
import threading
import time
from pathlib import Path

import bench_scale
import common

from faceledger.files import atomic_write
from faceledger.index.faiss_index import FaissIndex, plan_for


def _anon_mb() -> float:
    """This process's anonymous resident memory now (MB): pages of a mapped file are the OS's
    cache, dropped under pressure, so they are not counted."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakSampler:
    """The highest anonymous resident memory seen every 2 ms while in the ``with`` block."""

    def __enter__(self) -> PeakSampler:
        self.before = self.peak = _anon_mb()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.002):
            self.peak = max(self.peak, _anon_mb())

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _anon_mb())


def _cached_index(size: int) -> FaissIndex:
    vectors, _, key = bench_scale.dataset(size, 0)
    plan = plan_for(size, 50_000, compressed_min=1)
    index, _ = bench_scale.built(vectors, key, plan, rebuild=False)
    return index


def _save(operation: str, index: FaissIndex, path: str) -> None:
    if operation == "save-streamed":  # what FaissStore._write does now
        parts = index.to_parts()
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part)
        atomic_write(Path(path), [b"header\n", *parts])
    else:  # before: the body joined, then header + body joined again
        body = index.to_bytes()
        hashlib.sha256(body).hexdigest()
        atomic_write(Path(path), b"header\n" + body)


def _load(operation: str, path: str) -> FaissIndex:
    if operation == "load-mapped":  # what read_snapshot does now
        with open(path, "rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        body = memoryview(mapped)[len(b"header\n") :]
    else:  # before: the file read, then the body sliced (a copy)
        body = Path(path).read_bytes()[len(b"header\n") :]
    hashlib.sha256(body).hexdigest()
    return FaissIndex.from_bytes(body)


def _child(operation: str, size: int, path: str, queue) -> None:
    """Run one operation and report (seconds, MB added at peak, MB resident before)."""
    index = _cached_index(size) if operation.startswith("save") else None
    with PeakSampler() as sampler:
        started = time.perf_counter()
        if index is not None:
            _save(operation, index, path)
        else:
            assert len(_load(operation, path)) == size
        seconds = time.perf_counter() - started
    queue.put((seconds, sampler.peak - sampler.before, sampler.before))


def measure(operation: str, size: int, path: str) -> dict:
    """One operation in a fresh process: its seconds and the memory it added at peak."""
    queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(
        target=_child, args=(operation, size, path, queue)
    )
    child.start()
    seconds, added_mb, base_mb = queue.get()
    child.join()
    return {"seconds": seconds, "added_mb": added_mb, "resident_before_mb": base_mb}


def main() -> None:
    """Save and load the cached index both ways, ``--repeats`` times each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1e7")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    size = int(float(args.size))
    report = {"benchmark": "snapshot", "machine": common.machine(), "size": size, "rows": []}
    with tempfile.TemporaryDirectory(dir=common.CACHE) as tmp:
        path = os.path.join(tmp, "snapshot.index")
        for _ in range(args.repeats):
            for operation in ("save-streamed", "save-joined", "load-mapped", "load-read"):
                row = {"operation": operation, **measure(operation, size, path),
                       "file_mb": os.path.getsize(path) / 2**20,
                       "load_average": os.getloadavg()[0]}  # fmt: skip
                report["rows"].append(row)
                print(f"  {operation:<14} {row['seconds']:6.1f} s  +{row['added_mb']:7.0f} MB at "
                      f"peak (file {row['file_mb']:.0f} MB, load {row['load_average']:.1f})",
                      flush=True)  # fmt: skip
    print(json.dumps({"results": str(common.write_results(f"snapshot-{size}", report))}))


if __name__ == "__main__":
    main()
