"""Draft-mode decoding for detection: same faces as the full decode, no full decode without one."""

from __future__ import annotations

import io
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
from conftest import shared_path
from PIL import Image

from faceledger.config import Settings
from faceledger.faces import FaceEngine
from faceledger.ingest import decode_image
from faceledger.ingest.decode import decode_for_faces


@cache
def _engine() -> FaceEngine:
    return FaceEngine()


def _large_jpegs() -> list[Path]:
    """Shared JPEGs large enough that detection decodes a DCT-downscaled copy."""
    found = []
    for path in sorted(shared_path("faces").rglob("*.jpg")):
        with Image.open(path) as image:
            if image.format == "JPEG" and max(image.size) >= 2 * Settings().detect_max_side:
                found.append(path)
    return found


def test_draft_mode_finds_the_faces_of_a_full_decode():
    s = Settings()
    photos = _large_jpegs()
    assert len(photos) >= 5
    distances, boxes = [], []
    for path in photos:
        data = path.read_bytes()
        full_rgb, full_facts = decode_image(data, "x", s.max_file_bytes, s.max_pixels)
        reference = _engine().faces(full_rgb)
        decoded = decode_for_faces(data, "x", s.max_file_bytes, s.max_pixels, s.detect_max_side)
        assert max(decoded.small.shape[:2]) < max(full_rgb.shape[:2])  # a reduced copy
        assert (decoded.facts.width, decoded.facts.height) == (full_facts.width, full_facts.height)
        found = _engine().faces_in(decoded.small, decoded.size, decoded.full)
        assert len(found) == len(reference), path
        for a, b in zip(
            sorted(reference, key=lambda f: f.box.left), sorted(found, key=lambda f: f.box.left),
            strict=True,
        ):  # fmt: skip
            distances.append(float(np.linalg.norm(a.vector - b.vector)))
            boxes.append(abs(a.box.left - b.box.left) / a.box.width)
    # Same people, same places: far inside the 0.6 match threshold.
    assert max(distances) < 0.15, distances
    assert float(np.median(distances)) < 0.05
    assert max(boxes) < 0.1


def test_a_large_photo_without_faces_is_never_decoded_whole():
    s = Settings()
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 255, (2400, 3200, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG", quality=70)
    decoded = decode_for_faces(
        buffer.getvalue(), "x", s.max_file_bytes, s.max_pixels, s.detect_max_side
    )
    assert decoded.small.shape == (1200, 1600, 3)  # libjpeg scales by 1/2: still >= 1024 px
    assert (decoded.facts.width, decoded.facts.height) == (3200, 2400)
    assert _engine().faces_in(decoded.small, decoded.size, decoded.full) == []
    assert decoded._full is None  # the full pixels were never decoded


def test_the_local_engine_never_imports_ray(tmp_path):
    photo = shared_path("faces", "deepface", "tests", "unit", "dataset", "img1.jpg")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from faceledger.app.ingest import ingest\n"
        "from faceledger.app.library import Library\n"
        "from faceledger.config import Settings\n"
        f"lib = Library.create(Settings.from_env(environ={{}}, library=Path({str(tmp_path)!r}) "
        "/ 'lib', workers=1))\n"
        f"summary = ingest(lib, lib.actor(None), [Path({str(photo)!r})])\n"
        "assert summary.photos_new == 1 and summary.engine == 'local', summary\n"
        "print('ray' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
