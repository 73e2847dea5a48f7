"""Invariant 1 and issue 3: blocked faces are absent from search, show and non-custodian counts.

Checked right after ingest, after `policy apply` (sites registry and rule changes) and after an
opt-out; every discovery answer is compared with a ground truth built here independently.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from conftest import shared_path
from helpers import cli
from sqlalchemy import insert, select

from faceledger.app.library import Library
from faceledger.catalog import schema as t
from faceledger.clock import utcnow
from faceledger.errors import NotFoundError, PermissionDenied

DATASET = ("faces", "deepface", "tests", "unit", "dataset")


def add_user(library_dir, name: str, role: str) -> None:
    """A user straight in the catalog, with an attestation on file (vault reads need one)."""
    lib = Library.open(_settings_for(library_dir))
    with lib.writing() as conn:
        uid = conn.execute(
            insert(t.users).values(name=name, role=role, created_at=utcnow())
        ).inserted_primary_key[0]
        text = f"I, {name}, will use vault access only for legal duties."
        conn.execute(
            insert(t.attestations).values(
                user_id=uid,
                statement=text,
                sha256=hashlib.sha256(text.encode()).hexdigest(),
                signed_at=utcnow(),
            )
        )
    lib.close()


_SETTINGS = {}


def _settings_for(library_dir):
    return _SETTINGS[str(library_dir)]


def searched_face_ids(library_dir, probe, user=None) -> set[int]:
    result = cli(library_dir, "search", str(probe), "--json", "--top-k", "50", user=user)
    assert result.exit_code == 0, result.output
    return {
        m["face_id"] for e in json.loads(result.stdout) for f in e["faces"] for m in f["matches"]
    }


def face_of(lib, filename: str) -> int:
    with lib.catalog.engine.connect() as conn:
        return conn.scalar(
            select(t.faces.c.id)
            .join(t.photo_sources, t.photo_sources.c.photo_id == t.faces.c.photo_id)
            .where(t.photo_sources.c.locator.like(f"%{filename}"))
        )


def count_json(library_dir, *args, user="custodian"):
    result = cli(library_dir, "discovery", "count", "--json", *args, user=user)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def ingest_with_an_illinois_upload(settings, tmp, users=("custodian",), more_uploads=()):
    """Make a library under ``settings`` with these users (each named after its role), and
    ingest img1, img3 and img5 from a folder plus img2 by a manifest that says it was uploaded
    from US-IL (so its face is blocked), plus ``more_uploads``: (photo name, manifest row) pairs.
    Returns the ingest's CLI result (``--json``)."""
    data = shared_path(*DATASET)
    _SETTINGS[str(settings.library)] = settings
    folder = tmp / "photos"
    folder.mkdir()
    for name in ("img1.jpg", "img3.jpg", "img5.jpg"):
        shutil.copy(data / name, folder / name)
    upload = tmp / "upload"
    upload.mkdir()
    shutil.copy(data / "img2.jpg", upload / "img2.jpg")
    rows = ["img2.jpg,https://cdn.example.com/img2.jpg,https://news.example.com/a,US-IL"]
    for name, row in more_uploads:
        shutil.copy(data / name, upload / name)
        rows.append(row)
    (upload / "m.csv").write_text(
        "path,source_url,page_url,uploader_region\n" + "".join(r + "\n" for r in rows)
    )
    assert cli(settings.library, "init").exit_code == 0
    for user in users:
        add_user(settings.library, user, user)
    return cli(settings.library, "ingest", str(folder), "--manifest", str(upload / "m.csv"),
               "--json")  # fmt: skip


@pytest.fixture
def blocked_library(tmp_path, settings):
    # img5 also arrives from a news site whose publisher the registry will later place in IL.
    result = ingest_with_an_illinois_upload(
        settings, tmp_path, users=("custodian", "auditor", "searcher"),
        more_uploads=[("img5.jpg",
                       "img5.jpg,https://img.daily.example.org/5.jpg,https://daily.example.org/p,")],
    )  # fmt: skip
    data = shared_path(*DATASET)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert "faces_blocked" not in summary and summary["errors"] == []  # admin's view
    return settings, data


def test_blocked_at_ingest_is_never_visible(blocked_library):
    settings, data = blocked_library
    lib = Library.open(settings)
    img2 = face_of(lib, "img2.jpg")
    img1 = face_of(lib, "img1.jpg")
    # Ingest decided before indexing: the face is in the vault index only.
    assert img2 not in lib.index("searchable").ids()
    assert img2 in lib.index("vault").ids()
    # img4 is the same person as img1 and img2.
    for user in (None, "searcher"):
        found = searched_face_ids(settings.library, data / "img4.jpg", user=user)
        assert img1 in found and img2 not in found
    # Even a huge top-k and threshold cannot reach it.
    result = cli(
        settings.library, "search", str(data / "img2.jpg"), "--json", "-k", "1000", "-t", "2.0"
    )
    assert img2 not in {
        m["face_id"] for e in json.loads(result.stdout) for f in e["faces"] for m in f["matches"]
    }
    owner = lib.actor(None)
    with pytest.raises(NotFoundError):
        lib.show_face(owner, img2)
    photo_id = lib.catalog.face(img2)["photo_id"]
    with pytest.raises(NotFoundError):
        lib.show_photo(owner, photo_id)
    assert cli(settings.library, "show", "face", str(img2)).exit_code != 0
    stats = json.loads(cli(settings.library, "stats", "--json").stdout)
    assert stats["searchable_faces"] == 3 and "blocked_faces" not in stats
    # A custodian sees it.
    custodian = lib.actor("custodian")
    assert lib.show_face(custodian, img2)["blocked"] is True
    stats = json.loads(cli(settings.library, "stats", "--json", user="custodian").stdout)
    assert stats["blocked_faces"] == 1
    # Counts: refused with --blocked to anyone but a custodian; ground truth for custodians.
    assert (
        cli(settings.library, "discovery", "count", "--blocked", user="auditor").exit_code
        == PermissionDenied.exit_code
    )
    assert cli(settings.library, "discovery", "count", "--blocked").exit_code != 0
    searchable = count_json(settings.library, user="auditor")
    assert searchable["total"] == {"photos": 3, "faces": 3, "source_urls": 1}
    blocked = count_json(settings.library, "--blocked", "-j", "US-IL")
    assert blocked["total"] == {"photos": 1, "faces": 1, "source_urls": 1}
    assert blocked["by_signal"]["uploader"]["faces"] == 1
    assert blocked["by_signal"]["gps"]["faces"] == 0
    assert count_json(settings.library, "--blocked", "-j", "US")["total"]["faces"] == 1
    assert count_json(settings.library, "--blocked", "-j", "US-CA")["total"]["faces"] == 0


def test_policy_apply_sites_and_rule_removal(blocked_library, tmp_path):
    settings, data = blocked_library
    lib = Library.open(settings)
    img5 = face_of(lib, "img5.jpg")
    sites = tmp_path / "sites.csv"
    sites.write_text(
        "domain,publisher,publisher_region,terms_url,terms_retrieved_at\n"
        "daily.example.org,Daily Example LLC,US-IL,https://daily.example.org/tos,"
        "2024-01-02T00:00:00Z\n"
    )
    assert cli(settings.library, "sites", "import", str(sites)).exit_code == 0
    # The registry alone changes nothing until policy is applied...
    applied = json.loads(cli(settings.library, "policy", "apply", "--json").stdout)
    assert applied["blocked"] == 1 and applied["unblocked"] == 0
    # ...and applying again moves nothing.
    again = json.loads(cli(settings.library, "policy", "apply", "--json").stdout)
    assert again["blocked"] == 0 and again["unblocked"] == 0
    assert img5 not in searched_face_ids(settings.library, data / "img4.jpg")
    assert img5 not in Library.open(settings).index("searchable").ids()

    sources = json.loads(
        cli(
            settings.library,
            "discovery",
            "sources",
            "--blocked",
            "-j",
            "US-IL",
            "--json",
            user="custodian",
        ).stdout
    )
    truth = {
        ("https://cdn.example.com/img2.jpg", "news.example.com", None, None),
        (None, None, None, None),  # img5's folder copy: a path, no URL
        (
            "https://img.daily.example.org/5.jpg",
            "daily.example.org",
            "Daily Example LLC",
            "https://daily.example.org/tos",
        ),
    }
    assert {
        (s["source_url"], s["website"], s["publisher"], s["terms_url"]) for s in sources
    } == truth
    dates = json.loads(
        cli(
            settings.library, "discovery", "vector-dates", "--blocked", "--json", user="custodian"
        ).stdout
    )
    assert sorted(d["face_id"] for d in dates) == sorted([face_of(lib, "img2.jpg"), img5])
    assert all(d["vector_collected_at"] and d["model"] for d in dates)

    # Drop the publisher signal: what only it blocked comes back; uploader blocks stay.
    policy = settings.library / "policy.yaml"
    policy.write_text(
        policy.read_text().replace(
            "signals: [gps, uploader, publisher, subject]", "signals: [gps, uploader, subject]"
        )
    )
    moved = json.loads(cli(settings.library, "policy", "apply", "--json").stdout)
    assert moved == {**moved, "blocked": 0, "unblocked": 1}
    assert img5 in searched_face_ids(settings.library, data / "img4.jpg")
    assert face_of(lib, "img2.jpg") not in searched_face_ids(settings.library, data / "img4.jpg")


def test_optout_blocks_matches_now_and_later_without_keeping_the_selfie(blocked_library, tmp_path):
    settings, data = blocked_library
    lib = Library.open(settings)
    img3 = face_of(lib, "img3.jpg")  # person04
    selfie = data / "img55.jpg"  # another photo of person04, never ingested
    assert img3 in searched_face_ids(settings.library, selfie)
    result = cli(
        settings.library,
        "optout",
        "submit",
        "--photo",
        str(selfie),
        "--region",
        "US-IL",
        "--name",
        "Person Four",
        "--json",
    )
    assert result.exit_code == 0, result.output
    optout = json.loads(result.stdout)
    assert optout["status"] == "matched" and optout["matched_faces"] == [img3]
    assert img3 not in searched_face_ids(settings.library, selfie)
    counted = count_json(settings.library, "--blocked", "--signal", "subject")
    assert counted["total"]["faces"] == 1
    # The selfie and its vector are nowhere in the library.
    stored = b"".join(p.read_bytes() for p in settings.library.rglob("*") if p.is_file())
    assert selfie.read_bytes() not in stored
    from faceledger.faces import FaceEngine
    from faceledger.ingest import decode_image

    rgb, _ = decode_image(selfie.read_bytes(), "", 10**9, 10**9)
    vector = FaceEngine().faces(rgb)[0].vector
    assert vector.astype("<f4").tobytes()[:64] not in stored
    # A later photo of the same person is blocked on arrival.
    later = tmp_path / "later"
    later.mkdir()
    shutil.copy(data / "img53.jpg", later / "img53.jpg")
    summary = json.loads(cli(settings.library, "ingest", str(later), "--json").stdout)
    assert summary["photos_new"] == 1 and summary["faces"] == 0  # its one face: blocked
    assert face_of(lib, "img53.jpg") not in searched_face_ids(settings.library, selfie)
    # The matched faces are in the vault now: an attested custodian sees which they are.
    shown = json.loads(cli(settings.library, "optout", "show", str(optout["optout_id"]),
                           "--json", user="custodian").stdout)  # fmt: skip
    assert sorted(f["face_id"] for f in shown["faces"]) == [img3, face_of(lib, "img53.jpg")]


def test_new_provenance_for_a_stored_photo_blocks_it(tmp_path, settings):
    data = shared_path(*DATASET)
    folder = tmp_path / "first"
    folder.mkdir()
    shutil.copy(data / "img1.jpg", folder / "img1.jpg")
    assert cli(settings.library, "init").exit_code == 0
    assert cli(settings.library, "ingest", str(folder)).exit_code == 0
    lib = Library.open(settings)
    face = face_of(lib, "img1.jpg")
    assert face in searched_face_ids(settings.library, data / "img2.jpg")
    # The same file turns up again, uploaded from Illinois.
    later = tmp_path / "later"
    later.mkdir()
    shutil.copy(data / "img1.jpg", later / "copy.jpg")
    (later / "m.csv").write_text("path,uploader_region\ncopy.jpg,US-IL\n")
    summary = json.loads(cli(settings.library, "ingest", "--manifest", str(later / "m.csv"),
                             "--json").stdout)  # fmt: skip
    assert summary["photos_already_stored"] == 1 and summary["sources_added"] == 1
    assert face not in searched_face_ids(settings.library, data / "img2.jpg")
    fresh = Library.open(settings)
    assert face not in fresh.index("searchable").ids() and face in fresh.index("vault").ids()
