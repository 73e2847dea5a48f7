"""Issue 15: discovery for counsel. Load files that platforms accept (checked with two readers),
the production register and its verify, vector export, protective-order redaction, and the
answers that misled (vector-dates' source, per-signal counts).

One library for the module (ingest is the slow part): person01 in img1 (folder and a manifest
row with a URL and a date), img2 (a news site, uploader US-IL: blocked) and dating5 (img5 with
the dating site's URL in its own EXIF and XMP, from that site); person04 in img3, made a PNG.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import re
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest
import test_blocking
from conftest import make_settings, shared_path
from helpers import cli, vault_face_count
from PIL import Image
from sqlalchemy import select
from test_blocking import add_user, face_of

from faceledger.app.library import Library
from faceledger.catalog import schema as t
from faceledger.discovery.loadfiles import DAT_FIELDS, read_dat, read_opt
from faceledger.discovery.redaction import metadata_texts

DATASET = ("faces", "deepface", "tests", "unit", "dataset")
DATING = "datingsite.example"
DATING_URL = f"https://{DATING}/profile/5"
DATE_RE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def _xmp(url: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:source>{url}</dc:source>'
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return _build_world(tmp_path_factory.mktemp("counsel"))


def _build_world(root, database_url=""):
    data = shared_path(*DATASET)
    settings = make_settings(root / "library", database_url=database_url)
    test_blocking._SETTINGS[str(settings.library)] = settings
    folder, upload = root / "photos", root / "upload"
    folder.mkdir()
    upload.mkdir()
    shutil.copy(data / "img1.jpg", folder / "img1.jpg")
    with Image.open(data / "img3.jpg") as image:
        image.save(folder / "img3.png")  # a PNG native: its page image must be a JPEG
    shutil.copy(data / "img1.jpg", upload / "img1.jpg")
    shutil.copy(data / "img2.jpg", upload / "img2.jpg")
    # The sensitive site's URL in the photo's own metadata (EXIF and XMP), made here.
    with Image.open(data / "img5.jpg") as image:
        exif = image.getexif()
        exif[0x010E] = f"Profile photo from {DATING_URL}"  # ImageDescription
        image.save(upload / "dating5.jpg", exif=exif, xmp=_xmp(DATING_URL), quality=95)
    (upload / "m.csv").write_text(
        "path,source_url,page_url,retrieved_at,uploader_region\n"
        "img1.jpg,https://cdn.example.com/img1.jpg,https://news.example.com/b,"
        "2024-02-03T04:05:06.789+01:00,\n"
        "img2.jpg,https://cdn.example.com/img2.jpg,https://news.example.com/a,,US-IL\n"
        f"dating5.jpg,https://img.{DATING}/5.jpg,https://{DATING}/p/5,2024-03-04T05:06:07Z,\n"
    )
    assert cli(settings.library, "init").exit_code == 0
    for name, role in (("custodian", "custodian"), ("auditor", "auditor")):
        add_user(settings.library, name, role)
    result = cli(settings.library, "ingest", str(folder), "--manifest", str(upload / "m.csv"),
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "faces_blocked" not in json.loads(result.stdout)  # the owner sees no vault count
    assert vault_face_count(settings.library) == 1
    sites = root / "sites.csv"
    sites.write_text(
        "domain,publisher,publisher_region,sensitivity\n"
        "news.example.com,News Example Inc,US-CA,\n"
        f"{DATING},Lonely Hearts Ltd,,dating\n"
    )
    assert cli(settings.library, "sites", "import", str(sites)).exit_code == 0
    assert cli(settings.library, "policy", "apply").exit_code == 0
    lib = Library.open(settings)
    with lib.catalog.engine.connect() as conn:
        photo_ids = sorted(conn.scalars(select(t.photos.c.id)))
    ids_file = root / "ids.txt"
    ids_file.write_text("\n".join(map(str, photo_ids)) + "\n")
    return {"settings": settings, "lib": lib, "root": root, "ids": ids_file,
            "photo_ids": photo_ids, "upload": upload}  # fmt: skip


def _json(world, *args, user="custodian", code=0):
    result = cli(world["settings"].library, "discovery", *args, "--json", user=user)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def _produce(world, matter, out, *extra):
    return _json(world, "produce", "--matter", matter, "--prefix", "CNS", "--out", str(out),
                 "--photos", str(world["ids"]), *extra)  # fmt: skip


def _catalog_photo(lib, photo_id):
    with lib.catalog.engine.connect() as conn:
        return conn.execute(select(t.photos).where(t.photos.c.id == photo_id)).one()


# -- 1. load files ------------------------------------------------------------------------------
def test_relativity_load_files_read_the_same_with_two_readers(world):
    out = world["root"] / "rel"
    made = _produce(world, "Parity", out)
    assert made["profile"] == "relativity"
    dat_path, opt_path = out / f"{made['volume']}.dat", out / f"{made['volume']}.opt"
    raw = dat_path.read_bytes()
    # Relativity's defaults: UTF-8 BOM, CRLF, ASCII 020 between columns, þ around values, ®
    # for line breaks, so every record is one physical line.
    assert raw.startswith(b"\xef\xbb\xbf\xc3\xbeBEGBATES\xc3\xbe\x14\xc3\xbeENDBATES")
    text = raw.decode("utf-8-sig")
    assert "\u00b6" not in text and text.endswith("\r\n")
    lines = text.split("\r\n")[:-1]
    assert len(lines) == 1 + len(world["photo_ids"]) and not any("\n" in x for x in lines)

    ours = read_dat(dat_path, newline_marker="\u00ae")
    theirs = pd.read_csv(dat_path, sep="\x14", quotechar="\u00fe", encoding="utf-8-sig",
                         dtype=str, keep_default_na=False, engine="python")  # fmt: skip
    assert tuple(theirs.columns) == ours.fields == DAT_FIELDS
    assert theirs.to_dict("records") == ours.rows

    lib = world["lib"]
    with lib.catalog.engine.connect() as conn:
        faces = conn.execute(select(t.faces).where(t.faces.c.status == "active")).all()
    for row in ours.rows:
        native = out / row["NATIVEPATH"].replace("\\", "/")
        body = native.read_bytes()
        assert row["FILESIZE"] == str(len(body))
        assert row["FILEEXT"] == native.suffix[1:] and row["CUSTODIAN"] == "custodian"
        assert row["PRODVOL"] == made["volume"]
        assert row["MD5HASH"] == hashlib.md5(body).hexdigest()
        assert row["SHA1HASH"] == hashlib.sha1(body).hexdigest()
        assert row["SHA256HASH"] == hashlib.sha256(body).hexdigest()
        photo = next(p for p in map(lambda i: _catalog_photo(lib, i), world["photo_ids"])
                     if p.sha256 == row["SHA256HASH"])  # natives are the photos as held
        for name in ("DATETAKEN", "RETRIEVED_AT", "VECTOR_COLLECTED_AT"):
            assert row[name] == "" or DATE_RE.fullmatch(row[name]), (name, row[name])
        dates = sorted(f.vector_collected_at for f in faces if f.photo_id == photo.id)
        assert row["VECTOR_COLLECTED_AT"] == dates[0].strftime("%Y-%m-%d %H:%M:%S")
        assert "; " not in row["JURISDICTIONS"]
    img1 = next(r for r in ours.rows if r["SOURCE_URL"] == "https://cdn.example.com/img1.jpg")
    # The manifest row's URL and date, not the folder copy; the date in UTC, to the second.
    assert img1["RETRIEVED_AT"] == "2024-02-03 03:05:06"
    assert img1["WEBSITE"] == "news.example.com" and img1["PAGE_URL"] == "https://news.example.com/b"
    img2 = next(r for r in ours.rows if r["SOURCE_URL"].endswith("img2.jpg"))
    assert img2["BLOCKED"] == "Y" and img2["JURISDICTIONS"] == "US-CA;US-IL"

    # OPT: every page a JPEG rendition that exists, never a PNG native.
    pages = read_opt(opt_path)
    assert [p.image_id for p in pages] == [r["BEGBATES"] for r in ours.rows]
    for page in pages:
        with Image.open(out / page.image_path.replace("\\", "/")) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
    assert any(r["FILEEXT"] == "png" for r in ours.rows)
    # A second reader of the OPT: the csv module.
    opt_rows = list(csv.reader(io.StringIO(opt_path.read_text("utf-8"), newline="")))
    assert [r[2] for r in opt_rows] == [p.image_path for p in pages]

    # The face-level file: one row per face, every Bates number a document of the DAT.
    face_csv = out / f"{made['volume']}_FACES.csv"
    frame = pd.read_csv(face_csv, encoding="utf-8-sig", dtype=str)
    assert len(frame) == len(faces)
    assert set(frame["BATES"]) <= {r["BEGBATES"] for r in ours.rows}
    assert set(frame["FACE_ID"].astype(int)) == {f.id for f in faces}
    assert all(DATE_RE.fullmatch(v) for v in frame["VECTOR_COLLECTED_AT"])
    cover = (out / "COVER.txt").read_text("utf-8")
    assert "Time zone: UTC" in cover and "Load-file profile: relativity" in cover


def test_concordance_unicode_profile_keeps_the_pilcrow(world):
    out = world["root"] / "conc"
    made = _produce(world, "Parity-conc", out, "--profile", "concordance-unicode")
    dat_path = out / f"{made['volume']}.dat"
    text = dat_path.read_bytes().decode("utf-8-sig")
    assert text.startswith("\u00feBEGBATES\u00fe\u00b6\u00feENDBATES") and "\x14" not in text
    ours = read_dat(dat_path)
    theirs = pd.read_csv(dat_path, sep="\u00b6", quotechar="\u00fe", encoding="utf-8-sig",
                         dtype=str, keep_default_na=False, engine="python")  # fmt: skip
    assert theirs.to_dict("records") == ours.rows and len(ours.rows) == len(world["photo_ids"])
    assert cli(world["settings"].library, "discovery", "produce", "--matter", "x", "--prefix",
               "X", "--out", str(world["root"] / "bad"), "--photos", str(world["ids"]),
               "--profile", "nope", user="custodian").exit_code == 2  # fmt: skip


# -- 2. the register ----------------------------------------------------------------------------
def _rewrite_manifest(folder):
    """Recompute every hash line, keeping the comment lines (as a careless editor would)."""
    manifest = folder / "MANIFEST.sha256"
    comments = [x for x in manifest.read_text().splitlines() if x.startswith("#")]
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and p.name != "MANIFEST.sha256")  # fmt: skip
    lines = [f"{hashlib.sha256((folder / f).read_bytes()).hexdigest()}  {f}" for f in files]
    manifest.write_text("\n".join(comments + lines) + "\n")


def test_register_lists_and_verify_catches_changes_gaps_and_missing_files(world):
    root = world["root"]
    first = _produce(world, "Register", root / "reg1")
    second = _produce(world, "Register", root / "reg2")
    listed = _json(world, "productions", "list", "--matter", "Register")
    assert [(p["volume"], p["first_bates"], p["last_bates"], p["documents"]) for p in listed] == [
        (first["volume"], first["first_bates"], first["last_bates"], 4),
        (second["volume"], second["first_bates"], second["last_bates"], 4),
    ]
    assert listed[0]["audit_head_id"] == first["audit_head"]["id"]
    good = _json(world, "productions", "verify", str(root / "reg1"))
    assert good["ok"] and good["problems"] == [] and good["audit_head_in_log"] is True
    assert good["production_id"] == first["production_id"] and good["documents"] == 4

    changed = root / "reg-changed"
    shutil.copytree(root / "reg2", changed)
    native = next((changed / "NATIVES").iterdir())
    native.write_bytes(native.read_bytes()[:-10] + b"0123456789")
    bad = _json(world, "productions", "verify", str(changed), code=1)
    assert any(f"{native.name} does not match" in p for p in bad["problems"])

    missing = root / "reg-missing"
    shutil.copytree(root / "reg2", missing)
    gone = sorted((missing / "IMAGES").iterdir())[1]
    gone.unlink()
    bad = _json(world, "productions", "verify", str(missing), code=1)
    assert any(f"IMAGES/{gone.name} is listed but missing" in p for p in bad["problems"])
    assert any("image of" in p and "missing" in p for p in bad["problems"])

    # A Bates gap: a middle document taken out everywhere and the manifest made to agree.
    gap = root / "reg-gap"
    shutil.copytree(root / "reg2", gap)
    dat = gap / f"{second['volume']}.dat"
    lines = dat.read_bytes().decode("utf-8-sig").split("\r\n")
    taken = lines.pop(2)
    bates = taken.split("\x14")[0].strip("\u00fe")
    dat.write_bytes("\r\n".join(lines).encode("utf-8-sig"))
    opt = gap / f"{second['volume']}.opt"
    opt.write_text("".join(x + "\r\n" for x in opt.read_text().splitlines()
                           if not x.startswith(bates + ",")), newline="")  # fmt: skip
    for path in [*gap.glob(f"NATIVES/{bates}.*"), gap / "IMAGES" / f"{bates}.jpg"]:
        path.unlink()
    _rewrite_manifest(gap)
    bad = _json(world, "productions", "verify", str(gap), code=1)
    assert any(p.startswith("Bates gap:") for p in bad["problems"]), bad["problems"]
    assert any("the register says 4" in p for p in bad["problems"])
    assert cli(world["settings"].library, "discovery", "productions", "verify",
               str(root / "nowhere"), user="custodian").exit_code == 2  # fmt: skip
    # Auditors may not read the register.
    library = world["settings"].library
    assert cli(library, "discovery", "productions", "list", user="auditor").exit_code == 3
    assert cli(library, "discovery", "productions", "verify", str(root / "reg1"),
               user="auditor").exit_code == 3  # fmt: skip


# -- 3. vector export ---------------------------------------------------------------------------
def test_export_round_trips_the_vectors_and_its_hashes_match(world):
    lib, root = world["lib"], world["root"]
    produced = _produce(world, "Export", root / "exp-prod")
    made = _json(world, "export-vectors", "--matter", "Export", "--out", str(root / "exp"),
                 "--photos", str(world["ids"]))  # fmt: skip
    folder = root / "exp"
    assert sorted(p.name for p in folder.iterdir()) == ["MANIFEST.sha256", "README.md",
                                                        "vectors.parquet"]  # fmt: skip
    for line in (folder / "MANIFEST.sha256").read_text().splitlines():
        if not line.startswith("#"):
            digest, name = line.split("  ")
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    table = pq.read_table(folder / "vectors.parquet")
    ids, vectors = lib.catalog.vectors(t.faces.c.status == "active")
    assert made["faces"] == len(ids) == table.num_rows
    by_id = {int(i): v for i, v in zip(ids, vectors, strict=True)}
    frame = pd.read_parquet(folder / "vectors.parquet")
    bates = {i["photo_id"]: i["bates"] for i in produced["items"]}
    for record in frame.to_dict("records"):
        assert list(record["vector"]) == by_id[record["face_id"]].tolist()  # exact float32
        photo = _catalog_photo(lib, record["photo_id"])
        assert record["photo_sha256"] == photo.sha256 and record["photo_md5"] == photo.md5
        assert record["bates"] == bates[record["photo_id"]]
        assert str(record["vector_collected_at"].tz) == "UTC"
    assert "vector" in (folder / "README.md").read_text()
    with lib.catalog.engine.connect() as conn:
        entry = conn.execute(select(t.audit_log).where(
            t.audit_log.c.action == "discovery.export_vectors")).one()  # fmt: skip
    assert sorted(entry.object_ids["faces"]) == sorted(by_id)
    assert cli(world["settings"].library, "discovery", "export-vectors", "--matter", "Export",
               "--out", str(root / "exp-no"), "-j", "US", user="auditor").exit_code == 3
    assert not (root / "exp-no").exists()


def test_export_encrypts_to_an_age_recipient(world):
    pyrage = pytest.importorskip("pyrage", reason="pyrage (the optional age extra) not installed")
    identity = pyrage.x25519.Identity.generate()
    folder = world["root"] / "exp-age"
    made = _json(world, "export-vectors", "--matter", "Export", "--out", str(folder),
                 "--photos", str(world["ids"]), "--age-recipient", str(identity.to_public()))
    assert made["encrypted"] and not (folder / "vectors.parquet").exists()
    plain = pyrage.decrypt((folder / "vectors.parquet.age").read_bytes(), [identity])
    assert hashlib.sha256(plain).hexdigest() == made["parquet_sha256"]
    assert f"# plaintext vectors.parquet sha256 {made['parquet_sha256']}" in (
        folder / "MANIFEST.sha256").read_text()
    assert pq.read_table(io.BytesIO(plain)).num_rows == made["faces"]
    refused = cli(world["settings"].library, "discovery", "export-vectors", "--matter", "Export",
                  "--out", str(world["root"] / "exp-bad"), "--photos", str(world["ids"]),
                  "--age-recipient", "age1notakey", user="custodian")  # fmt: skip
    assert refused.exit_code == 2 and not (world["root"] / "exp-bad").exists()


# -- 5. answers that misled ---------------------------------------------------------------------
def test_vector_dates_prefer_the_row_with_url_and_date_and_list_all(world):
    lib = world["lib"]
    img1 = face_of(lib, "photos/img1.jpg")
    dates = _json(world, "vector-dates")
    row = next(d for d in dates if d["face_id"] == img1)
    assert row["source_url"] == "https://cdn.example.com/img1.jpg"
    assert row["retrieved_at"] == "2024-02-03T03:05:06.789000+00:00"
    kinds = sorted((p["source_url"] is None, p["retrieved_at"] is None) for p in row["provenance"])
    assert kinds == [(False, False), (True, True)]  # the folder copy is listed too
    # The tables for people say the same.
    library = world["settings"].library
    table = cli(library, "--no-wrap", "discovery", "vector-dates", user="custodian")
    assert table.exit_code == 0 and "https://cdn.example.com/img1.jpg" in table.stdout
    table = cli(library, "discovery", "count", "--blocked", user="custodian")
    assert table.exit_code == 0 and "blocked by this signal" in table.stdout
    table = cli(library, "discovery", "productions", "list", user="custodian")
    assert table.exit_code == 0


def test_per_signal_counts_mean_blocked_by_that_signal(world):
    # img2 is tied to US-IL by its uploader (blocks) and to US-CA by its publisher (does not).
    counts = _json(world, "count", "--blocked")
    assert counts["total"]["faces"] == 1
    assert counts["by_signal"]["uploader"]["faces"] == 1
    assert counts["by_signal"]["publisher"] == {"photos": 0, "faces": 0, "source_urls": 0}
    assert "blocked by this signal" in counts["by_signal_means"]
    us = _json(world, "count", "--blocked", "-j", "US")
    assert us["total"]["faces"] == 1 and us["by_signal"]["publisher"]["faces"] == 0


# -- 4. protective-order redaction ----------------------------------------------------------------
def _no_dating(value, where):
    text = str(value).lower()
    assert DATING not in text and "lonely hearts" not in text, where


def test_an_order_redacts_sensitive_sites_everywhere(world):
    lib, root = world["lib"], world["root"]
    order = root / "order.pdf"
    order.write_bytes(b"%PDF-1.4 stipulated protective order")
    # Without an order, the site is named.
    plain = _json(world, "sources", "--matter", "Doe v. Dating")
    assert any(s["website"] == DATING for s in plain)
    recorded = _json(world, "order", "record", "--matter", "Doe v. Dating", "--redact",
                     "dating", "--file", str(order))  # fmt: skip
    assert recorded["categories"] == ["dating"] and recorded["sites_redacted"] == 1
    assert cli(world["settings"].library, "discovery", "order", "record", "--matter", "x",
               "--redact", "dating", "--file", str(order), user="auditor").exit_code == 3
    assert cli(world["settings"].library, "discovery", "order", "record", "--matter", "x",
               "--redact", "astrology", "--file", str(order), user="custodian").exit_code == 2

    listed = _json(world, "sources", "--matter", "Doe v. Dating")
    for source in listed:
        for value in source.values():
            _no_dating(value, source)
    assert any("[REDACTED: dating]" in str(s["source_url"]) for s in listed)

    out = root / "redacted"
    made = _produce(world, "Doe v. Dating", out)
    assert made["redactions"] >= 4
    dat = read_dat(out / f"{made['volume']}.dat", newline_marker="\u00ae")
    for row in dat.rows:
        for name, value in row.items():
            _no_dating(value, name)
    dating = next(r for r in dat.rows if "[REDACTED: dating]" in r["SOURCE_URL"])
    assert "SOURCE_URL:dating" in dating["REDACTIONS"] and "NATIVE:dating" in dating["REDACTIONS"]
    log = list(csv.DictReader(io.StringIO((out / "REDACTIONS.csv").read_text("utf-8-sig"))))
    assert {(x["BATES"], x["FIELD"]) for x in log} >= {(dating["BEGBATES"], "SOURCE_URL"),
                                                       (dating["BEGBATES"], "NATIVE")}
    for name in ("COVER.txt", f"{made['volume']}.opt", "MANIFEST.sha256"):
        _no_dating((out / name).read_text("utf-8"), name)
    for row in csv.reader(io.StringIO((out / f"{made['volume']}_FACES.csv").read_text())):
        _no_dating(row, "faces")
    # Natives and page images: their metadata, parsed, names no redacted site.
    original = next(world["upload"].glob("dating5.jpg"))
    assert any(DATING in x for x in metadata_texts(original))  # the test photo carries it
    for image in [*(out / "NATIVES").iterdir(), *(out / "IMAGES").iterdir()]:
        for text in metadata_texts(image):
            _no_dating(text, image.name)
        with Image.open(image) as opened:
            _no_dating(dict(opened.getexif()), image.name)
            _no_dating(opened.info, image.name)
    stripped = out / dating["NATIVEPATH"].replace("\\", "/")
    assert dating["SHA256HASH"] == hashlib.sha256(stripped.read_bytes()).hexdigest()
    assert _json(world, "productions", "verify", str(out))["ok"]

    # The export of the same matter names no site at all.
    _json(world, "export-vectors", "--matter", "Doe v. Dating", "--out", str(root / "rexp"),
          "--photos", str(world["ids"]))  # fmt: skip
    table = pq.read_table(root / "rexp" / "vectors.parquet").to_pylist()
    for record in table:
        for name, value in record.items():
            if name != "vector":
                _no_dating(value, name)
    _no_dating((root / "rexp" / "README.md").read_text(), "README")

    # The report of the matter: HTML and PDF text name no redacted site.
    report, pdf = root / "redacted.html", root / "redacted.pdf"
    _json(world, "report", "--matter", "Doe v. Dating", "--out", str(report), "--pdf", str(pdf))
    _no_dating(_html_text(report), "report")
    assert "[REDACTED: dating]" in _html_text(report)
    if importlib.util.find_spec("pypdf"):
        _no_dating(" ".join(_pdf_pages(pdf)).replace("\n", ""), "report PDF")

    # locate answers only the sites the located person's photos came from, redacted.
    located = _json(world, "locate", "--face", str(face_of(lib, "photos/img1.jpg")),
                    "--matter", "Doe v. Dating")  # fmt: skip
    assert [s["website"] for s in located["sites"]] == ["[REDACTED: dating]", "news.example.com"]
    for photo in located["photos"]:
        for source in photo["provenance"]:
            for value in source.values():
                _no_dating(value, source)
    # Another matter, with no order, still sees the site.
    other = _json(world, "locate", "--face", str(face_of(lib, "photos/img1.jpg")),
                  "--matter", "Other")  # fmt: skip
    assert DATING in [s["website"] for s in other["sites"]]


# -- 6. the matter report -------------------------------------------------------------------------
def _pdf_pages(path):
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(path).pages]


def _html_text(path):
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts = []

        def handle_data(self, data):
            self.parts.append(data)

        def handle_starttag(self, tag, attrs):
            self.parts += [str(v) for _, v in attrs if v and not str(v).startswith("data:")]

    parser = Text()
    parser.feed(path.read_text("utf-8"))
    return " ".join(parser.parts)


def test_matter_report_tells_the_matter(world):
    pytest.importorskip("pypdf", reason="pypdf (a dev dependency) reads the PDF's text")
    lib, root = world["lib"], world["root"]
    matter = "Roe v. Report"
    authority = root / "authority.txt"
    authority.write_text("Order 7: locate the plaintiff's photos.")
    located = _json(world, "locate", "--face", str(face_of(lib, "photos/img1.jpg")),
                    "--matter", matter, "--authority-file", str(authority))  # fmt: skip
    made = _produce(world, matter, root / "rep-prod")
    html_out, pdf_out = root / "report.html", root / "report.pdf"
    data = _json(world, "report", "--matter", matter, "--out", str(html_out), "--pdf",
                 str(pdf_out))  # fmt: skip
    for path in (html_out, pdf_out):
        digest, name = (root / f"{path.name}.sha256").read_text().split()
        assert name == path.name and digest == hashlib.sha256(path.read_bytes()).hexdigest()
    text = _html_text(html_out)
    assert f"{made['first_bates']}-{made['last_bates']}" in text
    assert located["authority_sha256"] in text
    assert data["people"]["low"] <= 2 <= data["people"]["high"]  # person01 and person04
    head = data["audit_head"]
    assert head["hash"] in text and data["policy_version"] is not None
    with lib.catalog.engine.connect() as conn:
        signed = conn.execute(select(t.attestations.c.sha256).join(
            t.users, t.users.c.id == t.attestations.c.user_id).where(
            t.users.c.name == "custodian")).scalar_one()  # fmt: skip
    assert signed in text
    # No order in this matter: the dating site is flagged, not redacted.
    assert "flagged: no protective order covers it" in text and DATING in text

    pages = _pdf_pages(pdf_out)
    assert len(pages) >= 3 and "faceledger matter report" in pages[0] and matter in pages[0]
    for number, page in enumerate(pages, start=1):
        flat = page.replace("\n", "")
        assert f"page {number} of {len(pages)}" in page
        assert head["hash"] in flat  # the audit head in every footer
    assert f"{made['first_bates']}-{made['last_bates']}" in "".join(pages).replace("\n", "")
    assert b"/FontFile2" in pdf_out.read_bytes()  # TrueType (DejaVu) embedded


def test_report_tables_split_across_pages_and_plots_read_plainly(tmp_path):
    pytest.importorskip("pypdf", reason="pypdf (a dev dependency) reads the PDF's text")
    from faceledger.discovery import report as report_module

    data = report_module.ReportData("Many rows", "2026-12-01 00:00:00")
    data.by_jurisdiction = [{"region": f"US-{i:02d}", "signal": "gps", "faces": i % 3 + 1,
                             "photos": 1, "blocked_faces": i % 2} for i in range(120)]
    data.vector_months = [("2026-11", 3, 1), ("2026-12", 2, 0)]
    jurisdictions = [s for s in report_module.SECTIONS if s.key == "jurisdictions"]
    pdf = tmp_path / "many.pdf"
    report_module.render_pdf(data, pdf, jurisdictions)
    pages = _pdf_pages(pdf)
    with_rows = [p for p in pages if "US-" in p]
    assert len(with_rows) >= 3  # 120 rows do not fit one page...
    assert all("blocked faces" in p for p in with_rows)  # ...and each page repeats the header
    assert "US-00" in with_rows[0] and "US-119" not in with_rows[0] and "US-119" in pages[-1]
    # Whole-number axes, and the legend outside the bars.
    for chart in (report_module._jurisdiction_chart, report_module._months_chart):
        fig = chart(data)
        ax = fig.axes[0]
        fig.canvas.draw()
        axis = ax.xaxis if chart is report_module._jurisdiction_chart else ax.yaxis
        assert all(float(v).is_integer() for v in axis.get_ticklocs())
        legend = ax.get_legend().get_window_extent()
        assert legend.x0 >= ax.get_window_extent().x1
        report_module.plt.close(fig)


# -- the same on PostgreSQL ---------------------------------------------------------------
@pytest.mark.postgres
def test_counsel_commands_on_postgres(tmp_path, pg_database, monkeypatch):
    monkeypatch.setenv("FACELEDGER_DATABASE_URL", pg_database)  # what the CLI reads
    world = _build_world(tmp_path, pg_database)
    counts = _json(world, "count", "--blocked")
    assert counts["by_signal"]["uploader"]["faces"] == 1
    assert counts["by_signal"]["publisher"]["faces"] == 0
    img1 = face_of(world["lib"], "photos/img1.jpg")
    row = next(d for d in _json(world, "vector-dates") if d["face_id"] == img1)
    assert row["source_url"] == "https://cdn.example.com/img1.jpg" and len(row["provenance"]) == 2
    order = tmp_path / "order.pdf"
    order.write_bytes(b"%PDF-1.4 order")
    _json(world, "order", "record", "--matter", "PG", "--redact", "dating", "--file", str(order))
    made = _produce(world, "PG", tmp_path / "pg-prod")
    assert made["redactions"] >= 4
    listed = _json(world, "productions", "list")
    assert [p["volume"] for p in listed] == [made["volume"]] and listed[0]["documents"] == 4
    assert _json(world, "productions", "verify", str(tmp_path / "pg-prod"))["ok"]
    for row in read_dat(tmp_path / "pg-prod" / f"{made['volume']}.dat", "\u00ae").rows:
        for value in row.values():
            _no_dating(value, row)
    _json(world, "export-vectors", "--matter", "PG", "--out", str(tmp_path / "pg-exp"),
          "--photos", str(world["ids"]))  # fmt: skip
    assert pq.read_table(tmp_path / "pg-exp" / "vectors.parquet").num_rows == 4
    report = tmp_path / "pg.html"
    data = _json(world, "report", "--matter", "PG", "--out", str(report))
    assert data["productions"] == 1 and "[REDACTED: dating]" in _html_text(report)
    _no_dating(_html_text(report), "report")
    for source in _json(world, "sources", "--matter", "PG"):
        for value in source.values():
            _no_dating(value, source)
    world["lib"].close()


# -- the migration ----------------------------------------------------------------------
def test_migration_registers_the_matters_of_earlier_productions(tmp_path):
    from alembic import command
    from sqlalchemy import insert

    from faceledger.catalog.database import _alembic_config, make_engine, migrate
    from faceledger.clock import utcnow

    engine = make_engine(f"sqlite:///{tmp_path / 'c.sqlite'}")
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")  # the catalog as it was before the register
    with engine.begin() as conn:
        conn.execute(insert(t.photos).values(
            id=1, sha256="a" * 64, md5="b" * 32, sha1="c" * 40, byte_size=1, width=1, height=1,
            format="JPEG", added_at=utcnow()))  # fmt: skip
        conn.exec_driver_sql(
            "INSERT INTO productions (id, matter, prefix, first_number, last_number, out_dir, "
            "manifest_sha256, produced_by, produced_at) VALUES (1, 'Old v. Matter', 'OLD', 1, 1, "
            "'/x', ?, 'cara', '2026-01-01 00:00:00')", ("d" * 64,)
        )
        conn.exec_driver_sql("INSERT INTO production_items VALUES (1, 'OLD00000001', 1, ?)",
                             ("a" * 64,))  # fmt: skip
    migrate(engine)
    with engine.connect() as conn:
        matters = conn.execute(select(t.matters.c.name, t.matters.c.created_by)).all()
        documents = conn.scalar(select(t.productions.c.documents))
    assert matters == [("Old v. Matter", "cara")] and documents == 1
    engine.dispose()
