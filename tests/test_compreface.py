"""The CompreFace-compatible API, driven by the real compreface-sdk against a live service.

The SDK needs urllib3<2, so it runs in .venv-compreface (tools/compreface_venv.sh, made by
`make test`) as a subprocess: tests/compreface/client.py makes the calls and prints every
answer; this module checks them, and the catalog, in faceledger's own venv.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from conftest import make_settings, shared_path
from helpers import cli

from faceledger import audit
from faceledger.app.library import Library
from faceledger.errors import PermissionDenied

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-compreface"
DATASET = ("faces", "deepface", "tests", "unit", "dataset")


def _sdk_python() -> Path:
    """The compreface venv's python, made now if missing; a skip (CI: a failure) if it can't be."""
    python = VENV / "bin" / "python"
    if not (VENV / ".installed").exists():
        made = subprocess.run(["bash", str(ROOT / "tools" / "compreface_venv.sh"), sys.executable],
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        if made.returncode != 0:
            reason = f"the compreface-sdk venv could not be made: {made.stderr.strip()[-400:]}"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
    return python


def _ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A library with an admin, an attested custodian and a searcher, served on 127.0.0.1."""
    python = _sdk_python()
    data = shared_path(*DATASET)
    no_face = shared_path("exif", "jpg", "Canon_40D.jpg")
    root = tmp_path_factory.mktemp("compreface")
    settings = make_settings(root / "library")
    lib_dir = settings.library
    _ok(cli(lib_dir, "init"))
    _ok(cli(lib_dir, "users", "add", "cus", "--role", "custodian"))
    _ok(cli(lib_dir, "users", "add", "sam", "--role", "searcher"))
    (root / "statement.txt").write_text("I will use the vault only for legal obligations.\n")
    _ok(cli(lib_dir, "attest", "cus", "--statement-file", str(root / "statement.txt"),
            user="cus"))  # signed in person, with the custodian's own key
    keys = {
        name: json.loads(_ok(cli(lib_dir, "users", "key", name, "--json")))["api_key"]
        for name in ("owner", "cus", "sam")
    }
    port = _free_port()
    tmp = root / "tmp"  # the server's own TMPDIR, to see what it leaves there
    tmp.mkdir()
    env = {**os.environ, "FACELEDGER_WORKERS": "1", "TMPDIR": str(tmp)}
    server = subprocess.Popen(
        [sys.executable, "-c", "from faceledger.cli import app; app()", "--library",
         str(lib_dir), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                pytest.fail(f"faceledger serve exited: {server.stderr.read()[-2000:]}")
            time.sleep(0.2)
        spec = {
            "admin_key": keys["owner"],
            "custodian_key": keys["cus"],
            # img1 and img4 show the person of the probe img2; img3 someone else.
            "images": {"alice": str(data / "img1.jpg"), "bob": str(data / "img3.jpg"),
                       "blocked": str(data / "img4.jpg"), "probe": str(data / "img2.jpg"),
                       "no_face": str(no_face), "group": str(data / "couple.jpg")},
        }  # fmt: skip
        (root / "spec.json").write_text(json.dumps(spec))
        run = subprocess.run(
            [str(python), str(ROOT / "tests" / "compreface" / "client.py"), "http://127.0.0.1",
             str(port), str(root / "spec.json")],
            capture_output=True, text=True, timeout=600, cwd="/",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        answers = json.loads(run.stdout)
        yield {"answers": answers, "base": base, "keys": keys, "settings": settings,
               "data": data, "tmp": tmp}  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)


def _subjects(found: dict) -> list[str]:
    return [s["subject"] for s in found["subjects"]]


def test_subjects_crud_with_the_sdk(live):
    a = live["answers"]
    assert a["subject_add"] == {"subject": "alice"}
    assert a["subject_add_again"]["code"] == 29 and "already exists" in a["subject_add_again"][
        "message"]  # fmt: skip
    assert a["subjects_bare"] == {"subjects": ["alice"]}
    assert a["rename"] == {"updated": True}
    assert a["subjects_renamed"] == {"subjects": ["alice", "illinois", "robert"]}  # + bare one
    assert a["delete_subject"] == {"subject": "illinois"}
    # Deleting examples keeps their subjects, as in CompreFace; deleting the subject does not.
    assert a["subjects_after"] == {"subjects": ["alice", "robert"]}


def test_face_collection_with_the_sdk(live):
    a = live["answers"]
    alice = a["add_alice"]
    assert alice["subject"] == "alice" and alice["image_id"].isdigit()
    assert a["add_bob"]["subject"] == "bob"
    assert a["add_no_face"] == {"message": "No face is found in the given image", "code": 28}
    assert a["add_group"]["code"] == 26 and "alone" in a["add_group"]["message"]
    listed = a["faces_list"]
    assert sorted(f["subject"] for f in listed["faces"]) == ["alice", "bob"]
    assert listed["total_elements"] == 2
    assert a["delete_example"] == {"image_id": alice["image_id"], "subject": "alice"}
    assert a["delete_subject_examples"] == {"deleted": 1}
    assert a["faces_after"]["faces"] == [] and a["faces_after"]["total_elements"] == 0


def test_recognize_with_the_sdk(live):
    a = live["answers"]
    (face,) = a["recognize"]["result"]
    assert set(face["box"]) == {"probability", "x_min", "y_min", "x_max", "y_max"}
    assert 0.5 < face["box"]["probability"] <= 1 and face["box"]["x_min"] < face["box"]["x_max"]
    names = _subjects(face)
    assert names[0] == "alice" and face["subjects"][0]["similarity"] > 0.5
    # bob is someone else: listed (prediction_count 5) but below the match line.
    assert dict((s["subject"], s["similarity"]) for s in face["subjects"])["bob"] < 0.5
    assert len(face["embedding"]) == 128 and len(face["landmarks"]) == 5
    assert a["verify_example"]["result"][0]["similarity"] > 0.5
    (detected,) = a["detect"]["result"]
    assert detected["box"] == face["box"] and len(detected["landmarks"]) == 5
    assert "embedding" not in detected
    match = a["verify"]["result"][0]["face_matches"][0]
    assert match["similarity"] > 0.5
    assert a["recognize_after"]["result"][0]["subjects"] == []


def test_a_blocked_example_is_never_in_answers_but_to_attested_custodians(live):
    a = live["answers"]
    assert a["add_blocked"]["subject"] == "illinois"  # uploaded from US-IL: blocked by policy
    assert "illinois" not in [f["subject"] for f in a["faces_list"]["faces"]]
    assert "illinois" not in a["subjects_list"]["subjects"]
    assert "illinois" not in _subjects(a["recognize"]["result"][0])
    assert "illinois" in [f["subject"] for f in a["faces_list_custodian"]["faces"]]
    assert "illinois" in a["subjects_custodian"]["subjects"]
    assert a["subject_add_hidden"] == {"subject": "illinois"}


def test_attribute_plugins_are_refused_with_the_products_line(live):
    a = live["answers"]
    assert a["recognize_age"]["code"] == 20
    assert "does not infer age, gender" in a["recognize_age"]["message"]
    r = httpx.post(f"{live['base']}/api/v1/detection/detect", params={"face_plugins": "emotion"},
                   headers={"x-api-key": live["keys"]["sam"]},
                   files={"file": ("p.jpg", (live["data"] / "img2.jpg").read_bytes())})  # fmt: skip
    assert r.status_code == 400 and r.json()["code"] == 20 and "race" in r.json()["message"]


def test_errors_take_compreface_shape_and_roles_hold(live):
    a = live["answers"]
    assert a["delete_as_admin"]["code"] == 3 and "erase" in a["delete_as_admin"]["message"]
    assert a["bad_key"]["code"] == 5
    base, keys = live["base"], live["keys"]
    r = httpx.delete(f"{base}/api/v1/recognition/faces/1", headers={"x-api-key": keys["owner"]})
    assert r.status_code == 403 and set(r.json()) == {"message", "code"}
    r = httpx.get(f"{base}/api/v1/recognition/subjects")
    assert r.status_code == 401 and set(r.json()) == {"message", "code"}
    r = httpx.post(f"{base}/api/v1/recognition/subjects", json={"subject": "x"},
                   headers={"x-api-key": keys["sam"]})  # fmt: skip
    assert r.status_code == 403 and r.json()["code"] == 3  # searchers add no subjects
    # The native API keeps its own shape.
    assert set(httpx.get(f"{base}/stats").json()) == {"error", "message"}


def test_probes_leave_no_trace_and_uploads_leave_no_temporary_file(live):
    probe = (live["data"] / "img2.jpg").read_bytes()  # recognized, detected, verified only
    # Only multiprocessing's own folder (the ingest pool's forkserver socket) stays there.
    assert [p.name for p in live["tmp"].iterdir() if not p.name.startswith("pymp-")] == []
    chunk = probe[len(probe) // 2 : len(probe) // 2 + 4096]
    for path in [*live["settings"].library.rglob("*"), *live["tmp"].rglob("*")]:
        if path.is_file():
            assert chunk not in path.read_bytes(), path


def test_uploads_are_photos_with_api_provenance_and_erasure_is_complete(live):
    lib = Library.open(live["settings"])
    try:
        blocked_id = int(live["answers"]["add_blocked"]["image_id"])
        alice_id = int(live["answers"]["add_alice"]["image_id"])
        photo = lib.catalog.photo(blocked_id)
        (source,) = photo["sources"]
        assert source["source_url"] == "api:owner" and source["uploader_region"] == "US-IL"
        assert source["retrieved_at"] is not None
        assert lib.catalog.photo(alice_id)["status"] == "destroyed"
        assert lib.catalog.photo(alice_id)["faces"] == []
        actions = [e["action"] for e in audit.export(lib.catalog.engine)]
        assert "erase" in actions and "search" in actions and "vault.read" in actions
    finally:
        lib.close()


@pytest.fixture(params=["sqlite", "postgres"])
def gallery(request, tmp_path, engine):
    """A library on either database: alice alone, a group photo, one blocked example."""
    url = request.getfixturevalue("pg_database") if request.param == "postgres" else ""
    data = shared_path(*DATASET)
    rows = [("img1.jpg", "alice", ""), ("couple.jpg", "group", ""), ("img4.jpg", "ill", "US-IL")]
    src = tmp_path / "src"
    src.mkdir()
    lines = ["path,subject_ref,uploader_region"]
    for name, subject, region in rows:
        (src / name).write_bytes((data / name).read_bytes())
        lines.append(f"{name},{subject},{region}")
    (src / "m.csv").write_text("\n".join(lines) + "\n")
    settings = make_settings(tmp_path / "library", database_url=url)
    lib = Library.create(settings)
    from faceledger.app.ingest import ingest

    owner = lib.actor(None)
    assert not ingest(lib, owner, manifests=[src / "m.csv"]).errors
    yield lib, data
    lib.close()


def test_subjects_on_both_databases(gallery, engine):
    from faceledger.app import compreface as cf
    from faceledger.app.probes import Probe

    lib, data = gallery
    owner = lib.actor(None)
    listed = cf.list_examples(lib, owner)
    assert sorted(f["subject"] for f in listed["faces"]) == ["alice", "group"]
    assert cf.list_subjects(lib, owner) == {"subjects": ["alice", "group"]}
    probe = Probe("img2.jpg", (data / "img2.jpg").read_bytes())
    found = cf.recognize(lib, owner, probe, cf.Options(prediction_count=5), engine=engine)
    # The group photo names no one face, and the blocked example is in no answer.
    assert [s["subject"] for s in found["result"][0]["subjects"]] == ["alice"]
    assert cf.rename_subject(lib, owner, "alice", "alicia") == {"updated": True}
    assert cf.list_subjects(lib, owner)["subjects"] == ["alicia", "group"]
    with pytest.raises(PermissionDenied):
        cf.delete_subjects(lib, owner, "alicia")
