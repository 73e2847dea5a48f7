"""Issue 5: discovery people / locate / produce through the CLI, authorised and audited."""

from __future__ import annotations

import hashlib
import json

import test_blocking
from helpers import cli
from sqlalchemy import select
from test_blocking import add_user, face_of

from faceledger.app.library import Library
from faceledger.catalog import schema as t
from faceledger.discovery import read_dat, read_opt, verify_production

#: The library of tests/test_blocking.py: img1, img3, img5 (folder) and img2 (blocked, US-IL).
blocked_library = test_blocking.blocked_library


def _audit(lib, action: str) -> list:
    with lib.catalog.engine.connect() as conn:
        return conn.execute(
            select(t.audit_log).where(t.audit_log.c.action == action).order_by(t.audit_log.c.id)
        ).all()


def _json(library_dir, *args, user="custodian"):
    result = cli(library_dir, "discovery", *args, "--json", user=user)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_people_brackets_true_count(blocked_library):
    settings, _ = blocked_library
    # Faces: img1, img2 (blocked), img5 are person01; img3 is person04: 2 people.
    data = _json(settings.library, "people")
    assert data["faces"] == 4
    assert data["low"] <= 2 <= data["high"]
    searchable = _json(settings.library, "people", "--searchable")
    assert searchable["faces"] == 3 and searchable["low"] <= 2 <= searchable["high"]
    for user in ("auditor", "searcher", None):
        assert cli(settings.library, "discovery", "people", user=user).exit_code != 0
    assert _audit(Library.open(settings), "discovery.people")


def test_locate_finds_person_refuses_others_and_leaves_no_trace(blocked_library, tmp_path):
    settings, data = blocked_library
    lib = Library.open(settings)
    person01 = {face_of(lib, n) for n in ("img1.jpg", "img2.jpg", "img5.jpg")}
    img2 = face_of(lib, "img2.jpg")
    reference = tmp_path / "reference.jpg"
    reference.write_bytes((data / "img4.jpg").read_bytes())  # person01, never ingested
    ref_bytes = reference.read_bytes()
    authority = tmp_path / "order.txt"
    authority.write_text("Court order 12-345: produce all photos of the plaintiff.")
    args = ("locate", "--photo", str(reference), "--matter", "Doe v. Acme")
    found = _json(settings.library, *args, "--authority-file", str(authority))
    faces = {x["face_id"] for p in found["photos"] for x in p["faces"]}
    assert faces == person01 - {img2}  # vault not asked for
    with_vault = _json(settings.library, *args, "--include-vault")
    faces = {x["face_id"] for p in with_vault["photos"] for x in p["faces"]}
    assert faces == person01
    photo = next(p for p in with_vault["photos"] if any(x["face_id"] == img2 for x in p["faces"]))
    assert photo["blocked"] is True
    assert any(s["source_url"] == "https://cdn.example.com/img2.jpg" for s in photo["provenance"])
    assert all(x["vector_collected_at"] for p in with_vault["photos"] for x in p["faces"])
    # Starting from a stored face needs no photo.
    by_face = _json(
        settings.library, "locate", "--face", str(face_of(lib, "img1.jpg")), "--matter", "M"
    )
    assert {x["face_id"] for p in by_face["photos"] for x in p["faces"]} == person01 - {img2}
    # Refused to everyone but an attested custodian.
    for user in ("auditor", "searcher", None):
        assert cli(settings.library, "discovery", *args, user=user).exit_code != 0
    add_user(settings.library, "custodian2", "custodian")
    with lib.writing() as conn:
        uid = conn.scalar(select(t.users.c.id).where(t.users.c.name == "custodian2"))
        conn.execute(t.attestations.delete().where(t.attestations.c.user_id == uid))
    assert cli(settings.library, "discovery", *args, user="custodian2").exit_code != 0
    # Audited, with the authority's hash and the matter.
    entries = _audit(lib, "discovery.locate")
    assert len(entries) == 3
    details = entries[0].details
    assert details["matter"] == "Doe v. Acme"
    assert details["authority_sha256"] == hashlib.sha256(authority.read_bytes()).hexdigest()
    # No trace of the reference photo's bytes anywhere in the library.
    for path in settings.library.rglob("*"):
        if path.is_file():
            assert ref_bytes[1000:1064] not in path.read_bytes(), path


def test_two_productions_continue_numbering(blocked_library, tmp_path):
    settings, _ = blocked_library
    lib = Library.open(settings)
    with lib.catalog.engine.connect() as conn:
        photo_ids = sorted(conn.scalars(select(t.photos.c.id)))
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(str(i) for i in photo_ids[:2]) + "\n")
    first = _json(
        settings.library,
        "produce",
        "--matter",
        "M1",
        "--prefix",
        "ABC",
        "--out",
        str(tmp_path / "vol1"),
        "--photos",
        str(ids_file),
    )
    second = _json(
        settings.library,
        "produce",
        "--matter",
        "M1",
        "--prefix",
        "ABC",
        "--out",
        str(tmp_path / "vol2"),
        "--jurisdiction",
        "US",
    )
    assert first["first_bates"] == "ABC00000001" and first["last_bates"] == "ABC00000002"
    assert second["first_bates"] == "ABC00000003"
    bates = []
    for result in (first, second):
        out = tmp_path / ("vol1" if result is first else "vol2")
        assert verify_production(out) == []
        dat = read_dat(out / f"{result['volume']}.dat")
        opt = read_opt(out / f"{result['volume']}.opt")
        assert [r["BEGBATES"] for r in dat.rows] == [r.image_id for r in opt]
        for row in dat.rows:
            assert row["FILENAME"] and row["VECTOR_COLLECTED_AT"]
            assert row["BLOCKED"] in ("Y", "N")
            native = out / row["NATIVEPATH"].replace("\\", "/")
            assert hashlib.md5(native.read_bytes()).hexdigest() == row["MD5HASH"]
        bates += [r["BEGBATES"] for r in dat.rows]
    numbers = [int(b[3:]) for b in bates]
    assert numbers == list(range(1, len(numbers) + 1))
    # The blocked img2 (tied to US-IL) is in the US production and says so.
    second_dat = read_dat(tmp_path / "vol2" / f"{second['volume']}.dat")
    assert any(r["BLOCKED"] == "Y" and "US-IL" in r["JURISDICTIONS"] for r in second_dat.rows)
    with lib.catalog.engine.connect() as conn:
        items = conn.execute(select(t.production_items)).all()
        productions = conn.execute(select(t.productions)).all()
    assert len(productions) == 2 and len({i.bates for i in items}) == len(bates)
    assert len(_audit(lib, "discovery.produce")) == 2
    for user in ("auditor", "searcher", None):
        result = cli(
            settings.library,
            "discovery",
            "produce",
            "--matter",
            "M1",
            "--prefix",
            "ABC",
            "--out",
            str(tmp_path / f"x{user}"),
            "--photos",
            str(ids_file),
            user=user,
        )
        assert result.exit_code != 0
        assert not (tmp_path / f"x{user}").exists()


def test_report_shows_the_catalog_as_plots_and_tables(blocked_library, tmp_path):
    settings, _ = blocked_library
    out, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    data = _json(settings.library, "report", "--matter", "Doe v. Acme", "--out", str(out),
                 "--pdf", str(pdf))  # fmt: skip
    page = out.read_text()
    assert page.count("data:image/png;base64,") == 3
    # Ground truth: 4 faces, 1 blocked (img2, uploader US-IL), 4 photos, 3 websites.
    assert data["totals"] == {"faces": 4, "blocked_faces": 1, "photos": 4}
    assert "<td>US-IL</td><td>uploader</td><td>1</td><td>1</td><td>1</td>" in page
    for site in ("news.example.com", "daily.example.org"):
        assert f"<td>{site}</td>" in page
    assert pdf.read_bytes().startswith(b"%PDF")
    assert data["html_sha256"] == hashlib.sha256(page.encode()).hexdigest()
    assert cli(settings.library, "discovery", "report", "--matter", "x", "--out",
               str(tmp_path / "no.html"), user="auditor").exit_code != 0
    assert not (tmp_path / "no.html").exists()
    assert _audit(Library.open(settings), "discovery.report")
