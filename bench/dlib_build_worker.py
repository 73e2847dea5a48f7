"""Runs in a subprocess per dlib build: times HOG and the face descriptor, prints JSON.

Which dlib it measures is whatever `import dlib` finds: the venv's own, or a copy put first on
PYTHONPATH (bench_dlib_build.py does that for the prebuilt dlib-bin kept in .venv/dlib-bin-ref).

    python bench/dlib_build_worker.py HOG_IMAGE PHOTO... [--hog-repeats 5] [--desc-repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# Before dlib and numpy load: one BLAS thread, as ingest workers run (the parent sets it too).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import dlib  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import decode_rgb  # noqa: E402

from faceledger.faces import dlib_build  # noqa: E402
from faceledger.faces.models import model_path  # noqa: E402


def hog_image(path: Path) -> np.ndarray:
    """A 640x480 RGB image: the photo scaled to 480 px high and centre-cropped to 640 wide."""
    from PIL import Image

    image = Image.fromarray(decode_rgb(path))
    width = round(image.width * 480 / image.height)
    image = image.resize((width, 480), Image.Resampling.BILINEAR)
    left = max(0, (width - 640) // 2)
    return np.ascontiguousarray(np.asarray(image)[:, left : left + 640])


def time_hog(rgb: np.ndarray, repeats: int, calls: int = 20) -> list[float]:
    """Mean milliseconds of one HOG detection (no upsampling), one figure per repeat."""
    detector = dlib.get_frontal_face_detector()
    detector.run(rgb, 0, 0.0)  # warm-up
    result = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            detector.run(rgb, 0, 0.0)
        result.append((time.perf_counter() - started) / calls * 1e3)
    return result


def time_descriptors(photos: list[Path], repeats: int) -> tuple[list[float], int, dict]:
    """Milliseconds per face of the 128-d descriptor (batched per photo, as FaceEngine calls it)."""
    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(str(model_path("shape_predictor_5_face_landmarks.dat")))
    resnet = dlib.face_recognition_model_v1(
        str(model_path("dlib_face_recognition_resnet_model_v1.dat"))
    )
    work = []
    for path in photos:
        rgb = np.ascontiguousarray(decode_rgb(path))
        rects = detector(rgb, 0)
        if rects:
            found = dlib.full_object_detections([shapes(rgb, r) for r in rects])
            work.append((path, rgb, found))
    faces = sum(len(found) for _, _, found in work)
    resnet.compute_face_descriptor(work[0][1], work[0][2])  # warm-up (first call allocates)
    result = []
    vectors = {}
    for _ in range(repeats):
        started = time.perf_counter()
        for path, rgb, found in work:
            vectors[str(path)] = [list(v) for v in resnet.compute_face_descriptor(rgb, found)]
        result.append((time.perf_counter() - started) / faces * 1e3)
    return result, faces, vectors


def main() -> None:
    """Measure the dlib this process imports and print the figures as one JSON object."""
    parser = argparse.ArgumentParser()
    parser.add_argument("hog_image", type=Path)
    parser.add_argument("photos", type=Path, nargs="+")
    parser.add_argument("--hog-repeats", type=int, default=5)
    parser.add_argument("--desc-repeats", type=int, default=3)
    args = parser.parse_args()
    descriptor_ms, faces, vectors = time_descriptors(args.photos, args.desc_repeats)
    result = {
        "build": dlib_build(),
        "dlib_file": dlib.__file__,
        "use_blas": bool(dlib.DLIB_USE_BLAS),
        "use_avx": bool(dlib.USE_AVX_INSTRUCTIONS),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "hog_ms": time_hog(hog_image(args.hog_image), args.hog_repeats),
        "descriptor_ms_per_face": descriptor_ms,
        "faces": faces,
        "vectors": vectors,
    }
    result["hog_ms_median"] = statistics.median(result["hog_ms"])
    result["descriptor_ms_median"] = statistics.median(descriptor_ms)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
