"""Security finding 1: an opt-out matches the vault for everyone, and names vault faces only to
an attested custodian; to anyone else, matching only vault faces answers as matching nothing."""

from __future__ import annotations

import shutil

from conftest import shared_path
from PIL import Image, ImageOps
from sqlalchemy import select

from faceledger.app.governance import attestations, users
from faceledger.app.governance.destruction import erase
from faceledger.app.ingest import ingest
from faceledger.app.optout import submit_optout
from faceledger.catalog import schema as t

DATA = ("faces", "deepface", "tests", "unit", "dataset")


def _library_with_one_blocked_person(library, tmp_path):
    data = shared_path(*DATA)
    src = tmp_path / "src"
    src.mkdir()
    for name in ("img3.jpg", "img8.jpg"):  # person04 (uploaded from Illinois), person03
        shutil.copy(data / name, src / name)
    (src / "m.csv").write_text("path,uploader_region\nimg3.jpg,US-IL\nimg8.jpg,\n")
    summary = ingest(library, library.actor(None), manifests=[src / "m.csv"])
    assert summary.faces_blocked == 1 and summary.faces == 2
    with library.catalog.engine.connect() as conn:
        return conn.scalar(select(t.faces.c.id).where(t.faces.c.blocked.is_(True)))


def test_an_optout_matching_only_vault_faces_answers_as_no_match(library, tmp_path):
    blocked_face = _library_with_one_blocked_person(library, tmp_path)
    admin = library.actor(None)
    users.add_user(library, admin, "cus", "custodian")
    # The blocked photo mirrored: the same person for sure (about 0.2 apart), a different file.
    selfie = tmp_path / "selfie.jpg"
    ImageOps.mirror(Image.open(shared_path(*DATA) / "img3.jpg")).save(selfie)
    nobody = shared_path(*DATA) / "img13.jpg"  # person05: in no photo of the library

    for actor in (admin, library.actor("cus")):  # an admin; a custodian not yet attested
        answer = submit_optout(library, actor, selfie, "US-IL", "P. Four")
        unmatched = submit_optout(library, actor, nobody, "US-IL", "P. Five")
        strip = {"optout_id"}
        assert {k: v for k, v in answer.items() if k not in strip} == {
            k: v for k, v in unmatched.items() if k not in strip
        }
        assert answer["status"] == "no_match" and answer["matched_faces"] == []
    # Yet the match was recorded, so the face stays blocked for this person.
    with library.catalog.engine.connect() as conn:
        linked = conn.scalars(select(t.optout_faces.c.face_id)).all()
    assert set(linked) == {blocked_face}

    statement = tmp_path / "s.txt"
    statement.write_text("I read the vault only for the matters I am assigned.\n")
    attestations.attest(library, library.actor("cus"), "cus", statement)
    answer = submit_optout(library, library.actor("cus"), selfie, "US-IL", "P. Four")
    assert answer["status"] == "matched" and answer["matched_faces"] == [blocked_face]


def test_erasure_by_optout_covers_the_vault_but_names_it_to_no_one_without_access(
    library, tmp_path
):
    blocked_face = _library_with_one_blocked_person(library, tmp_path)
    admin = library.actor(None)
    users.add_user(library, admin, "cus", "custodian")  # not attested: no vault access
    selfie = tmp_path / "selfie.jpg"
    ImageOps.mirror(Image.open(shared_path(*DATA) / "img3.jpg")).save(selfie)
    optout_id = submit_optout(library, admin, selfie, "US-IL", "P. Four")["optout_id"]

    answer = erase(library, library.actor("cus"), optout=optout_id)
    assert answer["destroyed_faces"] == [] and answer["deferred"] == []
    # Yet the person's vault face is gone: the erasure was carried out, only not named.
    with library.catalog.engine.connect() as conn:
        status = conn.scalar(select(t.faces.c.status).where(t.faces.c.id == blocked_face))
    assert status == "destroyed"
