"""The typed OpenAPI, the docs pages from packaged assets, and the /v1 JSON endpoints."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from conftest import make_settings, shared_path
from fastapi.testclient import TestClient
from helpers import cli

from faceledger.app.governance import users
from faceledger.config import Settings
from faceledger.service import create_app

DATASET = ("faces", "deepface", "tests", "unit", "dataset")
GALLERY = [("img1.jpg", ""), ("img3.jpg", ""), ("img4.jpg", "US-IL")]
USERS = {"sam": "searcher", "aud": "auditor", "cus": "custodian"}
#: Free-form on purpose: what an audit entry recorded depends on its action.
FREE_FORM = {("AuditEntry", "details")}


@dataclass
class Api:
    settings: Settings
    data: Path
    keys: dict[str, str]
    client: TestClient

    def h(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


def _ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Api:
    data = shared_path(*DATASET)
    broken = shared_path("broken-images", "broken.png")
    root = tmp_path_factory.mktemp("api")
    src = root / "src"
    src.mkdir()
    lines = ["path,source_url,page_url,uploader_region"]
    for name, region in GALLERY:
        shutil.copy(data / name, src / name)
        lines.append(f"{name},https://cdn.example.org/{name},https://example.org/p/{name},{region}")
    shutil.copy(broken, src / "broken.png")
    lines.append("broken.png,https://cdn.example.org/broken.png,,")
    (src / "manifest.csv").write_text("\n".join(lines) + "\n")
    settings = make_settings(root / "library")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
        lib = settings.library
        _ok(cli(lib, "init"))
        cli(lib, "ingest", "--manifest", str(src / "manifest.csv"))  # one item fails: exit 1
        keys = {}
        for name, role in {"owner": None, **USERS}.items():
            if role:
                _ok(cli(lib, "users", "add", name, "--role", role))
            keys[name] = json.loads(_ok(cli(lib, "users", "key", name, "--json")))["api_key"]
        with TestClient(create_app(settings)) as client:
            yield Api(settings, data, keys, client)


# -- the OpenAPI document ---------------------------------------------------------------------
def _untyped(schema: dict, components: dict, where: str, seen: set[str]) -> list[str]:
    """Places under ``schema`` typed only as 'some object' (additionalProperties true)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return _untyped(components[name], components, name, seen)
    found = []
    if schema.get("additionalProperties") is True or (
        schema.get("type") == "object" and "properties" not in schema
        and "additionalProperties" not in schema
    ):  # fmt: skip
        found.append(where)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            found += _untyped(sub, components, where, seen)
    if isinstance(schema.get("items"), dict):
        found += _untyped(schema["items"], components, f"{where}[]", seen)
    if isinstance(schema.get("additionalProperties"), dict):
        found += _untyped(schema["additionalProperties"], components, f"{where}{{}}", seen)
    for prop, sub in schema.get("properties", {}).items():
        if (where, prop) in FREE_FORM:
            continue
        found += _untyped(sub, components, f"{where}.{prop}", seen)
    return found


def test_every_200_answer_is_typed(api):
    doc = api.client.get("/openapi.json").json()
    components = doc["components"]["schemas"]
    problems, typed = [], 0
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            ok = op["responses"].get("200")
            assert ok is not None, f"{method} {path} declares no 200 answer"
            content = ok.get("content", {})
            if "application/json" not in content:
                assert content, f"{method} {path}: its 200 answer has no content type"
                continue  # e.g. the production's zip
            schema = content["application/json"]["schema"]
            assert schema, f"{method} {path}: its 200 answer has no schema"
            typed += 1
            problems += [f"{method} {path}: {w}"
                         for w in _untyped(schema, components, "answer", set())]  # fmt: skip
    assert not problems, problems
    assert typed >= 40  # native, /v1 and CompreFace routes
    assert "additionalProperties" not in json.dumps(components["Photo"]).replace(
        '"additionalProperties": false', "")  # fmt: skip


def test_the_untyped_check_would_catch_a_dict_answer():
    bare = {"type": "object", "additionalProperties": True}
    assert _untyped(bare, {}, "answer", set()) == ["answer"]
    assert _untyped({"type": "object"}, {}, "answer", set()) == ["answer"]


# -- docs from packaged assets -------------------------------------------------------------------
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(api, page):
    r = api.client.get(page)
    assert r.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
    urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", r.text)
    assert urls, r.text
    assert not [u for u in urls if "//" in u], urls  # no CDN, no other host
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts
    for url in urls:
        asset = api.client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
    big = max(len(api.client.get(u).content) for u in scripts)
    assert big > 500_000  # the real bundle, not a stub


def test_vendored_assets_carry_their_licences():
    from importlib.resources import files

    static = files("faceledger.service") / "static"
    assert "MIT License" in (static / "redoc" / "LICENSE").read_text()
    assert "Apache License" in (static / "swagger-ui" / "LICENSE").read_text()


# -- /v1 JSON endpoints --------------------------------------------------------------------------
def test_discovery_endpoints_follow_roles_and_the_vault(api):
    c = api.client
    assert c.get("/v1/discovery/sources", headers=api.h("sam")).status_code == 403
    r = c.get("/v1/discovery/sources", headers=api.h("aud"), params={"blocked": "false"})
    assert r.status_code == 200
    urls = {row["source_url"] for row in r.json()}
    assert "https://cdn.example.org/img4.jpg" not in urls  # blocked: not for auditors
    assert "https://cdn.example.org/img1.jpg" in urls
    # Custodians need an attestation for the vault; signed through the API as themselves.
    r = c.post("/v1/discovery/people", headers=api.h("cus"))
    assert r.status_code == 405
    r = c.get("/v1/discovery/people", headers=api.h("cus"))
    assert r.status_code == 403 and "attestation" in r.json()["message"]
    r = c.post("/v1/attestations", headers=api.h("cus"),
               files={"file": ("s.txt", b"I use the vault for legal duties only.\n")})  # fmt: skip
    assert r.status_code == 200 and r.json()["user"] == "cus", r.text
    r = c.get("/v1/discovery/people", headers=api.h("cus"))
    assert r.status_code == 200 and r.json()["faces"] == 3 and r.json()["estimate"] == 2
    r = c.get("/v1/discovery/vector-dates", headers=api.h("cus"), params={"blocked": "true"})
    assert [row["source_url"] for row in r.json()] == ["https://cdn.example.org/img4.jpg"]
    r = c.get("/v1/discovery/count", headers={"x-api-key": api.keys["cus"]})
    assert r.status_code == 200 and r.json()["total"]["faces"] == 3


def test_locate_and_produce_a_zip(api):
    c = api.client
    probe = (api.data / "img2.jpg").read_bytes()
    order = b"ORDER: produce every photo of the plaintiff.\n"
    r = c.post("/v1/discovery/locate", headers=api.h("cus"),
               files=[("images", ("img2.jpg", probe, "image/jpeg")),
                      ("authority", ("order.txt", order, "text/plain"))],
               data={"matter": "Doe v. Acme", "include_vault": "true"})  # fmt: skip
    assert r.status_code == 200, r.text
    located = r.json()
    assert located["authority_sha256"] == hashlib.sha256(order).hexdigest()
    assert located["matter"] == "Doe v. Acme" and located["references"][0]["faces"] == 1
    ids = [p["photo_id"] for p in located["photos"]]
    assert len(ids) == 2 and any(p["blocked"] for p in located["photos"]), located
    assert [(s["website"], s["photos"]) for s in located["sites"]] == [("example.org", sorted(ids))]
    r = c.post("/v1/discovery/produce", headers=api.h("cus"),
               json={"matter": "Doe v. Acme", "prefix": "ACME", "photo_ids": ids})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["x-bates-range"] == "ACME00000001-ACME00000002"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert any(n.endswith("MANIFEST.sha256") for n in names)
    images = sorted(n for n in names if "/IMAGES/" in n)
    assert images == ["ACME00000001/IMAGES/ACME00000001.jpg",
                      "ACME00000001/IMAGES/ACME00000002.jpg"], names  # fmt: skip
    r = c.post("/v1/discovery/produce", headers=api.h("sam"),
               json={"matter": "M", "prefix": "X", "photo_ids": ids})  # fmt: skip
    assert r.status_code == 403


def test_holds_place_list_release(api):
    c = api.client
    r = c.post("/v1/holds", headers=api.h("cus"),
               json={"matter": "1:21-cv-00135", "scope": "jurisdiction=US-IL"})  # fmt: skip
    assert r.status_code == 200 and r.json()["photos_held_now"] == 1, r.text
    hold = r.json()["hold"]
    assert [h["hold"] for h in c.get("/v1/holds", headers=api.h("aud")).json()] == [hold]
    assert c.post(f"/v1/holds/{hold}/release", headers=api.h("sam")).status_code == 403
    r = c.post(f"/v1/holds/{hold}/release", headers=api.h("cus"))
    assert r.status_code == 200 and r.json()["released"] is True
    assert c.post(f"/v1/holds/{hold}/release", headers=api.h("cus")).status_code == 409


def test_audit_verify_head_and_filtered_export(api):
    c = api.client
    r = c.get("/v1/audit/verify", headers=api.h("aud"))
    assert r.status_code == 200 and r.json()["ok"] is True
    head = c.post("/v1/audit/head", headers=api.h("aud")).json()
    assert len(head["hash"]) == 64
    assert c.get("/v1/audit/export", headers=api.h("sam")).status_code == 403
    r = c.get("/v1/audit/export", headers=api.h("aud"),
              params={"actor": "cus", "action": "discovery.people"})  # fmt: skip
    entries = r.json()
    assert entries and all(e["actor"] == "cus" for e in entries)
    assert {e["action"] for e in entries} == {"discovery.people"}
    everything = c.get("/v1/audit/export", headers=api.h("aud")).json()
    # The filtered export is itself an entry, with its filter and how many entries it gave.
    recorded = everything[-1]
    assert (recorded["actor"], recorded["action"]) == ("aud", "audit.export")
    assert recorded["details"] == {"since": None, "until": None, "actor": "cus",
                                   "action": "discovery.people", "entries": len(entries)}
    middle = everything[len(everything) // 2]["at"]
    later = c.get("/v1/audit/export", headers=api.h("aud"), params={"since": middle}).json()
    earlier = c.get("/v1/audit/export", headers=api.h("aud"), params={"until": middle}).json()
    assert later[0]["at"] >= middle and earlier[-1]["at"] <= middle
    assert len(earlier) + len(later) >= len(everything)
    assert head["id"] in {e["id"] for e in everything}


def test_admin_endpoints(api, tmp_path):
    c = api.client
    r = c.post("/v1/users", headers=api.h("owner"), json={"name": "eve", "role": "auditor"})
    assert r.status_code == 200 and r.json()["role"] == "auditor"
    assert c.post("/v1/users", headers=api.h("owner"),
                  json={"name": "eve", "role": "auditor"}).status_code == 409  # fmt: skip
    assert c.post("/v1/users", headers=api.h("owner"),
                  json={"name": "x", "role": "king"}).status_code == 422  # fmt: skip
    key = c.post("/v1/users/eve/key", headers=api.h("owner")).json()["api_key"]
    listed = c.get("/v1/users", headers={"x-api-key": key})
    assert listed.status_code == 200 and "eve" in [u["name"] for u in listed.json()]
    assert c.get("/v1/users", headers=api.h("sam")).status_code == 403
    sites = b"domain,publisher,publisher_region,terms_url\nexample.org,Ex,US-CA,https://example.org/t\n"
    r = c.post("/v1/sites/import", headers=api.h("owner"),
               files={"file": ("sites.csv", sites, "text/csv")})  # fmt: skip
    assert r.status_code == 200 and r.json() == {"added": 0, "updated": 1}, r.text
    site = next(s for s in c.get("/v1/sites", headers=api.h("sam")).json()
                if s["domain"] == "example.org")  # fmt: skip
    assert site["publisher_region"] == "US-CA"
    shown = c.get("/v1/policy", headers=api.h("aud")).json()
    assert shown["blocking"][0]["region"] == "US-IL" and shown["in_force"]["version_id"] == 1
    r = c.post("/v1/policy/apply", headers=api.h("owner"))
    assert r.status_code == 200 and r.json()["policy_version"] == 1
    assert c.post("/v1/policy/apply", headers=api.h("aud")).status_code == 403
    (run,) = c.get("/v1/ingest/runs", headers=api.h("owner")).json()
    assert run["counters"]["photos_new"] == 3 and run["counters"]["errors"] == 1
    problems = c.get(f"/v1/ingest/runs/{run['id']}/errors", headers=api.h("owner"),
                     params={"level": "error"}).json()  # fmt: skip
    assert [p["item"].rsplit(":", 1)[-1] for p in problems] == ["broken.png"]
    assert c.get("/v1/ingest/runs", headers=api.h("aud")).status_code == 403
    assert c.get("/v1/optouts", headers=api.h("aud")).json() == []


def test_legacy_routes_keep_their_shape_under_response_models(api):
    c = api.client
    stats = c.get("/stats", headers=api.h("sam")).json()
    assert "blocked_faces" not in stats and stats["searchable_faces"] == 2
    files = [("images", ("img2.jpg", (api.data / "img2.jpg").read_bytes(), "image/jpeg"))]
    found = c.post("/search", headers=api.h("sam"), files=files).json()
    match = found[0]["faces"][0]["matches"][0]
    assert "locator" not in match["provenance"][0]  # searchers see no server paths
    assert match["distance"] < 0.6 and "error" not in found[0]
