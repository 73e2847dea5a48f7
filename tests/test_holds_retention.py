"""Legal holds stop retention and erasure; releasing them carries out what was deferred;
destruction leaves no trace of a face anywhere in the library."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from governance_support import all_bytes
from sqlalchemy import select, update

from faceledger import audit
from faceledger.app.governance import attestations, destruction, holds, retention, users
from faceledger.catalog import schema as t
from faceledger.clock import utcnow
from faceledger.errors import PermissionDenied
from faceledger.index.faiss_store import read_snapshot

pytest_plugins = ["governance_fixtures"]  # its seeded-library fixtures


def _age(lib, face_ids, years=4):
    """Make faces look last used ``years`` ago (the retention limit is 3 years)."""
    with lib.writing() as conn:
        conn.execute(
            update(t.faces)
            .where(t.faces.c.id.in_(face_ids))
            .values(last_interaction_at=utcnow() - timedelta(days=365 * years + 2))
        )


def _vector_bytes(lib, face_id) -> bytes:
    ids, vectors = lib.catalog.vectors(t.faces.c.id == face_id)
    assert list(ids) == [face_id]
    return vectors[0].astype("<f4").tobytes()


def _assert_no_trace(s, face_id: int, vector: bytes) -> None:
    lib = s.lib
    with lib.catalog.engine.connect() as conn:
        row = conn.execute(select(t.faces).where(t.faces.c.id == face_id)).mappings().one()
        assert row["status"] == "destroyed" and row["vector"] is None
        assert row["vector_key_id"] is None and row["landmarks"] == []
        assert row["box_top"] == row["box_bottom"] == row["box_left"] == row["box_right"] == 0
        assert not conn.scalar(
            select(t.jurisdictions.c.photo_id).where(t.jurisdictions.c.face_id == face_id)
        )
        assert not conn.scalar(
            select(t.optout_faces.c.face_id).where(t.optout_faces.c.face_id == face_id)
        )
    # Both indexes, in memory and as saved, and as a fresh process would load them.
    for name in ("searchable", "vault"):
        assert face_id not in lib.index(name).ids()
        saved, _ = read_snapshot(s.root / "index" / f"{name}.faiss")
        assert face_id not in saved.ids()
    # The vector's bytes (or its first half, in case of partial pages) are in no file at all.
    blob = all_bytes(s.root)
    assert vector not in blob and vector[:256] not in blob


def _certificates(lib, action="destroy"):
    return [e for e in audit.export(lib.catalog.engine) if e["action"] == action]


def test_retention_destroys_what_is_due_completely(seeded):
    lib, actor = seeded.lib, seeded.lib.actor(None)
    face = seeded.faces["img1.jpg"][0]
    vector = _vector_bytes(lib, face)
    assert vector in all_bytes(seeded.root)  # the check below can see a vector at all
    _age(lib, [face])
    dry = retention.run_retention(lib, actor, dry_run=True)
    assert dry["due_faces"] == [face]
    assert face in lib.index("searchable").ids()  # a dry run destroys nothing
    result = retention.run_retention(lib, actor)
    assert result["destroyed_faces"] == [face]
    _assert_no_trace(seeded, face, vector)
    [cert] = _certificates(lib)
    body = cert["details"]["certificate"]
    assert cert["object_ids"]["faces"] == [face] and cert["actor"] == actor.name
    assert body["rule"] == "retention.max_years_since_last_interaction"
    assert body["faces"][0]["vector_sha256"] and body["destroyed_at"]
    # The other faces are untouched.
    others = [f for n, fs in seeded.faces.items() if n != "img1.jpg" for f in fs]
    with lib.catalog.engine.connect() as conn:
        assert set(conn.scalars(select(t.faces.c.id).where(t.faces.c.status == "active"))) == set(
            others
        )
    assert audit.verify(lib.catalog.engine).ok


def test_hold_stops_retention_and_release_carries_it_out(seeded):
    lib, actor = seeded.lib, seeded.lib.actor(None)
    blocked = seeded.faces["img5.jpg"][0]
    vector = _vector_bytes(lib, blocked)
    _age(lib, [blocked])
    hold = holds.create_hold(lib, actor, "1:21-cv-00135", "jurisdiction=US-IL")
    # The admin has no vault access: the held photo (its one face is blocked) goes uncounted.
    assert hold["photos_held_now"] == 0
    result = retention.run_retention(lib, actor)
    assert result["destroyed_faces"] == [] and result["held_faces"] == []
    assert blocked in lib.index("vault").ids()
    retention.run_retention(lib, actor)  # a repeated run defers nothing twice
    with lib.catalog.engine.connect() as conn:
        pending = conn.execute(select(t.deferred_actions)).mappings().all()
    assert [(p["object_kind"], p["object_id"], p["done_at"]) for p in pending] == [
        ("face", blocked, None)
    ]
    released = holds.release_hold(lib, actor, hold["hold"])
    assert released["deferred"]["destroyed_faces"] == [blocked]
    _assert_no_trace(seeded, blocked, vector)
    with lib.catalog.engine.connect() as conn:
        assert conn.scalar(select(t.deferred_actions.c.done_at)) is not None


def test_two_holds_keep_an_item_until_the_last_is_released(seeded):
    lib, actor = seeded.lib, seeded.lib.actor(None)
    custodian = _custodian(lib, actor)
    photo = seeded.photos["img3.jpg"]
    ids_file = seeded.root.parent / "photos.txt"
    ids_file.write_text(f"# held photos\n{photo}\n")
    first = holds.create_hold(lib, actor, "matter A", f"photos={ids_file}")
    second = holds.create_hold(lib, actor, "matter B", "all")
    result = destruction.erase(lib, custodian, photo=photo)
    assert result["destroyed_photos"] == [] and result["deferred"][0]["photo"] == photo
    assert holds.release_hold(lib, actor, first["hold"])["deferred"]["carried_out"] == 0
    stored = lib.catalog.photo(photo)["stored_path"]
    assert (seeded.root / stored).exists()
    done = holds.release_hold(lib, actor, second["hold"])["deferred"]
    assert done["destroyed_photos"] == [photo]
    assert done["destroyed_faces"] == seeded.faces["img3.jpg"]
    assert not (seeded.root / stored).exists()
    assert [h["active"] for h in holds.list_holds(lib, actor)] == [False, False]


def _custodian(lib, admin):
    """A custodian with a current attestation (signed by herself): she may act on the vault."""
    users.add_user(lib, admin, "cara", "custodian")
    statement = lib.root.parent / "cara-statement.txt"
    statement.write_text("I act on the vault only for legal obligations.\n")
    attestations.attest(lib, lib.actor("cara"), "cara", statement)
    return lib.actor("cara")


def test_erase_face_is_total_and_certified(seeded):
    lib, admin = seeded.lib, seeded.lib.actor(None)
    with pytest.raises(PermissionDenied):
        destruction.erase(lib, admin, face=1)  # admins may not erase: custodians answer for it
    custodian = _custodian(lib, admin)
    face = seeded.faces["img3.jpg"][0]
    vector = _vector_bytes(lib, face)
    result = destruction.erase(lib, custodian, face=face)
    assert result["destroyed_faces"] == [face]
    _assert_no_trace(seeded, face, vector)
    [cert] = _certificates(lib, "erase")
    assert cert["actor"] == "cara" and cert["details"]["certificate"]["rule"].startswith("erasure")
    again = destruction.erase(lib, custodian, face=face)  # already gone: nothing more to do
    assert again["destroyed_faces"] == []


def test_erase_photo_removes_the_file_and_every_face(seeded):
    lib, admin = seeded.lib, seeded.lib.actor(None)
    custodian = _custodian(lib, admin)
    photo = seeded.photos["img5.jpg"]
    stored = seeded.root / lib.catalog.photo(photo)["stored_path"]
    data = stored.read_bytes()
    vectors = [_vector_bytes(lib, f) for f in seeded.faces["img5.jpg"]]
    destruction.erase(lib, custodian, photo=photo)
    assert not stored.exists()
    for face, vector in zip(seeded.faces["img5.jpg"], vectors, strict=True):
        _assert_no_trace(seeded, face, vector)
    assert data[1000:1400] not in all_bytes(seeded.root)
    with lib.catalog.engine.connect() as conn:
        row = conn.execute(select(t.photos).where(t.photos.c.id == photo)).mappings().one()
    assert row["status"] == "destroyed" and row["stored_path"] is None


def test_search_after_destruction_cannot_find_the_face(seeded):
    lib, admin = seeded.lib, seeded.lib.actor(None)
    face = seeded.faces["img1.jpg"][0]
    vector = np.frombuffer(_vector_bytes(lib, face), "<f4")
    _age(lib, [face])
    retention.run_retention(lib, admin)
    _, ids = lib.index("searchable").search(vector, 5)
    assert face not in ids


def test_purpose_satisfied_makes_faces_due_at_once(seeded):
    lib, actor = seeded.lib, seeded.lib.actor(None)
    face = seeded.faces["img3.jpg"][0]
    vector = _vector_bytes(lib, face)
    assert retention.run_retention(lib, actor, dry_run=True)["due_faces"] == []
    with pytest.raises(Exception, match="reason"):
        retention.mark_purpose_satisfied(lib, actor, " ", face_ids=[face])
    marked = retention.mark_purpose_satisfied(lib, actor, "account closed", face_ids=[face])
    assert marked["faces"] == [face]
    result = retention.run_retention(lib, actor)
    assert result["destroyed_faces"] == [face]
    assert result["rules"] == {"retention.destroy_when_purpose_satisfied": 1}
    _assert_no_trace(seeded, face, vector)
    [entry] = [e for e in audit.export(lib.catalog.engine)
               if e["action"] == "retention.purpose_satisfied"]  # fmt: skip
    assert entry["details"]["reason"] == "account closed"
