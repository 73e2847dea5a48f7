"""Manifests are read row by row: one bad row (bytes, size, path) costs that row only."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from conftest import shared_path

from faceledger.errors import InputError, ManifestError, UnsafePathError
from faceledger.ingest import ManifestHeaderError, SourceFailure, SourceItem, iter_manifest


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    photo = shared_path("broken-images", "hopper_orientation_6.jpg").read_bytes()
    base = tmp_path / "man"
    base.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg", "café.jpg"):
        (base / name).write_bytes(photo)
    return base


def _rows(items) -> dict[int, SourceItem | SourceFailure]:
    """Items by manifest line number (failures are named path:N, items path#N:...)."""
    out = {}
    for item in items:
        if isinstance(item, SourceFailure):
            out[int(item.name.rsplit(":", 1)[1])] = item
        else:
            out[int(item.provenance.locator.rsplit("#", 1)[1].split(":", 1)[0])] = item
    return out


def test_one_bad_byte_loses_only_its_row(folder):
    manifest = folder / "m.csv"
    manifest.write_bytes(b"path,caption\na.jpg,fine\nb.jpg,caf\xe9 au lait\nc.jpg,also fine\n")
    rows = _rows(iter_manifest(manifest))
    assert isinstance(rows[2], SourceItem) and rows[2].provenance.caption == "fine"
    assert isinstance(rows[3], SourceFailure)
    assert isinstance(rows[3].error, ManifestError)
    assert "not UTF-8" in str(rows[3].error) and "encoding" in str(rows[3].error)
    assert isinstance(rows[4], SourceItem) and rows[4].provenance.caption == "also fine"


def test_a_declared_encoding_reads_the_rows_that_are_not_utf8(folder):
    manifest = folder / "m.csv"
    manifest.write_bytes(
        "path,caption\na.jpg,déjà vu\n".encode()  # UTF-8 rows stay UTF-8
        + "b.jpg,café\ncafé.jpg,x\n".encode("cp1252")
    )
    rows = _rows(iter_manifest(manifest, encoding="cp1252"))
    assert rows[2].provenance.caption == "déjà vu"
    assert rows[3].provenance.caption == "café"
    assert rows[4].path == (folder / "café.jpg").resolve()


def test_an_unknown_encoding_is_refused_at_once(folder):
    (folder / "m.csv").write_text("path\na.jpg\n")
    with pytest.raises(ManifestHeaderError, match="encoding"):
        iter_manifest(folder / "m.csv", encoding="no-such-codec")


def test_a_field_over_the_csv_limit_is_one_failed_row(folder):
    manifest = folder / "m.csv"
    huge = "x" * (csv.field_size_limit() + 10)
    manifest.write_text(f'path,caption\na.jpg,one\nb.jpg,{huge}\nc.jpg,three\n"a.jpg",four\n')
    rows = _rows(iter_manifest(manifest))
    assert [type(rows[n]).__name__ for n in (2, 3, 4, 5)] == [
        "SourceItem",
        "SourceFailure",
        "SourceItem",
        "SourceItem",
    ]
    assert "field limit" in str(rows[3].error)
    assert rows[5].provenance.caption == "four"


def test_an_overlong_line_is_one_failed_row(folder):
    from faceledger.ingest.manifests import MAX_LINE_BYTES

    manifest = folder / "m.csv"
    manifest.write_text("path,caption\n" + "a.jpg," + "y," * MAX_LINE_BYTES + "\nb.jpg,two\n")
    rows = _rows(iter_manifest(manifest))
    assert isinstance(rows[2], SourceFailure) and "bytes" in str(rows[2].error)
    assert rows[3].provenance.caption == "two"


def test_nul_bytes_and_overlong_names_are_row_errors(folder):
    manifest = folder / "m.csv"
    manifest.write_bytes(
        b"path,caption\na\x00.jpg,nul\n" + b"n" * 300 + b".jpg,long\na.jpg,caption\x00\nb.jpg,ok\n"
    )
    rows = _rows(iter_manifest(manifest))
    assert "NUL" in str(rows[2].error)
    assert "300" in str(rows[3].error) or "304" in str(rows[3].error)
    assert "NUL" in str(rows[4].error)
    assert isinstance(rows[5], SourceItem)
    for n in (2, 3, 4):
        assert isinstance(rows[n].error, InputError)


def test_absolute_paths_inside_the_folder_or_root_are_allowed(folder, tmp_path):
    elsewhere = tmp_path / "photos"
    elsewhere.mkdir()
    (elsewhere / "d.jpg").write_bytes((folder / "a.jpg").read_bytes())
    os.symlink(elsewhere / "d.jpg", folder / "link-out.jpg")
    manifest = folder / "m.csv"
    manifest.write_text(
        "path\n"
        f"{folder / 'a.jpg'}\n"  # absolute, inside the manifest's folder
        f"{elsewhere / 'd.jpg'}\n"  # absolute, inside root only
        "../photos/d.jpg\n"  # relative escape
        "link-out.jpg\n"  # a link that leaves the folder
        "/etc/passwd\n"
    )
    rows = _rows(iter_manifest(manifest))
    assert isinstance(rows[2], SourceItem)
    for n in (3, 4, 5, 6):
        assert isinstance(rows[n].error, UnsafePathError), n
    rows = _rows(iter_manifest(manifest, root=elsewhere))
    assert isinstance(rows[2], SourceItem)
    assert rows[3].path == (elsewhere / "d.jpg").resolve()
    assert isinstance(rows[4], SourceItem)  # ../photos resolves inside root
    assert isinstance(rows[5], SourceItem)  # the link now lands inside root
    assert isinstance(rows[6].error, UnsafePathError)


def test_a_wrong_header_raises_at_once(folder):
    manifest = folder / "m.csv"
    manifest.write_text("file,caption\na.jpg,x\n")
    with pytest.raises(ManifestHeaderError, match="'path' column") as info:
        iter_manifest(manifest)  # no iteration needed: the call itself refuses
    assert isinstance(info.value, InputError)
    assert info.value.exit_code == 2


def test_a_header_that_is_not_utf8_raises_at_once(folder):
    (folder / "m.csv").write_bytes(b"path,capti\xf6n\na.jpg,x\n")
    with pytest.raises(ManifestHeaderError, match="not UTF-8"):
        iter_manifest(folder / "m.csv")


def test_a_fifo_named_in_a_manifest_does_not_hang(folder):
    os.mkfifo(folder / "pipe.jpg")
    (folder / "m.csv").write_text("path\npipe.jpg\na.jpg\n")
    rows = _rows(iter_manifest(folder / "m.csv"))
    with pytest.raises(InputError, match="FIFO"):
        rows[2].read(10**6)
    assert rows[3].read(10**6)


def test_the_manifest_itself_being_a_fifo_is_a_failure(folder):
    os.mkfifo(folder / "m.csv")
    (failure,) = list(iter_manifest(folder / "m.csv"))
    assert "FIFO" in str(failure.error)


def test_jsonl_rows_fail_one_by_one(folder):
    manifest = folder / "m.jsonl"
    manifest.write_bytes(
        b'{"path": "a.jpg"}\n'
        b'{"path": "b.jpg", "caption": "caf\xe9"}\n'
        + b"[" * 100000
        + b"\n"
        + json.dumps({"path": "c.jpg", "caption": "\ud800"}).encode()
        + b"\n"
        + b'{"path": "c.jpg", "caption": "last"}\n'
    )
    rows = _rows(iter_manifest(manifest))
    assert isinstance(rows[1], SourceItem)
    assert "not UTF-8" in str(rows[2].error)
    assert "JSON" in str(rows[3].error)
    assert "surrogate" in str(rows[4].error)
    assert rows[5].provenance.caption == "last"


def test_a_header_over_the_field_limit_raises_at_once(folder):
    (folder / "m.csv").write_text("path," + "h" * (csv.field_size_limit() + 1) + "\na.jpg,x\n")
    with pytest.raises(ManifestHeaderError, match="header"):
        iter_manifest(folder / "m.csv")
