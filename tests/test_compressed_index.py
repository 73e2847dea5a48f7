"""The FAISS compressed tier (IVF over 4-bit PQ codes, ordered by SQ8 codes in memory, the
possible top k re-ranked exactly from the catalog).

`FACELEDGER_COMPRESSED_INDEX_MIN` is lowered so the tier runs on a handful of faces: first on
synthetic clustered vectors (recall, exact distances, removal, round trip), then on a real
library from the shared photos (search, blocking, erasure), as the other backends are tested.
"""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest
from conftest import make_settings, shared_path
from helpers import vault_face_count
from hypothesis import given, settings
from hypothesis import strategies as st
from test_blocking import (
    DATASET,
    face_of,
    ingest_with_an_illinois_upload,
    searched_face_ids,
)
from test_index import clustered

from faceledger.app.governance import destruction
from faceledger.app.library import Library
from faceledger.catalog import SEARCHABLE
from faceledger.errors import VectorIndexError
from faceledger.index import FaissIndex, IndexPlan, faiss_index, plan_for
from faceledger.index.faiss_index import _exact_order
from faceledger.index.faiss_store import read_header


def _lookup(ids: np.ndarray, vectors: np.ndarray):
    """An exact-vector lookup over arrays (what the catalog gives the store)."""
    row_of = {int(i): r for r, i in enumerate(ids)}

    def lookup(wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = [row_of[int(i)] for i in wanted if int(i) in row_of]
        return ids[rows], vectors[rows]

    return lookup


class CountingLookup:
    """An exact lookup that records how many vectors each call read."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray):
        self._lookup = _lookup(ids, vectors)
        self.reads: list[int] = []

    def __call__(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.reads.append(len(wanted))
        return self._lookup(wanted)


def test_plan_is_compressed_from_the_threshold():
    assert plan_for(1_000_000, 50_000, compressed_min=2_000_000).kind == "ivfpq+flat"
    big = plan_for(10_000_000, 50_000, compressed_min=2_000_000)
    assert big.compressed and big.pq_m == 64 and "PQ64x4fs" in big.describe()
    assert big.kind == "ivfpq+sq8" and "SQ8" in big.describe()
    assert not plan_for(10_000_000, 50_000).compressed  # no threshold: never compressed
    assert plan_for(4, 50_000, compressed_min=1).nlist == 1  # tiny: lists it can train
    # An exact coarse quantizer while the lists are few, an HNSW graph over them beyond.
    assert not big.hnsw_coarse and "HNSW" not in big.factory()  # 8192 lists
    huge = plan_for(100_000_000, 50_000, compressed_min=2_000_000)
    assert huge.nlist > faiss_index.FLAT_COARSE_MAX and huge.factory().startswith(
        f"IVF{huge.nlist}_HNSW"
    )


def test_hnsw_coarse_quantizer_searches_and_survives_a_round_trip(monkeypatch):
    """The graph quantizer (only past FLAT_COARSE_MAX lists in use) is built, searched, read."""
    monkeypatch.setattr(faiss_index, "FLAT_COARSE_MAX", 0)
    vectors = clustered(600, 10, seed=9)
    ids = np.arange(len(vectors), dtype=np.int64)
    exact = _lookup(ids, vectors)
    packed = FaissIndex.build(ids, vectors, compressed_min=100)
    ivf = faiss.extract_index_ivf(packed._index)
    assert packed.plan.hnsw_coarse and isinstance(faiss.downcast_index(ivf.quantizer),
                                                  faiss.IndexHNSW)  # fmt: skip
    flat = FaissIndex.build(ids, vectors, exact_max=100_000)
    queries = vectors[::12] + 0.01
    got = packed.search(queries, 10, exact)[1]
    want = flat.search(queries, 10)[1]
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want, strict=True)]) >= 0.95
    copy = FaissIndex.from_bytes(packed.to_bytes())
    assert copy.plan == packed.plan and "HNSW" in copy.plan.describe()


def test_compressed_search_is_exact_after_the_rerank_and_removal_is_physical():
    vectors = clustered(600, 10, seed=5)
    ids = np.arange(len(vectors), dtype=np.int64) * 3 + 7
    exact = _lookup(ids, vectors)
    flat = FaissIndex.build(ids, vectors, exact_max=100_000)
    packed = FaissIndex.build(ids, vectors, compressed_min=1_000)
    # PQ (32 B) + SQ8 (128 B) + ids and bounds, against 512 B floats (+ ids, centroids).
    assert packed.plan.compressed and len(packed.to_bytes()) < 0.4 * len(flat.to_bytes())
    rng = np.random.default_rng(2)
    queries = vectors[rng.choice(len(vectors), 50, replace=False)] + 0.01
    with pytest.raises(VectorIndexError):
        packed.search(queries, 10)  # its own distances are approximate: never returned
    want_d, want_i = flat.search(queries, 10)
    got_d, got_i = packed.search(queries, 10, exact)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got_i, want_i, strict=True)])
    assert recall >= 0.95
    for q, d, i in zip(queries, got_d, got_i, strict=True):  # exact Euclidean distances
        np.testing.assert_allclose(d, np.linalg.norm(vectors[(i - 7) // 3] - q, axis=1),
                                   rtol=1e-5)  # fmt: skip
    np.testing.assert_allclose(got_d[:, 0], want_d[:, 0], rtol=1e-5)
    (d, found), = packed.within(queries[:1], 0.6, exact)
    (want_within_d, want_within), = flat.within(queries[:1], 0.6)
    assert set(found) <= set(want_within) and len(found) >= 0.9 * len(want_within)
    assert (d <= 0.6).all()

    gone = ids[:100]
    sq8_codes = packed._rerank._quantizer.sa_encode(vectors[:100])
    assert sum(code.tobytes() in packed.to_bytes() for code in sq8_codes) == 100
    assert packed.remove(gone) == 100 and packed.remove(gone) == 0
    _, found = packed.search(vectors[:100], 10, exact)
    assert not set(found.ravel()) & set(gone)
    blob = packed.to_bytes()
    # No removed face's re-rank codes stay in memory or in the file.
    assert not any(code.tobytes() in blob for code in sq8_codes)
    assert not packed._rerank._codes[np.isin(packed._rerank._ids, gone)].any()
    copy = FaissIndex.from_bytes(blob)
    assert copy.plan == packed.plan and list(copy.ids()) == sorted(set(ids) - set(gone))
    np.testing.assert_array_equal(
        copy.search(queries, 5, exact)[1], packed.search(queries, 5, exact)[1]
    )


def test_sq8_bounds_give_the_exact_rerank_of_every_candidate_with_few_reads():
    """The SQ8 codes only choose which candidates to read: the answer equals an exact re-rank
    of every PQ candidate, while far fewer vectors are read than there are candidates."""
    vectors = clustered(3_000, 30, seed=11)
    ids = np.arange(len(vectors), dtype=np.int64) + 1
    packed = FaissIndex.build(ids, vectors, compressed_min=1_000)
    assert packed.plan.kind == "ivfpq+sq8"
    rng = np.random.default_rng(4)
    queries = vectors[rng.choice(len(vectors), 40, replace=False)] + 0.02
    counting = CountingLookup(ids, vectors)
    got_d, got_i = packed.search(queries, 10, counting)
    depth = faiss_index.SQ8_RERANK_MIN
    _, candidates = packed._index.search(queries, depth)
    for q, d, i, pool in zip(queries, got_d, got_i, candidates, strict=True):
        want_d, want_i = _exact_order(q, pool, _lookup(ids, vectors))
        np.testing.assert_array_equal(i, want_i[:10])
        np.testing.assert_allclose(d, want_d[:10], rtol=1e-5)
    assert len(counting.reads) == len(queries) and max(counting.reads) < depth
    assert np.mean(counting.reads) < 0.5 * depth  # reads: a few past k, not every candidate
    # A radius query reads only candidates the bounds may put inside, and misses none of them.
    radius = float(np.median(got_d[:, 4]))
    counting.reads.clear()
    (d, found), = packed.within(queries[:1], radius, counting)
    _, pool = packed._index.search(queries[:1], faiss_index.WITHIN_START)
    want_d, want_i = _exact_order(queries[0], pool[0], _lookup(ids, vectors))
    assert set(found) == set(want_i[want_d <= radius]) and len(found) >= 1
    assert counting.reads[0] < faiss_index.WITHIN_START


def test_codes_only_index_saved_before_sq8_still_reads_and_searches():
    """A compressed index saved with PQ codes alone (before SQ8) loads and re-ranks from the
    exact lookup, as it did."""
    vectors = clustered(600, 10, seed=3)
    ids = np.arange(len(vectors), dtype=np.int64)
    packed = FaissIndex.build(ids, vectors, compressed_min=100)
    legacy = FaissIndex(packed._index, IndexPlan("ivfpq", packed.plan.nlist, packed.plan.nprobe,
                                                 packed.plan.pq_m))  # fmt: skip
    copy = FaissIndex.from_bytes(legacy.to_bytes())
    assert copy.plan.kind == "ivfpq" and "SQ8" not in copy.plan.describe()
    counting = CountingLookup(ids, vectors)
    d, i = copy.search(vectors[:5] + 0.01, 3, counting)
    assert list(i[:, 0]) == [0, 1, 2, 3, 4] and counting.reads == [40] * 5


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(settings, photo folder) of a library whose indexes are the compressed tier."""
    data = shared_path(*DATASET)
    tmp = tmp_path_factory.mktemp("compressed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACELEDGER_COMPRESSED_INDEX_MIN", "1")
        mp.delenv("FACELEDGER_INDEX", raising=False)
        mp.delenv("FACELEDGER_DATABASE_URL", raising=False)
        settings = make_settings(tmp / "library", compressed_index_min=1)
        out = ingest_with_an_illinois_upload(settings, tmp)
        assert out.exit_code == 0, out.output
        assert "faces_blocked" not in json.loads(out.stdout)  # the owner sees no vault count
        assert vault_face_count(settings.library) == 1
        yield settings, data


@pytest.fixture(scope="module")
def lib(world):
    opened = Library.open(world[0])
    yield opened
    opened.close()


def test_search_on_the_compressed_tier_is_exact_and_blocks(world, lib):
    settings, data = world
    store = lib.index("searchable")
    described = store.describe()
    assert "PQ64x4fs" in described["structure"] and described["faces"] == 3
    assert "PQ64x4fs" in read_header(store.path)["structure"]  # the snapshot is that tier
    ids, vectors = lib.catalog.vectors(SEARCHABLE)
    probes = vectors + np.float32(0.01)
    got_d, got_i = store.search(probes, 3)
    want_d, want_i = FaissIndex.build(ids, vectors).search(probes, 3)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_d, want_d, rtol=1e-5)  # exact, Euclidean
    (within_d, within_i), = store.within(probes[:1], 0.6)
    assert ids[0] in within_i and (within_d <= 0.6).all()
    img2 = face_of(lib, "img2.jpg")
    assert img2 in lib.index("vault").ids() and img2 not in store.ids()
    # img4 is person01 (img1, img5; img2 is blocked, so absent).
    found = searched_face_ids(settings.library, data / "img4.jpg")
    assert found == {face_of(lib, "img1.jpg"), face_of(lib, "img5.jpg")}


def test_erasure_removes_from_the_compressed_tier_and_its_snapshot(world, lib):
    settings, data = world
    img2, img3 = face_of(lib, "img2.jpg"), face_of(lib, "img3.jpg")
    custodian = lib.actor("custodian")
    store = lib.index("searchable")
    # Rebuilt, so the SQ8 ranges are trained on these faces (an index that began with one face
    # has ranges that fit it alone: correct, its bounds just rule out less).
    store.rebuild()
    before = read_header(store.path)["seq"]
    ids, vectors = lib.catalog.vectors(SEARCHABLE)
    img3_code = store._index._rerank._quantizer.sa_encode(vectors[list(ids).index(img3)][None])
    assert len(set(img3_code[0])) > 2 and img3_code.tobytes() in store.path.read_bytes()
    destruction.erase(lib, custodian, face=img3)
    erased_at = lib._feed.head()
    destruction.erase(lib, custodian, face=img2)  # a vault face
    assert img3 not in lib.index("searchable").ids() and img2 not in lib.index("vault").ids()
    fresh = Library.open(settings)  # another process: the snapshots and the log
    try:
        searchable = fresh.index("searchable")
        assert img3 not in searchable.ids() and img2 not in fresh.index("vault").ids()
        # Each snapshot was rewritten once its face was removed (the codes leave the file).
        assert before < read_header(searchable.path)["seq"] >= erased_at
        assert read_header(fresh.index("vault").path)["seq"] == fresh._feed.head()
        assert searchable.count() == 2
        # The erased face's SQ8 codes are in no file: the snapshot was rewritten without them.
        assert img3_code.tobytes() not in searchable.path.read_bytes()
    finally:
        fresh.close()
    assert img3 not in searched_face_ids(settings.library, data / "img3.jpg")


class RecordingFeed:
    """The library's own catalog feed, recording the size of every read a rebuild makes."""

    def __init__(self, feed):
        self._feed = feed
        self.batch_sizes: list[int] = []
        self.sampled = 0

    def __getattr__(self, name):
        return getattr(self._feed, name)

    def vectors(self, place, ids):
        self.sampled += len(ids)
        return self._feed.vectors(place, ids)

    def batches(self, place, size):
        for ids, vectors in self._feed.batches(place, size):
            self.batch_sizes.append(len(ids))
            yield ids, vectors


def test_a_rebuild_streams_the_catalog_in_batches(world, lib, tmp_path, monkeypatch):
    """A rebuild reads the place's ids, a training sample, then the vectors a batch at a time,
    and gives the same index as the catalog holds."""
    from faceledger.index import faiss_store

    settings, data = world
    monkeypatch.setattr(faiss_store, "REBUILD_BATCH", 2)
    feed = RecordingFeed(lib._feed)
    live = lib.index("searchable")
    store = faiss_store.FaissStore("searchable", tmp_path / "searchable.index", feed,
                                   live._tuning, lambda: None, lambda body: body)  # fmt: skip
    listing = lib._feed.place_ids("searchable")
    ids, _ = lib.catalog.vectors(SEARCHABLE)
    assert listing.upto == lib._feed.head() and list(listing.ids) == sorted(ids)
    store.rebuild()
    assert feed.batch_sizes and max(feed.batch_sizes) <= 2 and sum(feed.batch_sizes) == len(ids)
    assert feed.sampled == len(ids)  # a training sample of each (all of them, being few)
    assert list(store.ids()) == sorted(ids) and store.describe()["structure"].endswith(
        "SQ8 re-rank, exact top-k (catalog)"
    )
    probe = lib.catalog.vectors(SEARCHABLE)[1][:1] + np.float32(0.01)
    np.testing.assert_array_equal(store.search(probe, 2)[1], live.search(probe, 2)[1])
    store.close()


@settings(max_examples=60, deadline=None)
@given(
    st.sets(st.integers(0, 3_000), max_size=400),
    st.randoms(use_true_random=False),
    st.lists(st.integers(-10, 3_100), max_size=200),
)
def test_rerank_codes_find_exactly_the_faces_held(held, rnd, asked):
    """Whatever the order of adds (out of order: sorted later) and removals, a lookup finds
    exactly the ids held and not removed."""
    from faceledger.index.rerank_codes import RerankCodes

    ids = np.array(sorted(held), np.int64)
    rng = np.random.default_rng(rnd.randint(0, 2**32))
    vectors = rng.standard_normal((len(ids), 128)).astype(np.float32) * 0.1
    codes = RerankCodes.trained(rng.standard_normal((50, 128)).astype(np.float32) * 0.1)
    order = rng.permutation(len(ids))
    for part in np.array_split(order, 3):
        codes.add(ids[part], vectors[part])
    gone = ids[rng.random(len(ids)) < 0.3]
    assert codes.remove(gone) == len(gone)
    asked = np.array(asked, np.int64)
    found, _, _ = codes.approximate(np.zeros(128, np.float32), asked)
    want = asked[np.isin(asked, ids) & ~np.isin(asked, gone)]
    np.testing.assert_array_equal(found, want)
    assert len(codes) == len(ids) - len(gone)


def test_an_erase_during_a_streamed_rebuild_is_not_put_back(world, lib, tmp_path, monkeypatch):
    """Invariant 7 across the rebuild's several reads: a face erased after the rebuild read the
    log head, while its vectors stream (after the first batch), is absent once the index
    answers, as a rebuild from the catalog would have it."""
    from faceledger.index import faiss_store

    settings, data = world
    monkeypatch.setattr(faiss_store, "REBUILD_BATCH", 1)
    img1, img5 = face_of(lib, "img1.jpg"), face_of(lib, "img5.jpg")
    custodian = lib.actor("custodian")
    streamed: list[int] = []

    class EraseMidStream(RecordingFeed):
        def batches(self, place, size):
            for ids, vectors in super().batches(place, size):
                streamed.extend(int(i) for i in ids)
                yield ids, vectors
                if len(streamed) == 1:  # the stream is open: erase a face of this place
                    destruction.erase(lib, custodian, face=img5)

    live = lib.index("searchable")
    assert {img1, img5} <= set(live.ids())
    store = faiss_store.FaissStore("searchable", tmp_path / "searchable.index",
                                   EraseMidStream(lib._feed), live._tuning, lambda: None,
                                   lambda body: body)  # fmt: skip
    store.rebuild()
    assert streamed and img5 not in lib.catalog.vectors(SEARCHABLE)[0]
    assert img5 not in store.ids() and img1 in store.ids()
    probe = np.asarray(lib.catalog.vectors(SEARCHABLE)[1][:1]) + np.float32(0.01)
    assert img5 not in set(store.search(probe, 5)[1].ravel())
    store.close()
