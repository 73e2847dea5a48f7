"""The FAISS index: exact below the threshold, IVF above; removal is physical; files round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from faceledger.index import FaissIndex, plan_for


def clustered(n_people: int, per_person: int, seed: int = 0) -> np.ndarray:
    """Vectors shaped like faces: a centre per person, noisy copies about 0.4 apart."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, 128)).astype(np.float32)
    centres *= 1.0 / np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.normal(scale=0.4 / np.sqrt(2 * 128), size=(n_people, per_person, 128))
    return (centres[:, None, :] + noise).reshape(-1, 128).astype(np.float32)


def exact_top(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    distances = np.linalg.norm(vectors - query, axis=1)
    return ids[np.argsort(distances)[:k]]


def test_plan_switches_to_ivf_above_the_threshold():
    assert plan_for(10_000, 50_000).kind == "flat"
    big = plan_for(1_000_000, 50_000)
    assert big.kind == "ivfpq+flat" and big.nlist == 2048 and big.nprobe == 48
    assert big.reranked and not big.compressed  # PQ candidates, re-ranked in memory


def test_exact_and_ivf_agree_and_removal_is_physical(tmp_path):
    vectors = clustered(600, 10)
    ids = np.arange(len(vectors), dtype=np.int64) * 3 + 7  # ids are not positions
    flat = FaissIndex.build(ids, vectors, exact_max=100_000)
    ivf = FaissIndex.build(ids, vectors, exact_max=1_000)
    assert flat.plan.kind == "flat" and ivf.plan.kind == "ivfpq+flat"
    rng = np.random.default_rng(1)
    queries = vectors[rng.choice(len(vectors), 50, replace=False)] + 0.01
    _, flat_ids = flat.search(queries, 10)
    _, ivf_ids = ivf.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(flat_ids, ivf_ids, strict=True)])
    assert recall >= 0.95
    for q, row in zip(queries[:5], flat_ids[:5], strict=True):
        assert list(row) == list(exact_top(vectors, ids, q, 10))
    distances, _ = flat.search(vectors[:1], 1)
    assert distances[0, 0] < 1e-3  # Euclidean, not squared, and exact
    distances, found = ivf.search(queries, 10)  # re-ranked: exact distances too
    for q, d, i in zip(queries[:5], distances[:5], found[:5], strict=True):
        np.testing.assert_allclose(d, np.linalg.norm(vectors[(i - 7) // 3] - q, axis=1), rtol=1e-5)

    gone = ids[:100]
    for index in (flat, ivf):
        assert index.remove(gone) == 100
        assert index.remove(gone) == 0
        _, found = index.search(vectors[:100], 10)
        assert not set(found.ravel()) & set(gone)
        assert len(index) == len(ids) - 100
        assert list(index.ids()) == sorted(set(ids) - set(gone))
        copy = FaissIndex.from_bytes(index.to_bytes())
        assert copy.plan == index.plan and list(copy.ids()) == list(index.ids())
    flat.add(gone[:3], vectors[:3])
    flat.add(gone[:3], vectors[:3])  # adding again replaces, never duplicates
    assert len(flat) == len(ids) - 97


def test_empty_index_answers_nothing():
    index = FaissIndex.empty()
    distances, ids = index.search(np.zeros((2, 128), np.float32), 5)
    assert ids.shape == (2, 5) and (ids == -1).all() and np.isinf(distances).all()


def test_within_returns_every_neighbour_in_the_radius():
    vectors = clustered(200, 10, seed=3)
    ids = np.arange(len(vectors), dtype=np.int64) + 100
    for exact_max in (100_000, 500):  # flat, then IVF (PQ codes, re-ranked)
        index = FaissIndex.build(ids, vectors, exact_max=exact_max)
        (distances, found), = index.within(vectors[:1], 0.6)
        truth = ids[np.linalg.norm(vectors - vectors[0], axis=1) <= 0.6]
        assert set(found) <= set(truth) and len(found) >= 0.9 * len(truth)
        assert (distances <= 0.6 + 1e-5).all() and 100 in set(found)
    assert FaissIndex.empty().within(vectors[:2], 0.6)[1][1].size == 0



def test_a_missing_snapshot_is_not_reported_as_damaged(tmp_path):
    """A missing file means "rebuild quietly" (FileNotFoundError); an empty or foreign one is
    damage (VectorIndexError, logged, then replaced)."""
    from faceledger.errors import VectorIndexError
    from faceledger.index.faiss_store import read_snapshot

    with pytest.raises(FileNotFoundError):
        read_snapshot(tmp_path / "missing.faiss")
    (tmp_path / "empty.faiss").write_bytes(b"")
    with pytest.raises(VectorIndexError, match="empty"):
        read_snapshot(tmp_path / "empty.faiss")
    (tmp_path / "foreign.faiss").write_bytes(b"not an index")
    with pytest.raises(VectorIndexError, match="not a faceledger index file"):
        read_snapshot(tmp_path / "foreign.faiss")
