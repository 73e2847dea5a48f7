"""Provenance round trips through folder, manifest and WARC sources."""

from __future__ import annotations

import json
import shutil

from conftest import shared_path
from helpers import cli, write_warc

from faceledger.app.library import Library


def _pick(n: int):
    root = shared_path("faces", "deepface", "tests", "unit", "dataset")
    return [root / f"img{i}.jpg" for i in range(1, n + 1)]


def test_folder_manifest_and_warc_provenance(tmp_path, settings):
    images = _pick(3)
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(images[0], folder / "a.jpg")
    (folder / "nested").mkdir()
    shutil.copy(images[1], folder / "nested" / "b.jpg")

    man_dir = tmp_path / "man"
    man_dir.mkdir()
    shutil.copy(images[0], man_dir / "same-as-a.jpg")  # same bytes as a.jpg: one photo
    shutil.copy(images[2], man_dir / "c.jpg")
    rows = [
        {
            "path": "same-as-a.jpg",
            "source_url": "https://img.example.com/a.jpg",
            "page_url": "https://www.example.com/people/a",
            "retrieved_at": "2023-02-03T04:05:06Z",
            "uploader_region": "us-ca",
            "caption": "A at the lake",
        },
        {
            "path": "c.jpg",
            "source_url": "https://cdn.other.org/c.jpg",
            "retrieved_at": "2022-12-31T23:00:00+02:00",
        },
    ]
    manifest = man_dir / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    warc = tmp_path / "crawl.warc.gz"
    write_warc(
        warc,
        [
            (
                "https://photos.example.net/b.jpg",
                "image/jpeg",
                images[1].read_bytes(),
                "2021-06-07T08:09:10Z",
            ),
            (
                "https://photos.example.net/page.html",
                "text/html",
                b"<html></html>",
                "2021-06-07T08:09:11Z",
            ),
        ],
    )

    assert cli(settings.library, "init").exit_code == 0
    result = cli(
        settings.library,
        "ingest",
        str(folder),
        "--manifest",
        str(manifest),
        "--warc",
        str(warc),
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["photos_new"] == 3
    assert summary["sources_added"] == 5
    assert summary["errors"] == []

    lib = Library.open(settings)
    actor = lib.actor(None)
    by_sha = {}
    for photo_id in range(1, 4):
        photo = lib.show_photo(actor, photo_id)
        by_sha[photo["sha256"]] = photo
    import hashlib

    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in images}
    a = by_sha[sha[images[0].name]]
    kinds = sorted((s["kind"], s["source_url"]) for s in a["sources"])
    assert kinds == [("folder", None), ("manifest", "https://img.example.com/a.jpg")]
    man_row = next(s for s in a["sources"] if s["kind"] == "manifest")
    assert man_row["page_url"] == "https://www.example.com/people/a"
    assert man_row["website"] == "example.com"
    assert man_row["retrieved_at"].startswith("2023-02-03T04:05:06")
    assert man_row["uploader_region"] == "US-CA"
    assert man_row["caption"] == "A at the lake"
    assert {"region": "US-CA", "signal": "uploader", "face_id": 0, "ref": None} in a[
        "jurisdictions"
    ]

    b = by_sha[sha[images[1].name]]
    warc_row = next(s for s in b["sources"] if s["kind"] == "warc")
    assert warc_row["source_url"] == "https://photos.example.net/b.jpg"
    assert warc_row["website"] == "photos.example.net"
    assert warc_row["retrieved_at"].startswith("2021-06-07T08:09:10")
    assert warc_row["locator"].startswith(str(warc.resolve()) + "#")

    c = by_sha[sha[images[2].name]]
    assert c["sources"][0]["retrieved_at"].startswith("2022-12-31T21:00:00")  # stored in UTC
    for photo in (a, b, c):
        assert len(photo["faces"]) >= 1
        face = photo["faces"][0]
        assert face["model"] == "dlib_face_recognition_resnet_model_v1"
        assert "face-recognition-models" in face["model_version"]
        assert face["vector_collected_at"]
        assert (settings.library / photo["stored_path"]).read_bytes() == next(
            p.read_bytes() for p in images if sha[p.name] == photo["sha256"]
        )

    # A rerun stores nothing new and adds no provenance twice.
    again = json.loads(
        cli(
            settings.library,
            "ingest",
            str(folder),
            "--manifest",
            str(manifest),
            "--warc",
            str(warc),
            "--json",
        ).stdout
    )
    assert again["photos_new"] == 0 and again["sources_added"] == 0
    assert again["photos_already_stored"] == 5


def test_exif_time_and_gps_are_read(tmp_path, settings):
    photo = shared_path("exif", "jpg", "gps", "DSCN0010.jpg")
    assert cli(settings.library, "init").exit_code == 0
    assert cli(settings.library, "ingest", str(photo), "--json").exit_code == 0
    shown = json.loads(cli(settings.library, "show", "photo", "1", "--json").stdout)
    assert shown["taken_at"].startswith("2008-10-22T16:28:39")
    assert abs(shown["gps"][0] - 43.467448) < 1e-5 and abs(shown["gps"][1] - 11.885127) < 1e-5
    assert {"region": "IT", "signal": "gps", "face_id": 0, "ref": None} in shown["jurisdictions"]
