"""Helpers shared by the benchmark scripts: paths, the photo set, real face vectors, results."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CACHE = BENCH / "cache"
RESULTS = BENCH / "results"
# The shared photo set sits beside the checkout (…/shared next to …/main); overridable for CI.
FACES_DIR = Path(os.environ.get("FACELEDGER_BENCH_FACES", REPO.parent / "shared/data/faces"))
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def image_files(root: Path = FACES_DIR) -> list[Path]:
    """Every photo under ``root`` (recursive), sorted so every run sees the same order."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo reports it (falls back to platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What the numbers were measured on; written into every results file."""
    import faiss  # imported here: only the scripts that use it pay for it

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_results(name: str, payload: dict) -> Path:
    """Write ``payload`` as bench/results/<name>-<timestamp>.json and <name>-latest.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(payload, indent=2, default=_json_default)
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(text)
    (RESULTS / f"{name}-latest.json").write_text(text)
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def percentiles_ms(seconds: list[float] | np.ndarray) -> dict:
    """p50/p99/mean of a list of durations in seconds, as milliseconds."""
    arr = np.asarray(seconds, dtype=np.float64) * 1e3
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
        "n": int(arr.size),
    }


def decode_rgb(path: Path) -> np.ndarray:
    """Decode a photo to an RGB uint8 array, upright per its EXIF orientation."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def real_face_vectors(files: list[Path] | None = None) -> np.ndarray:
    """128-d vectors of every face faceledger's FaceEngine finds in the shared photos (cached).

    The cache key covers the file list, their sizes and the model version, so a changed photo set
    or model recomputes instead of silently reusing stale vectors.
    """
    from faceledger.faces import FaceEngine, model_version

    files = image_files() if files is None else files
    key = hashlib.sha256()
    key.update(model_version().encode())
    for path in files:
        key.update(f"{path}:{path.stat().st_size}\n".encode())
    cached = CACHE / f"real-faces-{key.hexdigest()[:12]}.npy"
    if cached.exists():
        return np.load(cached)
    engine = FaceEngine()
    started = time.perf_counter()
    vectors = [face.vector for path in files for face in engine.faces(decode_rgb(path))]
    print(f"computed {len(vectors)} real face vectors in {time.perf_counter() - started:.1f} s")
    result = np.asarray(vectors, dtype=np.float32).reshape(-1, 128)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cached, result)
    return result
