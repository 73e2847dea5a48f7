"""The web service: API-key auth, thin endpoints over the library, probes kept in memory."""

from __future__ import annotations

import json
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from conftest import make_settings, shared_path
from fastapi.testclient import TestClient
from helpers import cli
from sqlalchemy import select

from faceledger import audit
from faceledger.app.governance import users
from faceledger.app.library import Library
from faceledger.catalog import schema as t
from faceledger.config import Settings
from faceledger.service import create_app

DATASET = ("faces", "deepface", "tests", "unit", "dataset")
#: (file, uploader region): img4 shows the same person as img1 and the probe img2, but was
#: uploaded from Illinois, so the default policy blocks its face.
GALLERY = [("img1.jpg", ""), ("img3.jpg", ""), ("img4.jpg", "US-IL")]
USERS = {"sam": "searcher", "aud": "auditor", "cus": "custodian", "gone": "searcher"}


@dataclass
class Served:
    settings: Settings
    data: Path
    keys: dict[str, str]
    client: TestClient

    def as_user(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}

    def search(self, user: str, *images: str, **fields: str):
        files = [("images", (n, (self.data / n).read_bytes(), "image/jpeg")) for n in images]
        return self.client.post("/search", headers=self.as_user(user), files=files, data=fields)

    def audit_entries(self) -> list[dict]:
        lib = Library.open(self.settings)
        try:
            return list(audit.export(lib.catalog.engine))
        finally:
            lib.close()


def _ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    data = shared_path(*DATASET)
    root = tmp_path_factory.mktemp("service")
    src = root / "src"
    src.mkdir()
    lines = ["path,source_url,page_url,uploader_region"]
    for name, region in GALLERY:
        shutil.copy(data / name, src / name)
        lines.append(f"{name},https://cdn.example.org/{name},https://example.org/p/{name},{region}")
    (src / "manifest.csv").write_text("\n".join(lines) + "\n")
    settings = make_settings(root / "library")
    # Keys hashed with cheap argon2 parameters (verify reads them from the hash): the real ones
    # cost about 0.2 s a request, which adds up over this module.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
        keys = _build(settings, src / "manifest.csv")
    with TestClient(create_app(settings)) as client:
        yield Served(settings, data, keys, client)


def _build(settings: Settings, manifest: Path) -> dict[str, str]:
    """Init, ingest the gallery, add the users; each user's API key."""
    _ok(cli(settings.library, "init"))
    summary = json.loads(
        _ok(cli(settings.library, "ingest", "--manifest", str(manifest), "--json"))
    )
    # The admin's summary counts searchable faces only (the vault is not theirs).
    assert "faces_blocked" not in summary and not summary["errors"], summary
    keys = {}
    for name, role in {"owner": None, **USERS}.items():
        if role:
            _ok(cli(settings.library, "users", "add", name, "--role", role))
        keys[name] = json.loads(_ok(cli(settings.library, "users", "key", name, "--json")))[
            "api_key"
        ]
    _ok(cli(settings.library, "users", "disable", "gone"))
    return keys


def _face_ids(found: list[dict]) -> set[int]:
    return {m["face_id"] for entry in found for f in entry["faces"] for m in f["matches"]}


def _face_of(served: Served, name: str) -> tuple[int, int]:
    """(face id, photo id) of the one face in a gallery photo, read straight from the catalog."""
    faces, sources = t.faces, t.photo_sources
    lib = Library.open(served.settings)
    try:
        with lib.catalog.engine.connect() as conn:
            return tuple(
                conn.execute(
                    select(faces.c.id, faces.c.photo_id)
                    .select_from(faces.join(sources, faces.c.photo_id == sources.c.photo_id))
                    .where(sources.c.source_url == f"https://cdn.example.org/{name}")
                ).one()
            )
    finally:
        lib.close()


# -- auth --------------------------------------------------------------------------------------
def test_healthz_needs_no_key_and_shows_no_counts(served):
    r = served.client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert not any(isinstance(v, int) for v in r.json().values())


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer flk_00000000_not-a-real-key"},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["missing", "bad-key", "malformed", "not-bearer"],
)
def test_missing_or_bad_key_is_401(served, headers):
    for method, path in (("get", "/stats"), ("get", "/faces/1"), ("post", "/search")):
        r = getattr(served.client, method)(path, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["error"] == "Unauthorized"
        assert "faceledger users key" in r.json()["message"]
        assert r.headers["www-authenticate"] == "Bearer"


def test_disabled_user_is_refused(served):
    r = served.client.get("/stats", headers=served.as_user("gone"))
    assert r.status_code == 401


# -- search ------------------------------------------------------------------------------------
def test_search_finds_the_same_person_with_provenance(served):
    img1, _ = _face_of(served, "img1.jpg")
    r = served.search("sam", "img2.jpg", top_k="5")
    assert r.status_code == 200, r.text
    (entry,) = r.json()
    assert entry["probe"] == "img2.jpg" and len(entry["faces"]) == 1
    best = entry["faces"][0]["matches"][0]
    assert best["face_id"] == img1 and best["distance"] < 0.6
    assert best["source"] == "https://cdn.example.org/img1.jpg"
    (prov,) = best["provenance"]
    assert prov["page_url"] == "https://example.org/p/img1.jpg"
    assert best["vector_collected_at"]


def test_the_probe_is_not_stored(served):
    assert served.search("sam", "img2.jpg").status_code == 200
    probe = (served.data / "img2.jpg").read_bytes()
    for path in served.settings.library.rglob("*"):
        if path.is_file():
            assert probe[:4096] not in path.read_bytes(), path


def test_large_probes_never_reach_a_temporary_file(served, monkeypatch):
    # img1 is 2.2 MB: a form parser that spools files over 1 MB to disk would call tempfile.
    assert (served.data / "img1.jpg").stat().st_size > 1024 * 1024
    served.client.get("/stats", headers=served.as_user("sam"))  # index loaded (and saved) first

    def refuse(*_args, **_kwargs):
        raise AssertionError("a temporary file was created while serving a search")

    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    r = served.search("sam", "img1.jpg")
    assert r.status_code == 200, r.text
    assert _face_of(served, "img1.jpg")[0] in _face_ids(r.json())


def test_max_file_bytes_is_enforced_while_reading(served):
    small = replace(served.settings, max_file_bytes=100_000)
    with TestClient(create_app(small)) as client:
        files = [("images", ("img2.jpg", (served.data / "img2.jpg").read_bytes(), "image/jpeg"))]
        r = client.post("/search", headers=served.as_user("sam"), files=files)
    assert r.status_code == 413
    assert r.json()["error"] == "ImageTooLargeError"
    assert "100,000" in r.json()["message"]


def test_bad_requests_are_422_with_a_message(served):
    for fields in ({"top_k": "0"}, {"top_k": "many"}, {"threshold": "3"}):
        r = served.search("sam", "img2.jpg", **fields)
        assert r.status_code == 422, fields
        assert r.json()["error"] == "InputError"
    r = served.client.post("/search", headers=served.as_user("sam"), data={"top_k": "3"})
    assert r.status_code == 422 and "images" in r.json()["message"]
    files = [("images", ("junk.jpg", b"not an image", "image/jpeg"))]
    r = served.client.post("/search", headers=served.as_user("sam"), files=files)
    assert r.status_code == 200 and "error" in r.json()[0]  # a bad probe is reported, not fatal


# -- blocked faces -----------------------------------------------------------------------------
def test_a_blocked_face_is_never_found_or_shown(served):
    blocked, blocked_photo = _face_of(served, "img4.jpg")
    img1, img1_photo = _face_of(served, "img1.jpg")
    for user in ("sam", "owner"):
        r = served.search(user, "img2.jpg", "img4.jpg", top_k="1000", threshold="2")
        assert r.status_code == 200, r.text
        assert img1 in _face_ids(r.json()) and blocked not in _face_ids(r.json())
    sam = served.as_user("sam")
    r = served.client.get(f"/faces/{blocked}", headers=sam)
    assert r.status_code == 404
    assert r.json() == {"error": "NotFoundError", "message": f"no face with id {blocked}"}
    assert served.client.get(f"/photos/{blocked_photo}", headers=sam).status_code == 404
    assert served.client.get(f"/faces/{img1}", headers=sam).status_code == 200
    photo = served.client.get(f"/photos/{img1_photo}", headers=sam)
    assert photo.status_code == 200
    assert photo.json()["sources"][0]["source_url"] == "https://cdn.example.org/img1.jpg"
    assert served.client.get("/photos/999999", headers=sam).json()["error"] == "NotFoundError"


def test_stats_hide_blocked_counts_from_non_custodians(served):
    r = served.client.get("/stats", headers=served.as_user("sam"))
    assert r.status_code == 200
    assert "blocked_faces" not in r.json() and r.json()["searchable_faces"] == 2
    # A custodian without an attestation has no vault access: the same counts (finding 3).
    r = served.client.get("/stats", headers=served.as_user("cus"))
    assert "blocked_faces" not in r.json() and r.json()["searchable_faces"] == 2


def test_stats_do_not_count_blocked_only_photos_for_non_custodians(served):
    r = served.client.get("/stats", headers=served.as_user("sam")).json()
    # Each photo with a face a searcher may see holds at least one searchable face.
    assert r["photos"] - r["photos_without_faces"] <= r["searchable_faces"], r


# -- roles -------------------------------------------------------------------------------------
def test_roles_are_enforced_by_the_library(served):
    r = served.search("aud", "img2.jpg")
    assert r.status_code == 403 and r.json()["error"] == "PermissionDenied"
    r = served.client.get("/discovery/count", headers=served.as_user("sam"))
    assert r.status_code == 403
    r = served.client.get("/discovery/count?blocked=true", headers=served.as_user("aud"))
    assert r.status_code == 403
    r = served.client.get(
        "/discovery/count?jurisdiction=us-il&signal=uploader", headers=served.as_user("aud")
    )
    assert r.status_code == 200, r.text
    assert r.json()["blocked"] is False and r.json()["total"]["faces"] == 0
    r = served.client.get("/discovery/count?signal=telepathy", headers=served.as_user("aud"))
    assert r.status_code == 422 and r.json()["error"] == "InputError"


def test_every_search_is_audited(served):
    before = len(served.audit_entries())
    assert served.search("sam", "img2.jpg").status_code == 200
    assert served.search("owner", "img2.jpg", "img3.jpg").status_code == 200
    new = served.audit_entries()[before:]
    assert [(e["action"], e["actor"]) for e in new] == [("search", "sam"), ("search", "owner")]
    assert new[1]["details"]["probes"] == 2
    assert _face_of(served, "img1.jpg")[0] in new[0]["object_ids"]["faces"]


def test_concurrent_first_requests(served):
    """A fresh app: first searches race to load the index and the face model."""
    with TestClient(create_app(served.settings)) as client:
        body = (served.data / "img2.jpg").read_bytes()

        def one(i: int):
            path, user = ("/stats", "cus") if i % 3 == 0 else ("/search", "sam")
            if path == "/stats":
                return client.get(path, headers=served.as_user(user))
            files = [("images", ("img2.jpg", body, "image/jpeg"))]
            return client.post(path, headers=served.as_user(user), files=files)

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(one, range(6)))
    assert [a.status_code for a in answers] == [200] * 6
    lib = Library.open(served.settings)
    try:
        assert audit.verify(lib.catalog.engine).ok
    finally:
        lib.close()


def test_a_running_service_sees_faces_ingested_later(tmp_path, served):
    settings = replace(served.settings, library=tmp_path / "library")
    shutil.copytree(served.settings.library, settings.library)
    folder = tmp_path / "later"
    folder.mkdir()
    shutil.copy(served.data / "img5.jpg", folder / "img5.jpg")
    owner = served.as_user("owner")
    files = [("images", ("img2.jpg", (served.data / "img2.jpg").read_bytes()))]
    with TestClient(create_app(settings)) as client:
        for step in ("before", "after"):
            if step == "after":  # another process ingests while the service runs
                _ok(cli(settings.library, "ingest", str(folder)))
            found = client.post("/search", headers=owner, files=files, data={"threshold": "2"})
            searchable = client.get("/stats", headers=owner).json()["searchable_faces"]
            assert len(_face_ids(found.json())) == searchable, step


# -- page, docs, CLI ---------------------------------------------------------------------------
def test_search_page_and_docs(served):
    r = served.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'id="images"' in r.text and "fetch(" in r.text
    assert "script-src 'sha256-" in r.headers["content-security-policy"]
    spec = served.client.get("/openapi.json").json()
    for path in ("/search", "/photos/{photo_id}", "/faces/{face_id}", "/stats", "/discovery/count"):
        operation = next(iter(spec["paths"][path].values()))
        assert operation["summary"], path
    assert "multipart/form-data" in spec["paths"]["/search"]["post"]["requestBody"]["content"]
    assert served.client.get("/docs").status_code == 200


def test_serve_command_runs_uvicorn_on_the_app(served, monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    _ok(cli(served.settings.library, "serve", "--port", "8123"))
    ((app, kw),) = calls
    assert kw == {"host": "127.0.0.1", "port": 8123}
    assert app.title == "faceledger"
