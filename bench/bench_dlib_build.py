"""dlib builds side by side: HOG detection on a 640x480 image and descriptor time per face.

Each build runs in its own process (bench/dlib_build_worker.py) with one BLAS thread, the way
ingest workers run; rounds alternate the builds so load on a shared machine hits both alike.
The default pair is the venv's own dlib (the OpenBLAS build that `make` installs) and the
prebuilt dlib-bin the Makefile keeps aside in .venv/dlib-bin-ref.

    .venv/bin/python bench/bench_dlib_build.py                  # ~2 min: 2 rounds, 40 photos
    .venv/bin/python bench/bench_dlib_build.py --rounds 3 --photos 80
    .venv/bin/python bench/bench_dlib_build.py --build blas=/tmp/blas-target --build bin=/tmp/bin
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import common
import numpy as np

WORKER = common.BENCH / "dlib_build_worker.py"
HOG_IMAGE = common.FACES_DIR / "face_recognition/examples/obama-480p.jpg"
DEFAULT_BUILDS = {"venv": "", "dlib-bin": str(common.REPO / ".venv/dlib-bin-ref")}


def run_build(path: str, photos: list[Path], threads: str) -> dict:
    """Run the worker with ``path`` first on PYTHONPATH ('' = the venv's own dlib)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
    src = str(common.REPO / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (path, src) if p)
    out = subprocess.run(
        [sys.executable, str(WORKER), str(HOG_IMAGE), *map(str, photos)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def spread(values: list[float]) -> str:
    """median (min-max) of a list of milliseconds."""
    return f"{statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    """Measure every build, print a table, write bench/results/dlib-build-*.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", action="append", default=[], help="LABEL=PYTHONPATH_DIR")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--photos", type=int, default=40, help="photos sampled evenly")
    parser.add_argument("--threads", default="1", help="OPENBLAS_NUM_THREADS for the workers")
    args = parser.parse_args()
    builds = dict(b.split("=", 1) for b in args.build) if args.build else dict(DEFAULT_BUILDS)
    for label, path in builds.items():
        if path and not Path(path).is_dir():
            sys.exit(f"{label}: {path} not found (make installs .venv/dlib-bin-ref)")
    files = common.image_files()
    step = max(1, len(files) // args.photos)
    photos = files[::step][: args.photos]

    runs: dict[str, list[dict]] = {label: [] for label in builds}
    for round_no in range(args.rounds):
        order = list(builds) if round_no % 2 == 0 else list(reversed(builds))
        for label in order:
            runs[label].append(run_build(builds[label], photos, args.threads))
            print(f"round {round_no + 1}: {label} done", file=sys.stderr)

    print(f"\n{len(photos)} photos, HOG on a 640x480 image, OPENBLAS_NUM_THREADS={args.threads}")
    print(f"{'build':<28} {'HOG ms, median (min-max)':>26} {'descriptor ms/face':>26}  faces")
    summary = {}
    for label, results in runs.items():
        hog = [v for r in results for v in r["hog_ms"]]
        desc = [v for r in results for v in r["descriptor_ms_per_face"]]
        name = f"{label}: {results[0]['build']}"
        print(f"{name:<28} {spread(hog):>26} {spread(desc):>26}  {results[0]['faces']}")
        summary[label] = {
            "build": results[0]["build"],
            "use_blas": results[0]["use_blas"],
            "use_avx": results[0]["use_avx"],
            "hog_ms": hog,
            "descriptor_ms_per_face": desc,
            "faces": results[0]["faces"],
        }
    labels = list(runs)
    if len(labels) >= 2:
        a, b = (runs[label][0]["vectors"] for label in labels[:2])
        dists = [
            float(np.linalg.norm(np.subtract(va, vb)))
            for key in a.keys() & b.keys()
            if len(a[key]) == len(b[key])
            for va, vb in zip(a[key], b[key], strict=True)
        ]
        print(
            f"vector distance {labels[0]} vs {labels[1]}: median {np.median(dists):.2e}, "
            f"max {max(dists):.2e} over {len(dists)} faces"
        )
        summary["distance"] = {"median": float(np.median(dists)), "max": max(dists)}
    payload = {"machine": common.machine(), "load": os.getloadavg(), "runs": summary}
    print(f"wrote {common.write_results('dlib-build', payload)}")


if __name__ == "__main__":
    main()
