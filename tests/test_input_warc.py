"""WARC sources: damaged archives are failures with an offset; records are named by URI."""

from __future__ import annotations

import csv
import re

from conftest import shared_path
from helpers import write_warc

from faceledger.ingest import SourceFailure, SourceItem, iter_warc


def _archive(tmp_path, count=3):
    photos = [
        shared_path("broken-images", name).read_bytes()
        for name in ("hopper_orientation_6.jpg", "exif-ifd-offset.jpg", "pil_sample_cmyk.jpg")
    ]
    warc = tmp_path / "crawl.warc.gz"
    write_warc(
        warc,
        [
            (f"https://photos.example.net/{i}.jpg", "image/jpeg", photos[i], "2021-06-07T08:09:10Z")
            for i in range(count)
        ],
    )
    return warc, photos


def _split(results):
    results = list(results)
    items = [r for r in results if isinstance(r, SourceItem)]
    failures = [r for r in results if isinstance(r, SourceFailure)]
    return items, failures


def test_items_are_named_by_uri_and_located_by_offset(tmp_path):
    warc, photos = _archive(tmp_path)
    items, failures = _split(iter_warc(warc, 10**7))
    assert not failures
    assert [i.name for i in items] == [f"https://photos.example.net/{i}.jpg" for i in range(3)]
    # The stored locator is what it has always been: archive path and record offset.
    assert items[0].provenance.locator == f"{warc.resolve()}#0"
    assert all(
        re.fullmatch(rf"{re.escape(str(warc.resolve()))}#\d+", i.provenance.locator) for i in items
    )
    assert [i.read(10**7) for i in items] == photos
    assert items[0].provenance.source_url == "https://photos.example.net/0.jpg"


def test_a_warc_gz_cut_inside_a_gzip_member_is_a_failure_with_its_offset(tmp_path):
    warc, photos = _archive(tmp_path)
    whole = list(iter_warc(warc, 10**7))
    third = int(whole[2].provenance.locator.rsplit("#", 1)[1])
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(warc.read_bytes()[: third + (len(warc.read_bytes()) - third) // 2])
    items, failures = _split(iter_warc(cut, 10**7))
    assert [i.read(10**7) for i in items] == photos[:2]  # the records before the cut are kept
    (failure,) = failures
    assert failure.name == str(cut.resolve())
    assert f"byte {third:,}" in str(failure.error)
    assert "damaged archive" in str(failure.error)


def test_a_cut_in_the_last_gzip_trailer_is_still_reported(tmp_path):
    warc, _ = _archive(tmp_path, count=1)
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(warc.read_bytes()[:-4])
    items, failures = _split(iter_warc(cut, 10**7))
    assert failures and "gzip member" in str(failures[0].error)


def test_corrupt_gzip_data_is_a_failure_not_silence(tmp_path):
    warc, photos = _archive(tmp_path)
    data = bytearray(warc.read_bytes())
    third = int(list(iter_warc(warc, 10**7))[2].provenance.locator.rsplit("#", 1)[1])
    data[third + (len(data) - third) // 2] ^= 0xFF
    bad = tmp_path / "flipped.warc.gz"
    bad.write_bytes(bytes(data))
    items, failures = _split(iter_warc(bad, 10**7))
    assert [i.read(10**7) for i in items] == photos[:2]
    assert len(failures) == 1 and f"byte {third:,}" in str(failures[0].error)


def test_a_file_that_is_not_an_archive_is_a_failure(tmp_path):
    text = tmp_path / "notes.warc"
    text.write_text("   \n   Version 2.0, January 2004\nnot an archive at all\n" * 50)
    items, failures = _split(iter_warc(text, 10**7))
    assert not items and failures
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    assert "no WARC or ARC record" in str(next(iter_warc(empty, 10**7)).error)


def test_every_shared_archive_reads_as_recorded():
    root = shared_path("warc")
    with (root / "RECORDS.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        items, failures = _split(iter_warc(root / row["file"], 10**8))
        assert len(items) == int(row["image_records_incl_resource"]), row["file"]
        damaged = (
            not row["warcio_read"].startswith("ok")
            or "not followed by newline" in row["warcio_read"]
            or row["file"] == "warcio/example-space-in-url.arc"  # 12 bytes short at its end
        )
        assert bool(failures) == damaged, (row["file"], [str(f.error) for f in failures])
        for failure in failures:
            assert str(root / row["file"]) in failure.name
            assert "byte" in str(failure.error) or "blank line" in str(failure.error)
