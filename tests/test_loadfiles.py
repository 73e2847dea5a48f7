"""Load files (DAT, OPT), Bates numbers and productions: round trips, continuity, hashes."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import shared_path
from PIL import Image

from faceledger.discovery import production as production_module
from faceledger.discovery.loadfiles import (
    DAT_FIELDS,
    NEWLINE_MARKER,
    LoadFileError,
    OptRow,
    bates_number,
    dat_date,
    dat_text,
    dat_value,
    opt_text,
    parse_bates,
    parse_dat,
    parse_opt,
    read_dat,
    read_opt,
    write_dat,
    write_opt,
)
from faceledger.discovery.production import (
    MANIFEST_NAME,
    ProductionError,
    ProductionItem,
    next_number_after,
    verify_production,
    write_production,
)

NASTY = [
    "",
    "plain",
    "þ",
    "þþ",
    "¶",
    "þ¶þ",
    "¶þ¶",
    "a\r\nb",
    "a\nb",
    "a\rb",
    "\r\n",
    "trailing newline\n",
    " leading and trailing spaces ",
    "®",
    "Brand®.jpg",
    "\"double\" and 'single' quotes, commas; semicolons",
    "\ufeffBOM inside",
    "\x14 DC4",
    "tab\there",
    "nul\x00byte",
    "Ünïcödé 漢字 עברית 🙂",
    "https://example.com/a?b=1&c=þ¶#frag",
]


DATASET = ("faces", "deepface", "tests", "unit", "dataset")


def _rows(values: list[str]) -> list[dict[str, str]]:
    # Rotate the nasty values through every field, so each field sees each value.
    return [
        {field: values[(r + f) % len(values)] for f, field in enumerate(DAT_FIELDS)}
        for r in range(len(values))
    ]


# --- Bates ---------------------------------------------------------------------------------


def test_bates_number_and_parse():
    assert bates_number("FL", 1) == "FL00000001"
    assert bates_number("ABC-", 123, width=6) == "ABC-000123"
    assert parse_bates("FL00000001") == ("FL", 1)
    # A prefix that ends in digits still splits at the fixed width.
    assert parse_bates(bates_number("VOL2", 42)) == ("VOL2", 42)
    assert parse_bates(bates_number("X", 99_999_999)) == ("X", 99_999_999)


@pytest.mark.parametrize(
    ("prefix", "n", "width"),
    [("FL", -1, 8), ("FL", 10**8, 8), ("", 1, 8), ("F L", 1, 8), ("FL,", 1, 8), ("FL", 1, 0)],
)
def test_bad_bates_numbers_are_refused(prefix, n, width):
    with pytest.raises(LoadFileError):
        bates_number(prefix, n, width)


@pytest.mark.parametrize("value", ["FL0000001", "00000001", "FL0000000x", "FL０００００００1"])
def test_bad_bates_values_do_not_parse(value):
    with pytest.raises(LoadFileError):
        parse_bates(value)


# --- DAT -----------------------------------------------------------------------------------


def test_dat_round_trips_nasty_values(tmp_path):
    rows = _rows(NASTY)
    path = tmp_path / "x.dat"
    write_dat(path, rows)
    parsed = read_dat(path)
    assert parsed.fields == DAT_FIELDS
    assert parsed.rows == rows
    # And from text, as another program would hand it over.
    assert parse_dat(dat_text(rows)).rows == rows


def test_dat_bytes_follow_the_documented_format(tmp_path):
    path = tmp_path / "x.dat"
    write_dat(path, [{"BEGBATES": "FL00000001", "FILENAME": "a.jpg"}])
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf\xc3\xbeBEGBATES\xc3\xbe\xc2\xb6\xc3\xbeENDBATES")
    lines = data.decode("utf-8-sig").split("\r\n")
    assert lines[-1] == "" and len(lines) == 3  # header, one record, each CRLF-ended
    assert "\n" not in "".join(lines)
    assert lines[1].startswith("þFL00000001þ¶þþ¶þa.jpgþ¶")


def test_dat_newline_marker_mode_gives_one_physical_line_per_record():
    rows = [{"FILENAME": "two\r\nlines"}, {"FILENAME": "three\nshort\rlines"}]
    text = dat_text(rows, newline_marker=NEWLINE_MARKER)
    assert (
        text.count("\r\n") == 3 and text.count("\n") == 3 and "\r" not in text.replace("\r\n", "")
    )
    parsed = parse_dat(text, newline_marker=NEWLINE_MARKER)
    assert [r["FILENAME"] for r in parsed.rows] == ["two\nlines", "three\nshort\nlines"]
    # A literal ® would come back as a line break, so that mode refuses it.
    with pytest.raises(LoadFileError, match="newline marker"):
        dat_text([{"FILENAME": "Brand®.jpg"}], newline_marker=NEWLINE_MARKER)


def test_dat_reads_the_dc4_separator_variant():
    text = "\ufeffþBEGBATESþ\x14þFILENAMEþ\r\nþFL00000001þ\x14þa¶b.jpgþ\r\n"
    assert parse_dat(text).rows == [{"BEGBATES": "FL00000001", "FILENAME": "a¶b.jpg"}]


def test_dat_value_conversions():
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert dat_value(None) == ""
    assert dat_value(True) == "Y" and dat_value(False) == "N"
    assert dat_value(when) == "2024-05-06 07:08:09"
    # Another offset and microseconds: UTC, to the second.
    later = datetime(2026, 12, 1, 9, 34, 42, 962495, tzinfo=timezone(timedelta(hours=1)))
    assert dat_value(later) == "2026-12-01 08:34:42"
    assert dat_date("2026-12-01T08:34:42.962495+00:00") == "2026-12-01 08:34:42"
    assert dat_value(date(2024, 5, 6)) == "2024-05-06"
    assert dat_value(["US-IL", "US-WI"]) == "US-IL;US-WI"
    assert dat_value({"US-WI", "US-IL"}) == "US-IL;US-WI"
    assert dat_value(7) == "7"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "þAþ¶þBþ\r\nþ1þ\r\n",  # too few values
        "þAþ¶þBþ\r\nþ1þx¶þ2þ\r\n",  # text after a closing qualifier
        "þAþ¶þAþ\r\n",  # repeated field
    ],
)
def test_malformed_dat_is_refused(text):
    with pytest.raises(LoadFileError):
        parse_dat(text)


def test_dat_refuses_unknown_fields():
    with pytest.raises(LoadFileError, match="not in the header"):
        dat_text([{"NOPE": "x"}])


# --- OPT -----------------------------------------------------------------------------------


def test_opt_round_trips(tmp_path):
    rows = [
        OptRow("FL00000001", "VOL001", r"NATIVES\FL00000001.jpg", True, True, True, 1),
        OptRow("FL00000002", "VOL001", r"IMAGES\FL00000002.tif", True, page_count=2),
        OptRow("FL00000003", "", r"IMAGES\FL00000003.tif", False),
        OptRow("FL00000004", "VÖL", r"IMAGES\ünï.tif", True, page_count=1),
    ]
    path = tmp_path / "x.opt"
    write_opt(path, rows)
    data = path.read_bytes()
    assert data.count(b"\r\n") == 4 and data.count(b"\n") == 4
    assert data.splitlines()[0] == rb"FL00000001,VOL001,NATIVES\FL00000001.jpg,Y,Y,Y,1"
    assert data.splitlines()[2] == rb"FL00000003,,IMAGES\FL00000003.tif,,,,"
    assert read_opt(path) == rows


def test_opt_parser_accepts_short_lines_and_lower_case_flags():
    assert parse_opt("A,V,p.tif,y\n\nB,V,q.tif\n") == [
        OptRow("A", "V", "p.tif", True),
        OptRow("B", "V", "q.tif", False),
    ]


@pytest.mark.parametrize(
    "row",
    [
        OptRow("FL,1", "V", "p.tif", True),
        OptRow("FL1", "V", "a,b.tif", True),
        OptRow("FL1", "V\n", "p.tif", True),
        OptRow("", "V", "p.tif", True),
        OptRow("FL1", "V", "p.tif", True, page_count=0),
    ],
)
def test_opt_refuses_what_it_cannot_write_unambiguously(row):
    with pytest.raises(LoadFileError):
        opt_text([row])


@pytest.mark.parametrize(
    "text", ["A,V\r\n", "A,V,p,Y,,,,extra\r\n", "A,V,p,X,,,1\r\n", "A,V,p,Y,,,x"]
)
def test_malformed_opt_is_refused(text):
    with pytest.raises(LoadFileError):
        parse_opt(text)


# --- productions ---------------------------------------------------------------------------


def _natives(folder: Path, count: int, start: int = 0) -> list[ProductionItem]:
    """Real photos of the shared set: odd ones as the JPEGs they are, even ones made PNG."""
    shared = shared_path(*DATASET)
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(start, start + count):
        original = shared / f"img{i + 1}.jpg"
        if i % 2:
            path = folder / f"photo{i}.jpg"
            shutil.copy(original, path)
        else:
            path = folder / f"photo{i}.png"
            with Image.open(original) as image:
                image.thumbnail((300, 300))
                image.save(path)
        items.append(
            ProductionItem(
                source=path,
                photo_id=100 + i,
                extension="jpg" if i % 2 else ".png",
                metadata={
                    "FILENAME": NASTY[i % len(NASTY)] + f"#{i}",
                    "SOURCE_URL": f"https://example.com/{i}.jpg",
                    "PAGE_URL": "https://example.com/page?þ=¶",
                    "RETRIEVED_AT": datetime(2024, 1, 1 + i, tzinfo=UTC),
                    "VECTOR_COLLECTED_AT": datetime(2024, 2, 1 + i, tzinfo=UTC),
                    "JURISDICTIONS": ["US-IL", "US-WI"] if i % 2 else [],
                    "BLOCKED": bool(i % 2),
                },
            )
        )
    return items


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_manifest(out_dir: Path) -> None:
    lines = (out_dir / MANIFEST_NAME).read_text("ascii").splitlines()
    listed = {}
    for line in lines:
        digest, name = line.split("  ", 1)
        listed[name] = digest
    # Every file written is listed (except the manifest itself), and every hash matches.
    written = {
        p.relative_to(out_dir).as_posix()
        for p in out_dir.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME
    }
    assert set(listed) == written
    for name, digest in listed.items():
        assert _sha256(out_dir / name) == digest, name


def test_two_productions_have_unique_continuous_bates_and_true_hashes(tmp_path):
    first_items = _natives(tmp_path / "src", 3)
    second_items = _natives(tmp_path / "src", 4, start=3)

    one = write_production(tmp_path / "prod1", "FL", 1, first_items, "VOL001")
    # The caller carries the numbering: from the result, or from the previous DAT.
    assert next_number_after(one.dat_path, "FL") == one.next_number == 4
    two = write_production(tmp_path / "prod2", "FL", one.next_number, second_items, "VOL002")

    bates = [d.bates for d in one.documents + two.documents]
    assert len(set(bates)) == len(bates) == 7
    assert [parse_bates(b) for b in bates] == [("FL", n) for n in range(1, 8)]
    assert (one.first_bates, one.last_bates, two.first_bates, two.last_bates) == (
        "FL00000001",
        "FL00000003",
        "FL00000004",
        "FL00000007",
    )

    for result, items in ((one, first_items), (two, second_items)):
        out = result.out_dir
        _check_manifest(out)
        assert verify_production(out) == []
        assert result.manifest_sha256 == _sha256(result.manifest_path)
        if shutil.which("sha256sum"):
            subprocess.run(["sha256sum", "--check", "--quiet", MANIFEST_NAME], cwd=out, check=True)

        dat = read_dat(result.dat_path)
        opt = read_opt(result.opt_path)
        assert dat.fields == DAT_FIELDS
        assert len(dat.rows) == len(opt) == len(items) == len(result.documents)
        for item, doc, row, page in zip(items, result.documents, dat.rows, opt, strict=True):
            native = out / doc.native_path
            ext = item.extension.removeprefix(".")
            assert doc.native_path == f"NATIVES/{doc.bates}.{ext}"
            assert native.read_bytes() == item.source.read_bytes()
            assert row["BEGBATES"] == row["ENDBATES"] == doc.bates == page.image_id
            assert row["NATIVEPATH"] == f"NATIVES\\{doc.bates}.{ext}"
            # The page image is a JPEG rendition made for the production, never the native.
            assert page.image_path == f"IMAGES\\{doc.bates}.jpg"
            with Image.open(out / "IMAGES" / f"{doc.bates}.jpg") as image:
                assert image.format == "JPEG"
            assert row["SHA256HASH"] == _sha256(native) == doc.sha256
            assert row["FILESIZE"] == str(native.stat().st_size)
            assert row["FILEEXT"] == ext and row["PRODVOL"] == result.volume
            assert row["MD5HASH"] == hashlib.md5(native.read_bytes()).hexdigest() == doc.md5
            assert row["SHA1HASH"] == hashlib.sha1(native.read_bytes()).hexdigest() == doc.sha1
            assert doc.photo_id == item.photo_id
            for key, value in item.metadata.items():
                assert row[key] == dat_value(value), key
            assert page.doc_break and page.page_count == 1 and page.volume == result.volume


def test_tampering_is_detected(tmp_path):
    result = write_production(tmp_path / "prod", "FL", 1, _natives(tmp_path / "src", 2), "V1")
    (result.out_dir / result.documents[0].native_path).write_bytes(b"changed")
    (result.out_dir / "NATIVES" / "extra.jpg").write_bytes(b"new")
    problems = verify_production(result.out_dir)
    assert any("does not match" in p for p in problems)
    assert any("extra.jpg is not in the manifest" in p for p in problems)


def test_production_refuses_a_non_empty_folder(tmp_path):
    items = _natives(tmp_path / "src", 1)
    out = tmp_path / "prod"
    out.mkdir()
    (out / "old.txt").write_text("earlier work")
    with pytest.raises(ProductionError, match="not an empty folder"):
        write_production(out, "FL", 1, items, "V1")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    # An existing empty folder is fine.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_production(empty, "FL", 1, items, "V1").out_dir == empty


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metadata": {"MD5HASH": "x"}}, "computed"),
        ({"metadata": {"NOPE": "x"}}, "unknown DAT fields"),
        ({"extension": "j/pg"}, "extension"),
        ({"source": Path("/nonexistent/photo.jpg")}, "not found"),
    ],
)
def test_production_refuses_bad_items(tmp_path, change, message):
    item = _natives(tmp_path / "src", 1)[0]
    bad = ProductionItem(**{**item.__dict__, **change})
    with pytest.raises(ProductionError, match=message):
        write_production(tmp_path / "prod", "FL", 1, [bad], "V1")
    assert not (tmp_path / "prod").exists()


def test_production_refuses_bad_arguments(tmp_path):
    items = _natives(tmp_path / "src", 2)
    with pytest.raises(ProductionError, match="twice"):
        write_production(tmp_path / "a", "FL", 1, [items[0], items[0]], "V1")
    with pytest.raises(ProductionError, match="does not fit"):
        write_production(tmp_path / "b", "FL", 99_999_999, items, "V1")
    with pytest.raises(ProductionError, match="volume"):
        write_production(tmp_path / "c", "FL", 1, items, "V 1")
    with pytest.raises(ProductionError, match="empty"):
        write_production(tmp_path / "d", "FL", 1, [], "V1")


def test_an_interrupted_production_leaves_nothing_behind(tmp_path, monkeypatch):
    items = _natives(tmp_path / "src", 3)
    real_copy = production_module._copy_hashing
    calls = []

    def failing_copy(source, target):
        calls.append(source)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_copy(source, target)

    monkeypatch.setattr(production_module, "_copy_hashing", failing_copy)
    out = tmp_path / "out" / "prod"
    with pytest.raises(ProductionError, match="disk full"):
        write_production(out, "FL", 1, items, "V1")
    assert not out.exists()
    assert list((tmp_path / "out").iterdir()) == []
