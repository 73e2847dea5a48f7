"""The real dlib model on the shared labelled photos: verification and identification."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conftest import labelled, shared_path

from faceledger.config import Settings
from faceledger.faces import FaceEngine
from faceledger.ingest import decode_image

DATASETS = ["deepface", "face_recognition", "openface"]


@cache
def _engine() -> FaceEngine:
    return FaceEngine()


@cache
def main_face_vector(path: Path) -> np.ndarray | None:
    """The vector of the largest face in an image (the labelled person in a portrait)."""
    s = Settings()
    rgb, _ = decode_image(path.read_bytes(), "", s.max_file_bytes, s.max_pixels)
    faces = _engine().faces(rgb)
    if not faces:
        return None
    return max(faces, key=lambda f: f.box.width * f.box.height).vector


def test_verification_accuracy_on_deepface_pairs():
    root = shared_path("faces", "deepface")
    with (root / "PAIRS.csv").open() as handle:
        pairs = list(csv.DictReader(handle))
    threshold = Settings().match_threshold
    correct = 0
    for pair in pairs:
        a, b = main_face_vector(root / pair["file_a"]), main_face_vector(root / pair["file_b"])
        assert a is not None and b is not None, f"no face in {pair}"
        same = float(np.linalg.norm(a - b)) <= threshold
        correct += same == (pair["same"] == "1")
    accuracy = correct / len(pairs)
    assert len(pairs) == 520
    assert accuracy >= 0.99, f"verification accuracy {accuracy:.4f} < 0.99"


@pytest.mark.parametrize("dataset", DATASETS)
def test_identification_rank1(dataset: str):
    images = labelled(dataset)
    gallery: dict[str, np.ndarray] = {}
    probes: list[tuple[str, np.ndarray]] = []
    for path, identity in images:
        vector = main_face_vector(path)
        assert vector is not None, f"no face found in {path}"
        if identity not in gallery:
            gallery[identity] = vector
        else:
            probes.append((identity, vector))
    names = list(gallery)
    matrix = np.stack([gallery[n] for n in names])
    hits = sum(
        names[int(np.argmin(np.linalg.norm(matrix - v, axis=1)))] == identity
        for identity, v in probes
    )
    assert len(probes) >= 5
    rank1 = hits / len(probes)
    assert rank1 >= 0.95, f"{dataset}: rank-1 {rank1:.3f} < 0.95 over {len(probes)} probes"
