"""Invariant 6: bad input gets a clear error naming the item; the batch goes on; nothing is lost."""

from __future__ import annotations

import json
import shutil
import struct
import zlib

from conftest import shared_path
from helpers import canonical_catalog, cli

from faceledger.app.library import Library


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def test_bad_items_are_reported_and_the_run_goes_on(tmp_path, settings):
    good = shared_path("faces", "deepface", "tests", "unit", "dataset", "img1.jpg")
    good2 = shared_path("faces", "deepface", "tests", "unit", "dataset", "img2.jpg")
    assert cli(settings.library, "init").exit_code == 0
    # Something stored before the bad batch, which must survive it.
    assert cli(settings.library, "ingest", str(good), "--json").exit_code == 0
    lib = Library.open(settings)
    before = canonical_catalog(lib)

    batch = tmp_path / "batch"
    batch.mkdir()
    data = good2.read_bytes()
    (batch / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (batch / "empty.jpg").write_bytes(b"")
    (batch / "text.jpg").write_text("this is not a photo\n")
    (batch / "bomb.png").write_bytes(_png_claiming(20000, 20000))
    shutil.copy(good2, batch / "fine.jpg")
    shutil.copy(shared_path("broken-images", "decompression_bomb.gif"), batch / "bomb2.gif")
    outside = tmp_path / "secret.jpg"
    shutil.copy(good2, outside)
    manifest = batch / "manifest.csv"
    manifest.write_text(
        "path,source_url,retrieved_at,uploader_region\n"
        "fine.jpg,https://ok.example/fine.jpg,2020-01-01T00:00:00Z,US-NY\n"
        "../secret.jpg,https://evil.example/x.jpg,,\n"
        "/etc/passwd,,,\n"
        "missing.jpg,,,\n"
        "fine.jpg,,not-a-date,\n"
        "fine.jpg,,,Illinois\n"
        ",,,\n"
        "fine.jpg,a,b,c,d,e\n"
    )
    bad_warc = batch / "broken.warc.gz"
    bad_warc.write_bytes(b"WARC/1.0\r\nthis is not a warc record\r\n")

    result = cli(
        settings.library,
        "ingest",
        str(batch),
        "--manifest",
        str(manifest),
        "--warc",
        str(bad_warc),
        "--json",
    )
    assert result.exit_code == 1, result.output  # some items failed
    summary = json.loads(result.stdout)
    errors = {e["item"].rsplit("/", 1)[-1]: e for e in summary["errors"]}
    assert errors["truncated.jpg"]["error"] == "DecodeError"
    assert errors["empty.jpg"]["message"] == "the file is empty"
    assert "not a recognised image" in errors["text.jpg"]["message"]
    assert errors["bomb.png"]["error"] == "ImageTooLargeError"
    assert "FACELEDGER_MAX_PIXELS" in errors["bomb.png"]["message"]
    assert errors["bomb2.gif"]["error"] == "ImageTooLargeError"
    by_row = {
        e["item"].rsplit(":", 1)[-1]: e for e in summary["errors"] if "manifest.csv:" in e["item"]
    }
    assert by_row["3"]["error"] == "UnsafePathError"  # ../secret.jpg
    assert by_row["4"]["error"] == "UnsafePathError"  # /etc/passwd
    assert by_row["6"]["error"] == "ManifestError" and "retrieved_at" in by_row["6"]["message"]
    assert by_row["7"]["error"] == "ManifestError" and "uploader_region" in by_row["7"]["message"]
    assert by_row["8"]["error"] == "ManifestError" and "no path" in by_row["8"]["message"]
    assert by_row["9"]["error"] == "ManifestError"
    missing = [e for e in summary["errors"] if e["item"].endswith("missing.jpg")]
    assert missing and "does not exist" in missing[0]["message"]
    assert any("broken.warc.gz" in e["item"] and "WARC" in e["message"] for e in summary["errors"])
    # The good photo went in, with both its folder and manifest provenance.
    assert summary["photos_new"] == 1
    assert summary["sources_added"] == 2
    # Nothing stored earlier was lost, and every error is in the catalog too.
    after = canonical_catalog(lib)
    for table in before:
        assert set(before[table]) <= set(after[table])
    stats = json.loads(cli(settings.library, "stats", "--json").stdout)
    assert stats["ingest_errors"] == len(summary["errors"])
    assert not (settings.library / "photos").joinpath("secret.jpg").exists()


def test_every_broken_pillow_file_is_handled(tmp_path, settings):
    broken = shared_path("broken-images")
    assert cli(settings.library, "init").exit_code == 0
    result = cli(settings.library, "ingest", str(broken), "--json")
    assert result.exit_code == 1, result.output  # some items failed
    summary = json.loads(result.stdout)
    images = [
        p
        for p in broken.iterdir()
        if p.suffix.lower() in {".jpg", ".png", ".gif", ".tif", ".webp", ".bmp", ".jpeg", ".tiff"}
    ]
    handled = summary["photos_new"] + summary["photos_already_stored"] + len(summary["errors"])
    assert handled == len(images)
    assert len(summary["errors"]) >= 8
    for error in summary["errors"]:
        assert error["message"], error
