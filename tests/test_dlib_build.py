"""Which dlib build the tests run on, and that the OpenBLAS build's vectors agree with dlib-bin's.

The Makefile installs dlib built against OpenBLAS and keeps the prebuilt dlib-bin aside in
.venv/dlib-bin-ref; the comparison computes the reference vectors there, in a subprocess.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import dlib
import numpy as np
import pytest
from conftest import shared_path

from faceledger.config import Settings
from faceledger.faces import dlib_build, model_version
from faceledger.ingest import decode_image

REPO = Path(__file__).resolve().parents[1]
REF = Path(os.environ.get("FACELEDGER_DLIB_REF", REPO / ".venv" / "dlib-bin-ref"))
UNDER_CI = os.environ.get("CI") == "true"
FALLBACK = "the fallback dlib-bin (no BLAS) is installed; `make clean && make` builds the fast one"

# The main (largest) face's vector of each photo named on the command line, as JSON.
MAIN_FACES = """
import json, sys
import dlib
from faceledger.config import Settings
from faceledger.faces import FaceEngine, dlib_build
from faceledger.ingest import decode_image
s, engine, out = Settings(), FaceEngine(), {}
for path in sys.argv[1:]:
    rgb, _ = decode_image(open(path, "rb").read(), "", s.max_file_bytes, s.max_pixels)
    faces = engine.faces(rgb)
    if faces:
        out[path] = max(faces, key=lambda f: f.box.width * f.box.height).vector.tolist()
json.dump({"build": dlib_build(), "blas": bool(dlib.DLIB_USE_BLAS), "vectors": out}, sys.stdout)
"""


def _require_blas_build() -> None:
    if not dlib.DLIB_USE_BLAS:
        if UNDER_CI:
            pytest.fail(f"CI must run the OpenBLAS build of dlib, but {FALLBACK}")
        pytest.skip(FALLBACK)


def test_ci_runs_the_blas_build():
    _require_blas_build()
    assert dlib.DLIB_USE_BLAS is True
    assert "+" in dlib_build()


def test_model_version_names_the_build():
    version = model_version()
    assert version.startswith("face-recognition-models ")
    assert version.endswith(dlib_build())
    assert dlib_build().startswith("dlib-bin " if not dlib.DLIB_USE_BLAS else "dlib ")
    assert len(version) <= 128  # faces.model_version is String(128)


def _main_vectors(engine, paths: list[Path]) -> dict[str, np.ndarray]:
    s = Settings()
    out = {}
    for path in paths:
        rgb, _ = decode_image(path.read_bytes(), "", s.max_file_bytes, s.max_pixels)
        faces = engine.faces(rgb)
        if faces:
            out[str(path)] = max(faces, key=lambda f: f.box.width * f.box.height).vector
    return out


def _reference_vectors(paths: list[Path]) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REF), str(REPO / "src")]))
    done = subprocess.run(
        [sys.executable, "-c", MAIN_FACES, *map(str, paths)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_blas_build_vectors_agree_with_dlib_bin(engine):
    _require_blas_build()
    if not (REF / "dlib").is_dir():
        message = f"no reference dlib-bin at {REF} (the Makefile installs it)"
        if UNDER_CI:
            pytest.fail(message)
        pytest.skip(message)
    root = shared_path("faces", "deepface")
    with (root / "PAIRS.csv").open() as handle:
        pairs = list(csv.DictReader(handle))
    paths = sorted({root / p[key] for p in pairs for key in ("file_a", "file_b")})

    ref = _reference_vectors(paths)
    assert ref["blas"] is False and ref["build"].startswith("dlib-bin "), ref["build"]
    theirs = {k: np.asarray(v, dtype=np.float32) for k, v in ref["vectors"].items()}
    ours = _main_vectors(engine, paths)
    assert ours.keys() == theirs.keys(), "the builds found faces in different photos"

    moved = np.array([np.linalg.norm(ours[k] - theirs[k]) for k in ours])
    print(
        f"BLAS vs dlib-bin over {moved.size} faces: median {np.median(moved):.2e}, "
        f"max {moved.max():.2e}"
    )
    assert np.median(moved) < 1e-4 and moved.max() < 1e-3, (np.median(moved), moved.max())

    threshold = Settings().match_threshold
    changed = [
        (p["file_a"], p["file_b"])
        for p in pairs
        if (
            np.linalg.norm(ours[str(root / p["file_a"])] - ours[str(root / p["file_b"])])
            <= threshold
        )
        != (
            np.linalg.norm(theirs[str(root / p["file_a"])] - theirs[str(root / p["file_b"])])
            <= threshold
        )
    ]
    assert len(pairs) == 520
    assert not changed, f"match decisions at {threshold} changed for {changed}"
