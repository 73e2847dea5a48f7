"""Security findings 2-5: to anyone without vault access (an unattested custodian included) a
blocked face is not there, over the command line and the web service alike."""

from __future__ import annotations

import json
import shutil

import pytest
from argon2 import PasswordHasher
from conftest import make_settings, shared_path
from fastapi.testclient import TestClient
from helpers import api_key, cli
from PIL import Image, ImageOps

from faceledger.app.governance import attestations, users
from faceledger.app.ingest import ingest
from faceledger.app.library import Library
from faceledger.service import create_app

pytest_plugins = ["governance_fixtures"]  # its seeded-library fixtures

DATA = ("faces", "deepface", "tests", "unit", "dataset")
#: Users without vault access, by role (the custodian has not signed an attestation).
NO_VAULT = {"admin": "owner", "searcher": "sam", "custodian": "cus2", "auditor": "audrey"}
MISSING = 999_999


@pytest.fixture
def cheap_keys(monkeypatch):
    # Keys hashed with cheap argon2 parameters (verify reads them from the hash).
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


def _people(lib: Library, statement) -> None:
    owner = lib.actor(None)
    for name, role in (("sam", "searcher"), ("cus2", "custodian"), ("audrey", "auditor"),
                       ("cara", "custodian")):  # fmt: skip
        users.add_user(lib, owner, name, role)
    statement.write_text("I use the vault only for legal obligations.\n")
    attestations.attest(lib, lib.actor("cara"), "cara", statement)


def _keys(root) -> dict[str, str]:
    keys = {u: api_key(root, u) for u in ("sam", "cus2", "audrey", "cara")}
    lib = Library.open(make_settings(root))
    try:
        keys["owner"] = users.new_api_key(lib, lib.actor(None), "owner")["api_key"]
    finally:
        lib.close()
    return keys


@pytest.fixture
def seeded_people(seeded, tmp_path, cheap_keys):
    _people(seeded.lib, tmp_path / "statement.txt")
    return seeded


def _json(root, *argv, user):
    result = cli(root, *argv, "--json", user=user)
    assert result.exit_code == 0, (argv, user, result.stdout, result.stderr)
    return json.loads(result.stdout)


# -- finding 2 ----------------------------------------------------------------------------------
def test_blocked_and_missing_ids_get_one_answer(seeded_people):
    s = seeded_people
    photo, face = s.photos[s.blocked_photo], s.faces[s.blocked_photo][0]
    cases = [("photo", photo, "/photos/{}"), ("face", face, "/faces/{}")]
    keys = _keys(s.root)
    with TestClient(create_app(make_settings(s.root))) as client:
        for user in ("owner", "sam", "cus2"):  # every role that may `show`, vault or not
            auth = {"Authorization": f"Bearer {keys[user]}"}
            for kind, blocked, path in cases:
                hidden = cli(s.root, "show", kind, str(blocked), user=user)
                missing = cli(s.root, "show", kind, str(MISSING), user=user)
                assert hidden.exit_code == missing.exit_code == 4, (user, kind)
                assert hidden.stderr == missing.stderr.replace(str(MISSING), str(blocked))
                assert hidden.stderr.strip() == f"error: no {kind} with id {blocked}"
                web_hidden = client.get(path.format(blocked), headers=auth)
                web_missing = client.get(path.format(MISSING), headers=auth)
                assert web_hidden.status_code == web_missing.status_code == 404, (user, kind)
                assert web_hidden.json() == {
                    "error": "NotFoundError",
                    "message": web_missing.json()["message"].replace(str(MISSING), str(blocked)),
                }
        # With an attestation the custodian sees the blocked photo and face.
        auth = {"Authorization": f"Bearer {keys['cara']}"}
        assert client.get(f"/faces/{face}", headers=auth).json()["blocked"] is True
        assert cli(s.root, "show", "photo", str(photo), user="cara").exit_code == 0
    # Erasing is no way round: to an unattested custodian a vault face is not there either.
    for kind, blocked, _ in cases:
        hidden = cli(s.root, "erase", f"--{kind}", str(blocked), user="cus2")
        missing = cli(s.root, "erase", f"--{kind}", str(MISSING), user="cus2")
        assert hidden.exit_code == missing.exit_code == 4, kind
        assert hidden.stderr == missing.stderr.replace(str(MISSING), str(blocked))
    assert cli(s.root, "show", "face", str(face), user="cara").exit_code == 0  # not erased
    # What needs the vault still tells an unattested custodian what to do.
    refused = cli(s.root, "discovery", "count", "--blocked", user="cus2")
    assert refused.exit_code == 3 and "attestation" in refused.stderr


# -- finding 3 ----------------------------------------------------------------------------------
def test_an_unattested_custodians_stats_leave_out_the_vault(seeded_people):
    s = seeded_people
    keys = _keys(s.root)
    seen = {u: _json(s.root, "stats", user=u) for u in ("cus2", "sam", "cara")}
    assert seen["cus2"] == seen["sam"]
    assert "blocked_faces" not in seen["cus2"] and seen["cus2"]["photos"] == 2
    assert seen["cara"]["blocked_faces"] == 1 and seen["cara"]["photos"] == 3
    with TestClient(create_app(make_settings(s.root))) as client:
        web = {u: client.get("/stats", headers={"Authorization": f"Bearer {keys[u]}"}).json()
               for u in ("cus2", "cara")}  # fmt: skip
    assert web["cus2"] == seen["cus2"] and web["cara"]["blocked_faces"] == 1


# -- finding 4 ----------------------------------------------------------------------------------
def test_a_photo_with_a_blocked_face_shows_nothing_of_it(library, tmp_path, cheap_keys):
    data = shared_path(*DATA)
    # A real photo of two people: two portraits side by side.
    left, right = (Image.open(data / n).convert("RGB") for n in ("img8.jpg", "img3.jpg"))
    right = right.resize((right.width * left.height // right.height, left.height))
    pair = Image.new("RGB", (left.width + right.width, left.height))
    pair.paste(left, (0, 0))
    pair.paste(right, (left.width, 0))
    src = tmp_path / "src"
    src.mkdir()
    pair.save(src / "pair.jpg", quality=95)
    summary = ingest(library, library.actor(None), [src])
    assert summary.faces == 2 and not summary.errors
    _people(library, tmp_path / "statement.txt")
    # An opt-out by the person on the right blocks their face, and only theirs.
    selfie = tmp_path / "selfie.jpg"
    ImageOps.mirror(Image.open(data / "img3.jpg")).save(selfie)
    assert _json(library.root, "optout", "submit", "--photo", str(selfie), "--region",
                 "US-IL", "--name", "P. Four", user="owner")["status"] == "matched"  # fmt: skip
    full = _json(library.root, "show", "photo", "1", user="cara")
    blocked = [f["face_id"] for f in full["faces"] if f["blocked"]]
    assert len(blocked) == 1 and len(full["faces"]) == 2
    assert any(j["face_id"] == blocked[0] for j in full["jurisdictions"])
    keys = _keys(library.root)
    with TestClient(create_app(library.settings)) as client:
        for user in ("owner", "sam", "cus2"):
            web = client.get("/photos/1", headers={"Authorization": f"Bearer {keys[user]}"})
            for shown in (_json(library.root, "show", "photo", "1", user=user), web.json()):
                assert [f["face_id"] for f in shown["faces"]] == [
                    f["face_id"] for f in full["faces"] if not f["blocked"]
                ], user
                assert all(j["face_id"] != blocked[0] for j in shown["jurisdictions"]), user
                assert f'"face_id": {blocked[0]}' not in json.dumps(shown), user


# -- finding 5 ----------------------------------------------------------------------------------
def test_no_list_count_or_summary_reveals_the_vault(seeded_people, tmp_path):
    s = seeded_people
    root, hidden_photo = s.root, s.photos[s.blocked_photo]
    vault_face = s.faces[s.blocked_photo][0]
    sites = tmp_path / "sites.csv"
    sites.write_text("domain,publisher\nexample.org,Ex\n")
    assert cli(root, "sites", "import", str(sites)).exit_code == 0
    # sites list, to a searcher: provenance rows of the blocked photo are not counted.
    assert _json(root, "sites", "list", user="sam")[0]["sources"] == 2
    assert _json(root, "sites", "list", user="cara")[0]["sources"] == 3
    # hold list, to an auditor: photos held leave out the blocked photo.
    assert cli(root, "hold", "create", "--matter", "M", "--scope", "all").exit_code == 0
    assert _json(root, "hold", "list", user="audrey")[0]["photos_held"] == 2
    assert _json(root, "hold", "list", user="cara")[0]["photos_held"] == 3
    # retention satisfied, to an admin: the blocked photo's faces are marked, never named.
    marked = _json(root, "retention", "satisfied", "--face", str(vault_face), "--reason",
                   "closed", user="owner")  # fmt: skip
    assert marked["faces"] == []
    due = _json(root, "retention", "run", "--dry-run", user="owner")
    assert vault_face not in due["due_faces"] + due["held_faces"] and due["rules"] == {}
    assert vault_face in _json(root, "retention", "run", "--dry-run", user="cara")["due_faces"]
    # audit export, to an auditor: vault ids pseudonymised and marked.
    entries = _json(root, "audit", "export", user="audrey")
    photo_entries = [e for e in entries if e["action"] == "ingest.photo"]
    assert len(photo_entries) == 3
    assert sum(bool(e.get("pseudonymised")) for e in photo_entries) == 1
    for e in entries:
        assert vault_face not in e["object_ids"].get("faces", []), e
        assert hidden_photo not in e["object_ids"].get("photos", []), e
        assert "blocked_faces" not in e["details"] and "faces_blocked" not in e["details"], e
    assert _json(root, "audit", "verify", user="audrey")["ok"]
    # optout show and list, to an auditor: the faces an opt-out matched go to the vault, and
    # are then neither named nor counted.
    selfie = tmp_path / "selfie.jpg"
    ImageOps.mirror(Image.open(shared_path(*DATA) / "img3.jpg")).save(selfie)
    made = _json(root, "optout", "submit", "--photo", str(selfie), "--region", "US-IL",
                 "--name", "P. Four", user="owner")  # fmt: skip
    oid, matched = str(made["optout_id"]), made["matched_faces"]
    assert made["status"] == "matched" and matched == s.faces["img3.jpg"]
    for user in ("audrey", "owner", "cus2"):
        assert _json(root, "optout", "show", oid, user=user)["faces"] == []
        assert _json(root, "optout", "list", user=user)[0]["matched_faces"] == 0
    cara = _json(root, "optout", "show", oid, user="cara")
    assert [f["face_id"] for f in cara["faces"]] == matched
    # The admin's ingest summary counts searchable faces only.
    more = tmp_path / "more"
    more.mkdir()
    shutil.copy(shared_path(*DATA) / "img4.jpg", more / "img4.jpg")
    manifest = more / "m.csv"
    manifest.write_text("path,uploader_region\nimg4.jpg,US-IL\n")
    summary = _json(root, "ingest", "--manifest", str(manifest), user="owner")
    assert "faces_blocked" not in summary and summary["faces"] == 0
    assert summary["photos_new"] == 1 and summary["faces_searchable"] == 0
    text = cli(root, "ingest", "--manifest", str(manifest)).stdout
    assert "blocked" not in text


# -- reindex: the vault's size is a count of blocked faces ---------------------------------------
def test_reindex_tells_the_vaults_size_only_to_a_vault_reader(seeded_people):
    """`reindex` (admins) rebuilds the vault too, but neither its answer, its bars nor an
    export of its audit entry without vault access gives the vault's faces or structure (its
    structure follows its size)."""
    s = seeded_people
    owner = s.lib.actor(None)
    bars: dict[str, list[tuple[int, int]]] = {}

    def bar(name: str):
        ticks = bars.setdefault(name, [])
        return lambda done, total: ticks.append((done, total))

    done = s.lib.reindex(owner, on_progress=bar)
    assert done["vault"] == {"rebuilt": True} and done["searchable"]["faces"] == 2
    searchable = bars.pop("searchable")
    assert bars == {}  # no bar for the vault
    assert searchable[0] == (0, 2) and searchable[-1] == (2, 2)
    assert _json(s.root, "reindex", user="owner")["vault"] == {"rebuilt": True}
    # The audit entry keeps the size; an auditor's export leaves it out, a vault reader's not.
    [audrey] = [e for e in _json(s.root, "audit", "export", user="audrey")
                if e["action"] == "reindex"][-1:]  # fmt: skip
    assert set(audrey["details"]) == {"searchable"}, audrey
    [cara] = [e for e in _json(s.root, "audit", "export", user="cara")
              if e["action"] == "reindex"][-1:]  # fmt: skip
    assert cara["details"]["blocked_faces"] == 1 and cara["details"]["vault_structure"]

