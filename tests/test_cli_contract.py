"""Issue 11: bad input never crashes a run, and the CLI's exit codes and output can be trusted.

Every test makes its own real files (names written as bytes, FIFOs, cut archives, EXIF without
hemisphere references) and checks the per-item error, that the good items are stored, and the
exit status: 0 all done, 1 some items failed, 2 usage, 3 permission, 4 library/config/not found.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import shared_path
from helpers import cli, runner, write_warc
from PIL import ExifTags, Image

from faceledger.cli import app
from faceledger.errors import EXIT_CODES
from faceledger.ingest import locator_bytes

DATASET = ("faces", "deepface", "tests", "unit", "dataset")
README = Path(__file__).resolve().parents[1] / "README.md"


def _photo(name: str = "img12.jpg") -> Path:
    return shared_path(*DATASET, name)


def _json(result) -> dict:
    return json.loads(result.stdout)


def _stats(library: Path) -> dict:
    return _json(cli(library, "stats", "--json"))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, monkeypatch, tmp_path) -> Path:
    """A fresh library on SQLite, and on PostgreSQL where FACELEDGER_TEST_PG_URL is set."""
    url = request.getfixturevalue("pg_database") if request.param == "postgres" else ""
    monkeypatch.setenv("FACELEDGER_DATABASE_URL", url)
    root = tmp_path / "library"
    assert cli(root, "init").exit_code == 0
    return root


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A fresh SQLite library."""
    monkeypatch.setenv("FACELEDGER_DATABASE_URL", "")
    root = tmp_path / "library"
    assert cli(root, "init").exit_code == 0
    return root


# -- the CLI surface --------------------------------------------------------------------------
def test_version_prints_and_exits_0():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"faceledger \d+\.\d+\S*\n", result.stdout)


def test_exit_codes_are_documented_in_help_and_readme():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    readme = README.read_text()
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {meaning}" in text
        assert re.search(rf"^\| `{code}` \|", readme, re.MULTILINE), code


def test_ingest_of_a_path_that_does_not_exist_is_a_usage_error_and_no_run(root, tmp_path):
    for args in (
        [str(tmp_path / "nonexistent")],
        ["--manifest", str(tmp_path / "no.csv")],
        ["--warc", str(tmp_path / "no.warc.gz")],
        [str(_photo()), "--root", str(tmp_path / "nowhere")],
    ):
        result = cli(root, "ingest", *args, "--json")
        assert result.exit_code == 2, (args, result.output)
        assert _json(result)["error"]["type"] == "UsageError"
        assert "does not exist" in result.stderr
    assert _stats(root)["ingest_runs"] == 0


def test_a_manifest_with_the_wrong_header_is_a_usage_error_and_no_run(root, tmp_path):
    shutil.copy(_photo(), tmp_path / "a.jpg")
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,url\na.jpg,https://x.example/a.jpg\n")
    result = cli(root, "ingest", "--manifest", str(manifest), "--json")
    assert result.exit_code == 2, result.output
    assert _json(result)["error"] == {
        "type": "ManifestHeaderError",
        "message": _json(result)["error"]["message"],
    }
    assert "'path' column" in result.stderr
    manifest.write_text("path\na.jpg\n")
    unknown = cli(root, "ingest", "--manifest", str(manifest), "--encoding", "klingon")
    assert unknown.exit_code == 2 and "klingon" in unknown.stderr
    assert _stats(root)["ingest_runs"] == 0


def test_an_unknown_signal_is_refused_not_counted_as_zero(root):
    assert cli(root, "users", "add", "aud", "--role", "auditor").exit_code == 0
    bad = cli(root, "discovery", "count", "--signal", "gpsx", "--json", user="aud")
    assert bad.exit_code == 2, bad.output
    assert _json(bad)["error"]["type"] == "BadOptionError"
    assert "gpsx" in bad.stderr and "gps, uploader, publisher, subject" in bad.stderr
    good = cli(root, "discovery", "count", "--signal", "gps", "--json", user="aud")
    assert good.exit_code == 0, good.output


def test_ids_out_of_range_are_not_found_on_every_command(root):
    huge = str(2**70)
    for args in (
        ["erase", "--face", huge],
        ["erase", "--photo", huge],
        ["erase", "--optout", huge],
        ["optout", "show", huge],
        ["hold", "release", huge],
        ["show", "photo", huge],
        ["show", "face", huge],
        ["retention", "satisfied", "--reason", "done", "--face", huge],
    ):
        result = cli(root, *args, "--json")
        assert result.exit_code == 4, (args, result.output)
        assert _json(result)["error"]["type"] == "NotFoundError", args
        assert f"with id {huge}" in result.stderr.replace("\n", ""), args


def test_permission_refused_exits_3_with_the_json_shape(root):
    result = cli(root, "discovery", "count", "--json")  # the owner is an admin, not a custodian
    assert result.exit_code == 3
    assert _json(result)["error"]["type"] == "PermissionDenied"


# -- every item error is a row ----------------------------------------------------------------
def test_an_ingest_where_every_item_failed_exits_1(root, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "text.jpg").write_text("not a photo\n")
    (folder / "empty.png").write_bytes(b"")
    result = cli(root, "ingest", str(folder), "--json")
    assert result.exit_code == 1, result.output
    summary = _json(result)
    assert summary["photos_new"] == 0
    assert {Path(e["item"]).name for e in summary["errors"]} == {"text.jpg", "empty.png"}
    stats = _stats(root)
    assert stats["ingest_errors"] == 2 and stats["photos"] == 0 and stats["ingest_runs"] == 1


def test_a_search_whose_probe_cannot_be_decoded_exits_1(root, tmp_path):
    assert cli(root, "ingest", str(_photo("img1.jpg"))).exit_code == 0
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(_photo("img2.jpg").read_bytes()[:500])
    result = cli(root, "search", str(broken), str(_photo("img2.jpg")), "--json")
    assert result.exit_code == 1, result.output
    bad, good = _json(result)
    assert bad["error"] and not good.get("error")
    assert good["faces"] and good["faces"][0]["matches"]  # the good probe was still answered


@pytest.mark.usefixtures("backend")
def test_a_name_that_is_not_utf8_is_stored_losslessly_and_shown_escaped(backend, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    good = os.path.join(os.fsencode(folder), b"caf\xe9.jpg")
    bad = os.path.join(os.fsencode(folder), b"bad\xff\x01.jpg")
    shutil.copy(_photo(), good)
    with open(bad, "wb") as handle:
        handle.write(b"not a photo")
    result = cli(backend, "ingest", str(folder), "--json")
    assert result.exit_code == 1, result.output
    summary = _json(result)
    assert summary["photos_new"] == 1
    (error,) = summary["errors"]
    assert error["item"].endswith("bad\\xff\\x01.jpg") and error["error"] == "DecodeError"
    photo = _json(cli(backend, "show", "photo", "1", "--json"))
    (source,) = photo["sources"]
    assert source["locator"].endswith("caf\\xe9.jpg")
    assert locator_bytes(source["locator"]) == good  # lossless
    human = cli(backend, "--no-wrap", "show", "photo", "1")  # a long path may fold
    assert "caf\\xe9.jpg" in human.stdout
    again = _json(cli(backend, "ingest", str(folder), "--json"))  # a rerun adds nothing
    assert again["photos_already_stored"] == 1 and again["sources_added"] == 0
    assert _stats(backend)["ingest_errors"] == 2


@pytest.mark.usefixtures("backend")
def test_nul_bytes_and_overlong_names_in_a_manifest_are_row_errors(backend, tmp_path):
    shutil.copy(_photo(), tmp_path / "good.jpg")
    manifest = tmp_path / "m.csv"
    long_name = "x" * 300 + ".jpg"
    manifest.write_bytes(
        b"path,source_url\n"
        b"a\x00b.jpg,https://x.example/nul.jpg\n"
        + long_name.encode()
        + b",https://x.example/long.jpg\n"
        b"good.jpg,https://x.example/good.jpg\n"
    )
    result = cli(backend, "ingest", "--manifest", str(manifest), "--json")
    assert result.exit_code == 1, result.output
    summary = _json(result)
    rows = {e["item"].rsplit(":", 1)[-1]: e for e in summary["errors"]}
    assert set(rows) == {"2", "3"}
    assert "NUL" in rows["2"]["message"] or "null" in rows["2"]["message"]
    assert "255" in rows["3"]["message"]
    assert summary["photos_new"] == 1
    assert _stats(backend)["ingest_errors"] == 2


def test_a_fifo_named_in_a_manifest_is_an_error_not_a_hang(root, tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    shutil.copy(_photo(), tmp_path / "good.jpg")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path\npipe.jpg\ngood.jpg\n")
    result = cli(root, "ingest", "--manifest", str(manifest), "--json")
    assert result.exit_code == 1, result.output
    summary = _json(result)
    (error,) = summary["errors"]
    assert "m.csv#2:pipe.jpg" in error["item"] and "FIFO" in error["message"].upper()
    assert summary["photos_new"] == 1


def test_a_manifest_in_a_declared_encoding_with_absolute_paths_under_root(root, tmp_path):
    photos = tmp_path / "store"
    photos.mkdir()
    shutil.copy(_photo(), photos / "café.jpg")
    elsewhere = tmp_path / "manifests"
    elsewhere.mkdir()
    manifest = elsewhere / "m.csv"
    manifest.write_bytes(
        b"path,caption\n" + str(photos / "café.jpg").encode() + b",Caf\xe9 (cp1252)\n"
    )
    refused = cli(root, "ingest", "--manifest", str(manifest), "--json")
    assert refused.exit_code == 1  # not UTF-8, and outside the manifest's folder
    result = cli(
        root, "ingest", "--manifest", str(manifest), "--encoding", "cp1252",
        "--root", str(photos), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _json(result)["photos_new"] == 1
    photo = _json(cli(root, "show", "photo", "1", "--json"))
    assert photo["sources"][0]["caption"] == "Café (cp1252)"


def test_a_warc_cut_inside_a_gzip_member_keeps_the_records_before_it(root, tmp_path):
    photos = [_photo(n).read_bytes() for n in ("img12.jpg", "img16.jpg", "img21.jpg")]
    records = [(f"https://photos.example.net/{i}.jpg", "image/jpeg", data, "2021-06-07T08:09:10Z")
               for i, data in enumerate(photos)]  # fmt: skip
    records.insert(1, ("https://photos.example.net/broken.jpg", "image/jpeg", b"not a jpeg",
                       "2021-06-07T08:09:10Z"))  # fmt: skip
    whole = tmp_path / "crawl.warc.gz"
    write_warc(whole, records)
    data = whole.read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: len(data) - len(photos[2]) // 2])  # inside the last record's member
    result = cli(root, "ingest", "--warc", str(cut), "--json")
    assert result.exit_code == 1, result.output
    summary = _json(result)
    errors = {e["item"]: e for e in summary["errors"]}
    # A bad record is named by its URL, the damaged archive by its path and the offset reached.
    assert errors["https://photos.example.net/broken.jpg"]["error"] == "DecodeError"
    assert "damaged archive" in errors[str(cut.resolve())]["message"]
    assert summary["photos_new"] == 2
    photo = _json(cli(root, "show", "photo", "1", "--json"))
    assert re.fullmatch(rf"{re.escape(str(cut.resolve()))}#\d+", photo["sources"][0]["locator"])


def _jpeg_with_gps_but_no_references() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.IFD.GPSInfo] = {  # Chicago, but without GPSLatitudeRef / GPSLongitudeRef
        ExifTags.GPS.GPSLatitude: (41.0, 52.0, 48.0),
        ExifTags.GPS.GPSLongitude: (87.0, 37.0, 48.0),
    }
    out = io.BytesIO()
    Image.open(_photo("img1.jpg")).save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_gps_without_a_hemisphere_is_stored_as_unknown_and_shown(root, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "chicago.jpg").write_bytes(_jpeg_with_gps_but_no_references())
    (folder / "broken.jpg").write_text("nope")
    result = cli(root, "ingest", str(folder), "--json")
    assert result.exit_code == 1, result.output
    summary = _json(result)
    assert summary["photos_new"] == 1 and len(summary["errors"]) == 1
    photo = _json(cli(root, "show", "photo", "1", "--json"))
    assert photo["gps"] is None  # not (41.88, 87.63), a point in China
    assert "GPSLatitudeRef" in photo["gps_note"] and "unknown" in photo["gps_note"]
    assert not [j for j in photo["jurisdictions"] if j["signal"] == "gps"]
    assert "gps_note" in cli(root, "show", "photo", "1").stdout


def test_decoder_warnings_are_rows_not_stderr(root, tmp_path, capfd):
    noisy = shared_path("broken-images", "crash-0da013a13571cc8eb457a39fee8db18f8a3c7127.tif")
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(noisy, folder / "noisy.tif")
    result = cli(root, "ingest", str(folder), "--json")
    summary = _json(result)
    messages = [w["message"] for w in summary["warnings"]] + [
        e["message"] for e in summary["errors"]
    ]
    assert any("Fax4Decode" in m for m in messages)
    assert "Fax4Decode" not in capfd.readouterr().err
    assert _stats(root)["ingest_warnings"] >= 1


def test_an_exception_from_one_item_is_a_row_and_leaves_no_file(root, tmp_path, monkeypatch):
    from faceledger.app import ingest as pipeline

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(_photo("img12.jpg"), folder / "a.jpg")
    shutil.copy(_photo("img16.jpg"), folder / "b.jpg")
    original = pipeline._Writer._store_file
    victim = hashlib.sha256(_photo("img12.jpg").read_bytes()).hexdigest()

    def store_then_fail(self, job, relative):
        original(self, job, relative)
        if job.digests.sha256 == victim:  # the file is written, then the transaction fails
            raise RuntimeError("the commit failed")

    monkeypatch.setattr(pipeline._Writer, "_store_file", store_then_fail)
    result = cli(root, "ingest", str(folder), "--json")
    assert result.exit_code == 1, result.output
    summary = _json(result)
    (error,) = summary["errors"]
    assert error["item"].endswith("a.jpg") and "RuntimeError: the commit failed" in error["message"]
    assert summary["photos_new"] == 1
    stored = [p.name for p in (root / "photos").rglob("*") if p.is_file()]
    assert len(stored) == 1  # b.jpg's file only: a.jpg's was removed with its transaction
    runs = _json(cli(root, "stats", "--json"))
    assert runs["photos"] == 1


_FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write over the limit fails with EFBIG
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from faceledger.cli import app
sys.argv = ["faceledger", "--library", sys.argv[2], "ingest", sys.argv[3], "--json"]
app()
"""


def test_a_file_size_limit_mid_run_is_an_error_naming_the_item(root, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(_photo("img12.jpg"), folder / "a_small.jpg")
    shutil.copy(_photo("img1.jpg"), folder / "b_big.jpg")  # 2.2 MB, over the 1 MB limit
    shutil.copy(_photo("img16.jpg"), folder / "c_small.jpg")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "FACELEDGER_WORKERS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(1 << 20), str(root), str(folder)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    (error,) = summary["errors"]
    assert error["item"].endswith("b_big.jpg") and error["error"] == "StorageError"
    assert "File too large" in error["message"]
    assert summary["photos_new"] == 2  # the items after it were still stored
    # The catalog is consistent: each photo row has its file, and no file lacks a row.
    photos = [_json(cli(root, "show", "photo", str(i), "--json")) for i in (1, 2)]
    files = sorted(str(p.relative_to(root)) for p in (root / "photos").rglob("*") if p.is_file())
    assert files == sorted(p["stored_path"] for p in photos)
    assert _stats(root)["ingest_errors"] == 1


def test_a_catalog_that_cannot_grow_stops_the_run_with_a_clear_error(root, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in (12, 16, 21, 11, 17, 2, 3, 4, 5, 6, 7, 8, 9, 10):
        shutil.copy(_photo(f"img{n}.jpg"), folder / f"p{n:02d}.jpg")
    limit = (root / "catalog.sqlite").stat().st_size  # not one more page for the catalog
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "FACELEDGER_WORKERS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(limit), str(root), str(folder)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 4, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    error = " ".join(done.stderr.split())
    assert re.search(r"the run stopped at \S+/p\d\d\.jpg: cannot store this item", error), error
    assert "Photos stored before it are kept" in error
    stats = _stats(root)
    assert stats["photos"] >= 1
    ids = range(1, stats["photos"] + 1)
    shown = [_json(cli(root, "show", "photo", str(i), "--json")) for i in ids]
    files = sorted(str(p.relative_to(root)) for p in (root / "photos").rglob("*") if p.is_file())
    assert files == sorted(p["stored_path"] for p in shown)
    rerun = cli(root, "ingest", str(folder), "--json")  # with room again, the rerun completes
    assert rerun.exit_code == 0, rerun.output
    assert _stats(root)["photos"] == len(list(folder.iterdir()))


# -- tables -----------------------------------------------------------------------------------
def test_long_names_fold_in_tables_and_stay_whole_with_no_wrap(root, tmp_path):
    folder = tmp_path / ("a-folder-with-a-rather-long-name-" * 3)
    folder.mkdir()
    name = "broken_data_stream_" + "z" * 70 + ".jpg"
    (folder / name).write_text("not a photo")
    folded = cli(root, "ingest", str(folder), env={"COLUMNS": "80"})
    assert folded.exit_code == 1
    lines = folded.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    cells = "".join(
        part.strip() for line in lines for part in line.split("│")[1:2]
    )  # the item column, its folded lines joined
    assert str(folder / name) in cells
    whole = runner.invoke(
        app, ["--library", str(root), "--no-wrap", "ingest", str(folder)], env={"COLUMNS": "80"}
    )
    assert whole.exit_code == 1
    assert any(str(folder / name) in line for line in whole.stdout.splitlines())
