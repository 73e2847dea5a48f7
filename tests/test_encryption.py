"""Encryption at rest: vectors and index files hold no plaintext; without the key nothing reads
them and search refuses clearly; key rotation re-seals everything."""

from __future__ import annotations

import pytest
from conftest import make_settings, shared_path
from governance_support import _build, all_bytes, open_copy
from helpers import cli
from sqlalchemy import select

from faceledger.app.governance import keys
from faceledger.app.library import Library
from faceledger.catalog import schema as t
from faceledger.errors import ConfigError, KeyMissingError
from faceledger.index.faiss_store import read_header

pytest_plugins = ["governance_fixtures"]  # its seeded-library fixtures


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="session")
def sealed_template(tmp_path_factory, key_dir):
    root = tmp_path_factory.mktemp("sealed") / "library"
    key_file = key_dir / "first.key"
    keys.new_key_file(root, key_file)
    _build(root, key_file=str(key_file))
    return root, key_file


@pytest.fixture
def sealed(sealed_template, tmp_path):
    root, key_file = sealed_template
    s = open_copy(root, tmp_path / "library", key_file=str(key_file))
    yield s, key_file
    s.lib.close()


def _plain_vectors(lib) -> list[bytes]:
    ids, vectors = lib.catalog.vectors(t.faces.c.status == "active")
    assert len(ids) >= 3
    return [v.astype("<f4").tobytes() for v in vectors]


def _assert_no_plaintext(root, vectors):
    blob = all_bytes(root)
    for v in vectors:
        assert v not in blob and v[:64] not in blob and v[-64:] not in blob


def test_vectors_and_index_files_hold_no_plaintext(sealed):
    s, _ = sealed
    vectors = _plain_vectors(s.lib)
    with s.lib.catalog.engine.connect() as conn:
        kids = set(conn.scalars(select(t.faces.c.vector_key_id)))
    assert len(kids) == 1 and None not in kids
    for name in ("searchable", "vault"):
        path = s.root / "index" / f"{name}.faiss"
        assert read_header(path)["sealed"] and keys.INDEX_MAGIC in path.read_bytes()[:8192]
    _assert_no_plaintext(s.root, vectors)


def test_without_the_key_nothing_reads_and_search_refuses(sealed, tmp_path):
    s, _ = sealed
    s.lib.close()
    lib = Library.open(make_settings(s.root))  # no key configured
    try:
        for name in ("searchable", "vault"):
            with pytest.raises(KeyMissingError, match="FACELEDGER_KEY_FILE"):
                lib.index(name).catch_up()
        with pytest.raises(KeyMissingError, match="encrypted with key"):
            lib.catalog.vectors(t.faces.c.status == "active")
        (s.root / "index" / "searchable.faiss").unlink()  # rebuilding needs the key too
        with pytest.raises(KeyMissingError):
            lib.index("searchable").catch_up()
        with pytest.raises(KeyMissingError):  # and so does storing a new vector
            lib.catalog.sealer.seal(b"x" * 512)
    finally:
        lib.close()
    probe = shared_path("faces", "deepface", "tests", "unit", "dataset", "img2.jpg")
    result = cli(s.root, "search", str(probe))
    assert result.exit_code == 4  # a library error: the key is missing
    assert "encrypted with key" in result.stderr and "FACELEDGER_KEY_FILE" in result.stderr


def test_key_rotate_reseals_everything(sealed, key_dir, monkeypatch):
    s, old_key = sealed
    before = _plain_vectors(s.lib)
    admin = s.lib.actor(None)
    new_key = key_dir / "rotated.key"
    result = keys.rotate(s.lib, admin, new_key)
    assert result["key_file_created"] and result["faces"] == len(before)
    s.lib.close()
    with pytest.raises(KeyMissingError):  # the old key no longer opens anything
        Library.open(make_settings(s.root, key_file=str(old_key))).index("searchable").catch_up()
    lib = Library.open(make_settings(s.root, key_file=str(new_key)))
    try:
        assert sorted(_plain_vectors(lib)) == sorted(before)
        assert lib.index("searchable").count() + lib.index("vault").count() == len(before)
    finally:
        lib.close()
    _assert_no_plaintext(s.root, before)
    monkeypatch.setenv("FACELEDGER_KEY_FILE", str(new_key))
    probe = shared_path("faces", "deepface", "tests", "unit", "dataset", "img2.jpg")
    found = cli(s.root, "search", "--json", str(probe))
    assert found.exit_code == 0, found.stderr


def test_rotating_a_plain_library_encrypts_it(seeded, key_dir):
    before = _plain_vectors(seeded.lib)
    assert before[0] in all_bytes(seeded.root)
    keys.rotate(seeded.lib, seeded.lib.actor(None), key_dir / "from-plain.key")
    seeded.lib.sync_indexes()
    _assert_no_plaintext(seeded.root, before)


def test_key_files_stay_outside_the_library(seeded):
    with pytest.raises(ConfigError, match="inside the library"):
        keys.new_key_file(seeded.root, seeded.root / "k.key")
    with pytest.raises(ConfigError, match="inside the library"):
        keys.rotate(seeded.lib, seeded.lib.actor(None), seeded.root / "index" / "k.key")
    result = cli(seeded.root, "key", "generate", "--key-file", str(seeded.root / "x.key"))
    assert result.exit_code == 2 and "inside the library" in result.stderr


def test_init_with_a_key_file(tmp_path, key_dir):
    settings = keys.key_file_for_init(make_settings(tmp_path / "lib"), key_dir / "init.key")
    lib = Library.create(settings)
    kid = keys.record_library_key(lib, "owner")
    lib.close()
    plain = Library.open(make_settings(tmp_path / "lib"))
    try:
        with pytest.raises(KeyMissingError, match=kid):
            plain.catalog.sealer.seal(b"v" * 512)  # no face yet, still refused without the key
    finally:
        plain.close()
    with pytest.raises(ConfigError, match="inside the library"):
        keys.key_file_for_init(make_settings(tmp_path / "lib"), tmp_path / "lib" / "k.key")
