"""The server backend: the same ingest, search and blocking on PostgreSQL as on SQLite."""

from __future__ import annotations

import json
import os
import shutil

from conftest import make_settings, shared_path
from helpers import canonical_catalog, cli

from faceledger.app.library import Library

PG_URL = os.environ.get("FACELEDGER_TEST_PG_URL")


def test_postgres_catalog_matches_sqlite(tmp_path, pg_database, monkeypatch):
    data = shared_path("faces", "deepface", "tests", "unit", "dataset")
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("img1.jpg", "img3.jpg"):
        shutil.copy(data / name, folder / name)
    manifest = tmp_path / "m.csv"
    shutil.copy(data / "img2.jpg", tmp_path / "img2.jpg")
    manifest.write_text("path,source_url,uploader_region\nimg2.jpg,https://x.example/2.jpg,US-IL\n")

    libs = {}
    for backend, url in (("sqlite", ""), ("postgres", pg_database)):
        root = tmp_path / backend
        monkeypatch.setenv("FACELEDGER_DATABASE_URL", url)
        assert cli(root, "init").exit_code == 0
        result = cli(root, "ingest", str(folder), "--manifest", str(manifest), "--json")
        assert result.exit_code == 0, result.output
        assert "faces_blocked" not in json.loads(result.stdout)  # admins: no vault count
        found = json.loads(cli(root, "search", str(data / "img4.jpg"), "--json").stdout)
        libs[backend] = (Library.open(make_settings(root, database_url=url)), found)

    sqlite_lib, sqlite_found = libs["sqlite"]
    pg_lib, pg_found = libs["postgres"]
    assert pg_lib.catalog.engine.dialect.name == "postgresql"

    def strip(dump):  # paths differ by library; content must not
        return {
            k: [
                tuple(x for x in row if not (isinstance(x, str) and str(tmp_path) in x))
                for row in rows
            ]
            for k, rows in dump.items()
        }

    assert strip(canonical_catalog(pg_lib)) == strip(canonical_catalog(sqlite_lib))
    distances = [[m["distance"] for f in e["faces"] for m in f["matches"]] for e in pg_found]
    assert distances == [
        [m["distance"] for f in e["faces"] for m in f["matches"]] for e in sqlite_found
    ]
    assert distances[0], "img4 should match img1 (same person)"
    from faceledger import audit

    assert audit.verify(pg_lib.catalog.engine).ok


def test_postgres_feed_streams_a_place_for_a_rebuild(tmp_path, pg_database, monkeypatch):
    """On PostgreSQL a rebuild's reads (the place's ids, then its vectors through a
    server-side cursor, a batch at a time) cover exactly the faces in the place."""
    data = shared_path("faces", "deepface", "tests", "unit", "dataset")
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("img1.jpg", "img2.jpg", "img3.jpg"):
        shutil.copy(data / name, folder / name)
    monkeypatch.setenv("FACELEDGER_DATABASE_URL", pg_database)
    root = tmp_path / "library"
    assert cli(root, "init").exit_code == 0
    assert cli(root, "ingest", str(folder)).exit_code == 0
    lib = Library.open(make_settings(root, database_url=pg_database))
    try:
        listing = lib._feed.place_ids("searchable")
        batches = list(lib._feed.batches("searchable", 1))
        assert len(listing.ids) == 3 and listing.upto == lib._feed.head()
        assert [len(ids) for ids, _ in batches] == [1, 1, 1]
        assert sorted(int(ids[0]) for ids, _ in batches) == list(listing.ids)
        streamed = {int(ids[0]): vectors[0] for ids, vectors in batches}
        ids, vectors = lib._feed.vectors("searchable", listing.ids)
        for face_id, vector in zip(ids, vectors, strict=True):
            assert (streamed[int(face_id)] == vector).all()
        store = lib.index("searchable")
        store.rebuild()
        assert list(store.ids()) == list(listing.ids)
    finally:
        lib.close()
