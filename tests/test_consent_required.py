"""Issue 4, consent: where policy needs consent, faces without one on file stay unsearchable."""

from __future__ import annotations

import json
import shutil

from conftest import shared_path
from helpers import cli

from faceledger.app.library import Library


def test_consent_gates_searchability(tmp_path, settings):
    data = shared_path("faces", "deepface", "tests", "unit", "dataset")
    upload = tmp_path / "upload"
    upload.mkdir()
    for name in ("img1.jpg", "img3.jpg", "img5.jpg"):
        shutil.copy(data / name, upload / name)
    (upload / "m.csv").write_text(
        "path,page_url,subject_ref\n"
        "img1.jpg,https://members.example.org/p/1,S-1\n"  # consent comes later
        "img3.jpg,https://members.example.org/p/3,\n"  # no subject named: never consented
        "img5.jpg,https://open.example.net/p/5,\n"  # a collection that needs no consent
    )
    assert cli(settings.library, "init").exit_code == 0
    policy = settings.library / "policy.yaml"
    text = policy.read_text()
    assert "collections: []" in text
    policy.write_text(text.replace("collections: []", "collections: [members.example.org]", 1))
    shown = json.loads(cli(settings.library, "policy", "show", "--json").stdout)
    assert shown["file_has_unapplied_edits"] and shown["consent"]["collections"] == []
    assert cli(settings.library, "policy", "apply").exit_code == 0
    shown = json.loads(cli(settings.library, "policy", "show", "--json").stdout)
    assert not shown["file_has_unapplied_edits"]
    assert shown["consent"]["collections"] == ["members.example.org"]
    result = cli(settings.library, "ingest", "--manifest", str(upload / "m.csv"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # the admin sees searchable faces only
    assert summary["photos_new"] == 3 and summary["faces"] == 1 and "faces_blocked" not in summary

    lib = Library.open(settings)
    searchable_before = set(lib.index("searchable").ids())
    assert len(searchable_before) == 1  # only img5

    release = tmp_path / "release.txt"
    release.write_text("I, S-1, agree to face search of my photos for member lookup.\n")
    result = cli(settings.library, "consent", "record", "--subject", "S-1", "--purpose",
                 "member lookup", "--term", "until withdrawn", "--release-file", str(release),
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["faces_made_searchable"] == 1
    found = json.loads(cli(settings.library, "search", str(data / "img2.jpg"), "--json").stdout)
    matched_photos = {m["photo_id"] for f in found[0]["faces"] for m in f["matches"]}
    img1_photo = next(p for p in (1, 2, 3) if lib.catalog.photo(p)["sources"][0]["locator"]
                      .endswith("img1.jpg"))  # fmt: skip
    assert img1_photo in matched_photos
    # Applying policy again changes nothing: consent is part of the same decision.
    again = json.loads(cli(settings.library, "policy", "apply", "--json").stdout)
    assert again["blocked"] == 0 and again["unblocked"] == 0
    assert Library.open(settings).index("searchable").count() == 2
