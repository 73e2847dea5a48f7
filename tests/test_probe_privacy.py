"""Invariant 2: a probe image or its vector is never written to disk or the database."""

from __future__ import annotations

import json
import shutil

import numpy as np
from conftest import shared_path
from helpers import cli

from faceledger.app.library import Library
from faceledger.faces import FaceEngine
from faceledger.ingest import decode_image


def _library_bytes(library) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(library.rglob("*")) if p.is_file())


def test_search_leaves_no_trace_of_the_probe(tmp_path, settings):
    data = shared_path("faces", "deepface", "tests", "unit", "dataset")
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for name in ("img1.jpg", "img3.jpg", "img5.jpg"):
        shutil.copy(data / name, gallery / name)
    probe = data / "img2.jpg"  # same person as img1, never ingested
    assert cli(settings.library, "init").exit_code == 0
    assert cli(settings.library, "ingest", str(gallery)).exit_code == 0

    result = cli(settings.library, "search", str(probe), "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found[0]["faces"][0]["matches"], "the probe should match img1"

    s = settings
    rgb, _ = decode_image(probe.read_bytes(), "", s.max_file_bytes, s.max_pixels)
    vector = FaceEngine().faces(rgb)[0].vector
    stored = _library_bytes(settings.library)
    assert probe.read_bytes() not in stored
    # Neither the float32 bytes of the vector nor a prefix of them appear anywhere.
    assert vector.astype("<f4").tobytes()[:64] not in stored
    assert vector.astype("<f8").tobytes()[:64] not in stored
    lib = Library.open(settings)
    ids, vectors = lib.catalog.vectors(True)
    assert np.min(np.linalg.norm(vectors - vector, axis=1)) > 1e-4
    with lib.catalog.engine.connect() as conn:
        dump = "\n".join(conn.connection.driver_connection.iterdump())
    assert str(probe) not in dump and "img2" not in dump
