"""Class-size estimate: synthetic checks, and the range on the shared labelled face sets.

What "the true number of people" means on the shared sets: LABELS.csv names one identity for
single-person images and leaves it empty for group photos and unknown images, so the exact
truth is known only for the labelled images. The main test clusters one face per labelled image
(its largest, i.e. the portrait's subject) and the truth is the number of distinct labels.

A second test clusters every face detected in every image. The people in group and unlabelled
photos are not labelled, so the truth there is only known to lie between the labelled count
(those people are certainly present) and that count plus every face not accounted for by a
label (each might be someone new); that test checks the range is consistent with those bounds.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from faceledger.config import Settings
from faceledger.discovery.people import (
    DEFAULT_SPREAD,
    DEFAULT_THRESHOLD,
    estimate_people,
    neighbour_pairs,
)
from faceledger.faces import FaceEngine
from faceledger.ingest import decode_image

DATASETS = ["deepface", "face_recognition", "openface"]
# Identities per set as the shared data's README states them; a mismatch means the data moved.
README_IDENTITIES = {"deepface": 13, "face_recognition": 6, "openface": 4}


@dataclass
class Photo:
    file: str
    identity: str
    vectors: list[np.ndarray]  # largest face first


@pytest.fixture(scope="module")
def shared_faces(engine: FaceEngine) -> dict[str, list[Photo]]:
    """Every face of every image of the three sets, computed once for this module."""
    limits = Settings()
    result: dict[str, list[Photo]] = {}
    for dataset in DATASETS:
        root = shared_path("faces", dataset)
        with (root / "LABELS.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        photos = []
        for row in rows:
            data = (root / row["file"]).read_bytes()
            rgb, _ = decode_image(data, "", limits.max_file_bytes, limits.max_pixels)
            faces = sorted(engine.faces(rgb), key=lambda f: -f.box.width * f.box.height)
            photos.append(Photo(row["file"], row["identity"], [f.vector for f in faces]))
        result[dataset] = photos
    return result


@pytest.mark.parametrize("dataset", DATASETS)
def test_range_brackets_labelled_identities(shared_faces, dataset):
    labelled = [p for p in shared_faces[dataset] if p.identity]
    missing = [p.file for p in labelled if not p.vectors]
    assert not missing, f"no face found in labelled images {missing}"
    vectors = np.stack([p.vectors[0] for p in labelled])
    identities = [p.identity for p in labelled]
    truth = len(set(identities))
    assert truth == README_IDENTITIES[dataset]

    result = estimate_people(vectors)

    assert result.low <= truth <= result.high, (dataset, truth, result.counts)
    assert result.low <= result.estimate <= result.high
    # A bracket is only worth something if it is narrow: [1, n] would always pass.
    assert result.high - result.low <= max(2, round(0.2 * truth)), result.counts
    assert result.faces == len(labelled) == sum(result.cluster_sizes)
    # The clusters at the main threshold are people: nearly every face sits in a cluster
    # whose majority is its own identity.
    agree = 0
    for label in set(result.labels.tolist()):
        members = [identities[i] for i in np.flatnonzero(result.labels == label)]
        agree += Counter(members).most_common(1)[0][1]
    assert agree / len(identities) >= 0.95


@pytest.mark.parametrize("dataset", DATASETS)
def test_range_on_every_detected_face_is_consistent(shared_faces, dataset):
    photos = shared_faces[dataset]
    vectors = np.stack([v for p in photos for v in p.vectors])
    known = len({p.identity for p in photos if p.identity})
    # Faces no label accounts for: all faces of unlabelled images, extra faces of labelled ones.
    unaccounted = sum(len(p.vectors) - (1 if p.identity else 0) for p in photos)

    result = estimate_people(vectors)

    # The truth lies in [known, known + unaccounted]; the range must overlap it.
    assert result.high >= known and result.low <= known + unaccounted, (
        dataset,
        known,
        unaccounted,
        result.counts,
    )


def _people(count: int, copies: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    # Face-like synthetic vectors: centres about 1.0 apart, copies about 0.4 from each other.
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1 / np.sqrt(2 * 128), (count, 128))
    noise = rng.normal(0, 0.4 / np.sqrt(2 * 128), (count * copies, 128))
    return (np.repeat(centres, copies, axis=0) + noise).astype(np.float32), np.repeat(
        np.arange(count), copies
    )


def test_synthetic_people_are_counted_and_labelled():
    vectors, truth = _people(200, 5)
    result = estimate_people(vectors)
    assert result.estimate == result.low == result.high == 200
    assert result.thresholds == pytest.approx(
        (
            DEFAULT_THRESHOLD - DEFAULT_SPREAD[0],
            DEFAULT_THRESHOLD,
            DEFAULT_THRESHOLD + DEFAULT_SPREAD[1],
        )
    )
    # Same person <=> same cluster.
    pairs = {(int(a), int(b)) for a, b in zip(truth, result.labels, strict=True)}
    assert len(pairs) == 200
    assert result.cluster_sizes == (5,) * 200


def test_labels_are_ordered_by_cluster_size():
    big, _ = _people(1, 7, seed=1)
    small, _ = _people(3, 2, seed=2)
    result = estimate_people(np.vstack([small, big]))
    assert result.cluster_sizes == (7, 2, 2, 2)
    assert (result.labels[6:] == 0).all()
    assert result.singletons == 0


def test_edge_budget_keeps_a_large_person_together():
    vectors, _ = _people(1, 400, seed=3)
    assert estimate_people(vectors, max_neighbors=5).estimate == 1


def test_neighbour_pairs_match_brute_force():
    vectors, _ = _people(50, 4, seed=4)
    first, second, dist = neighbour_pairs(vectors, 0.6, max_neighbors=1000)
    full = np.linalg.norm(vectors[:, None].astype(np.float64) - vectors[None], axis=-1)
    want = {(i, j) for i, j in zip(*np.nonzero(full < 0.6), strict=True) if i < j}
    assert set(zip(first.tolist(), second.tolist(), strict=True)) == want
    assert np.allclose(dist, full[first, second])


def test_small_inputs():
    empty = estimate_people(np.empty((0, 128), np.float32))
    assert (empty.estimate, empty.low, empty.high, empty.faces) == (0, 0, 0, 0)
    one = estimate_people(np.zeros((1, 128), np.float32))
    assert (one.estimate, one.low, one.high, one.singletons) == (1, 1, 1, 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vectors": np.zeros(128)},
        {"vectors": np.full((2, 128), np.nan)},
        {"vectors": np.zeros((2, 128)), "spread": (0.7, 0.05)},
        {"vectors": np.zeros((2, 128)), "spread": (0.1, -0.1)},
        {"vectors": np.zeros((2, 128)), "max_neighbors": 0},
    ],
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        estimate_people(**kwargs)


def test_shared_data_path_is_the_documented_one():
    from conftest import SHARED

    assert Path(__file__).resolve().parents[2] / "shared" / "data" == SHARED
