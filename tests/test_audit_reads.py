"""Invariant 4 for the core reads: each search, show and discovery answer is an audit entry."""

from __future__ import annotations

import json
import shutil

from conftest import shared_path
from helpers import cli

from faceledger import audit
from faceledger.app.library import Library


def test_every_biometric_read_is_audited(tmp_path, settings):
    data = shared_path("faces", "deepface", "tests", "unit", "dataset")
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(data / "img1.jpg", folder / "img1.jpg")
    assert cli(settings.library, "init").exit_code == 0
    assert cli(settings.library, "ingest", str(folder)).exit_code == 0
    lib = Library.open(settings)

    def actions() -> list[str]:
        return [e["action"] for e in audit.export(lib.catalog.engine)]

    before = len(actions())
    found = json.loads(cli(settings.library, "search", str(data / "img2.jpg"), "--json").stdout)
    face_id = found[0]["faces"][0]["matches"][0]["face_id"]
    assert cli(settings.library, "show", "face", str(face_id)).exit_code == 0
    assert cli(settings.library, "show", "photo", "1").exit_code == 0
    assert cli(settings.library, "reindex").exit_code == 0
    entries = list(audit.export(lib.catalog.engine))[before:]
    assert [e["action"] for e in entries] == ["search", "show.face", "show.photo", "reindex"]
    assert entries[0]["object_ids"]["faces"] == [face_id]
    assert entries[0]["actor"] == "owner"
    assert "ingest.photo" in actions() and "ingest.run" in actions()
    assert audit.verify(lib.catalog.engine).ok
