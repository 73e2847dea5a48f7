"""Security finding 6: searchers see where a photo came from, never the server's file system."""

from __future__ import annotations

import shutil

from conftest import shared_path

from faceledger.app.governance import users
from faceledger.app.ingest import ingest
from faceledger.app.search import Probe, search_faces


def test_searchers_get_urls_and_admins_get_paths(library, tmp_path):
    data = shared_path("faces", "deepface", "tests", "unit", "dataset")
    src = tmp_path / "srv-collection"
    src.mkdir()
    for name in ("img1.jpg", "img3.jpg"):
        shutil.copy(data / name, src / name)
    (src / "m.csv").write_text("path,source_url\nimg1.jpg,https://example.org/1.jpg\nimg3.jpg,\n")
    admin = library.actor(None)
    assert not ingest(library, admin, manifests=[src / "m.csv"]).errors
    users.add_user(library, admin, "sam", "searcher")
    probes = [Probe(n, (data / n).read_bytes()) for n in ("img2.jpg", "img3.jpg")]

    def matches(actor):
        found = search_faces(library, actor, probes)
        return [m for entry in found for f in entry["faces"] for m in f["matches"]]

    seen = matches(library.actor("sam"))
    assert {m["source"] for m in seen} == {"https://example.org/1.jpg", None}
    assert str(tmp_path) not in repr(seen) and "locator" not in repr(seen)
    as_admin = matches(admin)
    assert len(as_admin) == len(seen)
    assert any(str(src) in p["locator"] for m in as_admin for p in m["provenance"])
