"""Invariant 7 and the index change log: concurrent work never puts a removed face back.

Each scenario runs one operation that moves faces (erase, opt-out, policy apply that blocks and
unblocks, retention, a hold release) while another process ingests other photos and a web
service answers searches in a loop. Afterwards every index, in a long-lived process and in a
fresh one, answers exactly as an index rebuilt from the catalog; no answer given after the
operation names a removed face; and an erased vector's bytes are in no file of the library.
Each scenario runs on SQLite and on PostgreSQL with FAISS, and on SQLite with Milvus (a
milvus-lite server process, which every process of the scenario reaches by URI).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from conftest import make_settings, shared_path
from governance_support import all_bytes
from sqlalchemy import func, select, text, update

from faceledger.app.governance import destruction, holds, retention, users
from faceledger.app.ingest import ingest
from faceledger.app.library import Library
from faceledger.app.optout import submit_optout
from faceledger.app.placement import Place
from faceledger.catalog import SEARCHABLE
from faceledger.catalog import placement as catalog_placement
from faceledger.catalog import schema as t
from faceledger.index import FaissIndex

DEEPFACE = ("faces", "deepface", "tests", "unit", "dataset")
#: The seed collection: (file, uploader region, subject ref). person01 is img1/4/5 (uploaded
#: from Texas), person04 img3/12, person03 img8/9 (collected under subject S-3), person05 img13.
SEED = [
    ("img1.jpg", "US-TX", ""), ("img4.jpg", "US-TX", ""), ("img5.jpg", "US-TX", ""),
    ("img3.jpg", "", ""), ("img12.jpg", "", ""),
    ("img8.jpg", "", "S-3"), ("img9.jpg", "", "S-3"), ("img13.jpg", "", ""),
]  # fmt: skip
#: Probes the web service is asked about in a loop: other photos of person01, 04 and 03.
PROBES = ("img2.jpg", "img12.jpg", "img9.jpg")
TEXAS_RULE = "  - region: US-TX\n    signals: [uploader]\n"


def _exe(name: str = "faceledger") -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


@dataclass
class World:
    """A seeded library, the photos to ingest meanwhile, and the ids of the seed faces."""

    root: Path
    env: dict[str, str]
    lib: Library
    faces: dict[str, list[int]]
    more_photos: list[Path]
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    index: dict[str, str] = field(default_factory=dict)

    @property
    def milvus(self) -> bool:
        return self.index.get("index") == "milvus"

    def settings(self):
        return make_settings(
            self.root, database_url=self.env.get("FACELEDGER_DATABASE_URL", ""), **self.index
        )


#: Why the checks that index files hold no erased vector are skipped for Milvus.
NO_COMPACTION = ("milvus-lite cannot compact on request: an erased vector stays in its segment "
                 "files until its own compaction (README, Milvus limitations)")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def milvus_server(tmp_path):
    """A milvus-lite server process on a fresh data directory; yields its URI."""
    pytest.importorskip("milvus_lite", reason="pip install 'faceledger[milvus]'")
    port = _free_port()
    proc = subprocess.Popen(
        [_exe("milvus-lite"), "server", "--data-dir", str(tmp_path / "milvus.db"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
            assert time.monotonic() < deadline, "milvus-lite server did not start"
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.fixture(params=["sqlite", "postgres", "milvus"])
def world(request, tmp_path, monkeypatch) -> World:
    url = request.getfixturevalue("pg_database") if request.param == "postgres" else ""
    index: dict[str, str] = {}
    if request.param == "milvus" and request.node.get_closest_marker("index_files"):
        pytest.skip("Milvus keeps no index files in the library")
    if request.param == "milvus":
        index = {"index": "milvus", "milvus_uri": request.getfixturevalue("milvus_server")}
    data = shared_path(*DEEPFACE)
    src = tmp_path / "seed"
    src.mkdir()
    lines = ["path,source_url,uploader_region,subject_ref"]
    for name, region, subject in SEED:
        shutil.copy(data / name, src / name)
        lines.append(f"{name},https://example.org/{name},{region},{subject}")
    (src / "manifest.csv").write_text("\n".join(lines) + "\n")
    root = tmp_path / "library"
    env = {**os.environ, "FACELEDGER_WORKERS": "1", "FACELEDGER_DATABASE_URL": url}
    env.pop("FACELEDGER_LIBRARY", None)
    monkeypatch.setenv("FACELEDGER_DATABASE_URL", url)
    for name in ("index", "milvus_uri"):
        env.pop(f"FACELEDGER_{name.upper()}", None)
        monkeypatch.delenv(f"FACELEDGER_{name.upper()}", raising=False)
    for name, value in index.items():
        env[f"FACELEDGER_{name.upper()}"] = value
        monkeypatch.setenv(f"FACELEDGER_{name.upper()}", value)
    lib = Library.create(make_settings(root, database_url=url, **index))
    summary = ingest(lib, lib.actor(None), manifests=[src / "manifest.csv"])
    assert not summary.errors and summary.faces == len(SEED)
    with lib.catalog.engine.connect() as conn:
        ps = t.photo_sources
        joined = ps.join(t.faces, t.faces.c.photo_id == ps.c.photo_id)
        rows = conn.execute(select(ps.c.locator, t.faces.c.id).select_from(joined)).all()
    faces: dict[str, list[int]] = {}
    for locator, face_id in rows:
        faces.setdefault(Path(locator.rsplit(":", 1)[-1]).name, []).append(face_id)
    others = shared_path("faces", "face_recognition")
    more = sorted(p for p in others.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    more += sorted(shared_path("faces", "openface").rglob("*.jpg"))
    # Camera photos last, as ballast: with the BLAS-built model the faces alone can be ingested
    # before an operation has finished, and every scenario needs the two to overlap.
    more += sorted(shared_path("exif").rglob("*.jpg"))[:24]
    ids, vectors = lib.catalog.vectors(t.faces.c.status == "active")
    w = World(root, env, lib, faces, more, dict(zip(ids.tolist(), vectors, strict=True)), index)
    users.add_user(lib, lib.actor(None), "sam", "searcher")
    users.add_user(lib, lib.actor(None), "cus", "custodian")
    w.env["SAM_KEY"] = users.new_api_key(lib, lib.actor(None), "sam")["api_key"]
    w.env["CUS_KEY"] = users.new_api_key(lib, lib.actor(None), "cus")["api_key"]
    yield w
    lib.close()


# -- the other processes ------------------------------------------------------------------------
class Ingest:
    """`faceledger ingest` of the other photos, in a process of its own."""

    def __init__(self, world: World, tmp: Path):
        folder = tmp / "more"
        folder.mkdir()
        for n, path in enumerate(world.more_photos):
            shutil.copy(path, folder / f"{n:03d}{path.suffix}")
        self.proc = subprocess.Popen(
            [_exe(), "--library", str(world.root), "ingest", str(folder)],
            env=world.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip

    def wait(self) -> None:
        _, stderr = self.proc.communicate(timeout=600)
        assert self.proc.returncode == 0, stderr.decode(errors="replace")[-2000:]


class Service:
    """`faceledger serve`, asked about :data:`PROBES` in a loop by a thread."""

    def __init__(self, world: World):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [_exe(), "--library", str(world.root), "serve", "--port", str(self.port)],
            env=world.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        data = shared_path(*DEEPFACE)
        self.files = [("images", (n, (data / n).read_bytes(), "image/jpeg")) for n in PROBES]
        self.headers = {"Authorization": f"Bearer {world.env['SAM_KEY']}"}
        self.answers: list[tuple[float, set[int]]] = []  # (time asked, face ids answered)
        self._stop = threading.Event()
        self._wait_ready()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("the web service did not start")

    def ask(self) -> set[int]:
        """The face ids one search answers with."""
        response = httpx.post(
            f"http://127.0.0.1:{self.port}/search", files=self.files, headers=self.headers,
            data={"top_k": "50"}, timeout=60,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        return {m["face_id"] for entry in response.json() for f in entry["faces"]
                for m in f["matches"]}  # fmt: skip

    def _loop(self) -> None:
        while not self._stop.is_set():
            asked = time.monotonic()
            self.answers.append((asked, self.ask()))

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=120)
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


# -- the checks ----------------------------------------------------------------------------------
def _photos(lib: Library) -> int:
    with lib.catalog.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(t.photos))


def _wait_for_photos(lib: Library, at_least: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while _photos(lib) < at_least:
        assert proc.poll() is None, "the ingest ended before the operation could overlap it"
        assert time.monotonic() < deadline, "the ingest stored no photo in time"
        time.sleep(0.05)


def _searchable(lib: Library) -> set[int]:
    return set(lib.catalog.face_ids(SEARCHABLE).tolist())


def _assert_answers_as_rebuilt(lib: Library, probes: np.ndarray) -> None:
    """The store's ids and answers equal those of an index rebuilt from the catalog."""
    ids, vectors = lib.catalog.vectors(SEARCHABLE)
    rebuilt = FaissIndex.build(ids, vectors)
    store = lib.index(Place.SEARCHABLE)
    assert sorted(store.ids().tolist()) == sorted(ids.tolist())
    k = len(ids)
    got_d, got_i = store.search(probes, k)
    want_d, want_i = rebuilt.search(probes, k)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_d, want_d, atol=1e-5)
    vault_ids, _ = lib.catalog.vectors(t.faces.c.status == "active")
    expected_vault = sorted(set(vault_ids.tolist()) - set(ids.tolist()))
    assert sorted(lib.index(Place.VAULT).ids().tolist()) == expected_vault


def run_scenario(world: World, tmp_path: Path, operation) -> dict:
    """Run ``operation`` during an ingest and a search loop; check everything afterwards."""
    lib = world.lib
    lib.load_indexes()  # a long-lived process: its indexes were loaded before anything moved
    lib.face_engine()  # loaded before the clock starts: the operation itself is what overlaps
    service = Service(world)
    before = _photos(lib)
    searchable_before = _searchable(lib)
    job = Ingest(world, tmp_path)
    try:
        _wait_for_photos(lib, before + 2, job.proc)
        outcome = operation(world) or {}
        done_at = time.monotonic()
        photos_after_op = _photos(lib)
        removed = searchable_before - _searchable(lib)
        assert job.proc.poll() is None, "the ingest finished before the operation ended"
        job.wait()
        # The two overlapped: the ingest committed photos after the operation had finished.
        assert _photos(lib) > photos_after_op
        time.sleep(0.5)
    finally:
        if job.proc.poll() is None:
            os.killpg(job.proc.pid, signal.SIGKILL)
        service.stop()
    late = [ids for asked, ids in service.answers if asked > done_at]
    assert late, "the service answered no search after the operation"
    for ids in late:
        assert not (ids & removed), f"a removed face was answered: {sorted(ids & removed)}"
    probes = np.stack(list(world.vectors.values()))
    _assert_answers_as_rebuilt(lib, probes)  # the long-lived process
    fresh = Library.open(world.settings())
    try:
        _assert_answers_as_rebuilt(fresh, probes)  # a new process, from the files and the log
    finally:
        fresh.close()
    return {"removed": removed, **outcome}


def _log_moves(lib: Library, face_ids) -> list[tuple[int, str, str]]:
    with lib.catalog.engine.connect() as conn:
        rows = catalog_placement.log_entries(conn, face_ids)
    return [(r["face_id"], r["from_place"], r["to_place"]) for r in rows]


def _assert_no_vector_bytes(world: World, face_ids) -> None:
    if world.milvus:
        return  # NO_COMPACTION: the collections were checked to hold none of these faces
    blob = all_bytes(world.root)
    for fid in face_ids:
        vector = world.vectors[fid].astype("<f4").tobytes()
        assert vector not in blob and vector[:256] not in blob


# -- the scenarios -----------------------------------------------------------------------------
@pytest.mark.slow
def test_erase_during_an_ingest(world, tmp_path):
    target = world.faces["img3.jpg"][0]

    def erase(w):
        destruction.erase(w.lib, w.lib.actor("cus"), face=target)

    result = run_scenario(world, tmp_path, erase)
    assert result["removed"] == {target}
    assert _log_moves(world.lib, [target]) == [
        (target, "new", "searchable"), (target, "searchable", "destroyed")]  # fmt: skip
    _assert_no_vector_bytes(world, [target])


@pytest.mark.slow
def test_optout_during_an_ingest(world, tmp_path):
    selfie = shared_path(*DEEPFACE) / "img2.jpg"  # person01, not in the library
    person01 = {f for n in ("img1.jpg", "img4.jpg", "img5.jpg") for f in world.faces[n]}

    def opt_out(w):
        out = submit_optout(w.lib, w.lib.actor(None), selfie, "US-IL", "P. One")
        return {"matched": set(out["matched_faces"])}

    result = run_scenario(world, tmp_path, opt_out)
    assert result["removed"] and result["removed"] <= person01
    assert result["removed"] <= result["matched"]
    for face in result["removed"]:
        assert _log_moves(world.lib, [face])[-1] == (face, "searchable", "vault")


@pytest.mark.slow
def test_policy_apply_blocks_and_unblocks_during_an_ingest(world, tmp_path):
    from faceledger.app.policy import apply_policy

    person01 = {f for n in ("img1.jpg", "img4.jpg", "img5.jpg") for f in world.faces[n]}
    policy = world.root / "policy.yaml"
    default = policy.read_text()

    def block_then_unblock(w):
        policy.write_text(default.replace("blocking:\n", "blocking:\n" + TEXAS_RULE, 1))
        blocked = apply_policy(w.lib, w.lib.actor(None))
        assert blocked["blocked"] == len(person01)
        assert not (_searchable(w.lib) & person01)
        policy.write_text(default)
        unblocked = apply_policy(w.lib, w.lib.actor(None))
        assert unblocked["unblocked"] == len(person01)

    result = run_scenario(world, tmp_path, block_then_unblock)
    assert result["removed"] == set()  # back in search, and the index holds them again
    for face in person01:
        assert _log_moves(world.lib, [face])[-2:] == [
            (face, "searchable", "vault"), (face, "vault", "searchable")]  # fmt: skip


@pytest.mark.slow
def test_retention_run_during_an_ingest(world, tmp_path):
    person03 = {f for n in ("img8.jpg", "img9.jpg") for f in world.faces[n]}
    admin = world.lib.actor(None)
    retention.mark_purpose_satisfied(world.lib, admin, "account closed", subject="S-3")

    def run(w):
        return {"destroyed": set(retention.run_retention(w.lib, admin)["destroyed_faces"])}

    result = run_scenario(world, tmp_path, run)
    assert result["removed"] == person03 == result["destroyed"]
    _assert_no_vector_bytes(world, person03)


@pytest.mark.slow
def test_hold_release_during_an_ingest(world, tmp_path):
    custodian = world.lib.actor("cus")
    target = world.faces["img1.jpg"][0]
    hold = holds.create_hold(world.lib, custodian, "Doe v. Acme", "jurisdiction=US-TX")
    deferred = destruction.erase(world.lib, custodian, face=target)
    assert deferred["destroyed_faces"] == [] and deferred["deferred"]
    assert target in _searchable(world.lib)

    def release(w):
        return holds.release_hold(w.lib, custodian, hold["hold"])

    result = run_scenario(world, tmp_path, release)
    assert result["removed"] == {target}
    assert result["deferred"]["destroyed_faces"] == [target]
    _assert_no_vector_bytes(world, [target])


# -- crash points --------------------------------------------------------------------------------
@pytest.mark.parametrize("point", ["after-commit", "during-save"])
def test_a_crash_between_commit_and_index_save_is_healed(world, point):
    if world.milvus and point == "during-save":
        pytest.skip("Milvus has no index file to save: a commit's changes reach it by catch-up")
    target = world.faces["img3.jpg"][0]
    # Acting as the custodian takes their key, as a user would pass it.
    env = {**world.env, "FACELEDGER_CRASH_AT": point, "FACELEDGER_API_KEY": world.env["CUS_KEY"]}
    proc = subprocess.run(
        [_exe(), "--library", str(world.root), "--as", "cus", "erase", "--face", str(target)],
        env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode(errors="replace")
    assert target not in _searchable(world.lib)  # the catalog committed the erase
    probes = np.stack(list(world.vectors.values()))
    fresh = Library.open(world.settings())
    try:
        _assert_answers_as_rebuilt(fresh, probes)
        # The next writer persists the removal: the erased vector leaves the index files.
        fresh.sync_indexes()
    finally:
        fresh.close()
    if world.milvus:
        return  # NO_COMPACTION
    vector = world.vectors[target].astype("<f4").tobytes()
    assert vector not in all_bytes(world.root / "index")


# -- only the placement path moves faces ---------------------------------------------------------
def test_a_move_by_raw_sql_is_logged_by_the_database(world):
    face = world.faces["img13.jpg"][0]
    with world.lib.catalog.begin() as conn:
        conn.execute(update(t.faces).where(t.faces.c.id == face).values(blocked=True))
    assert _log_moves(world.lib, [face])[-1] == (face, "searchable", "vault")
    # And the index follows the log, even though no faceledger code made the move.
    assert face not in world.lib.index(Place.SEARCHABLE).ids()
    assert face in world.lib.index(Place.VAULT).ids()


def test_the_change_log_is_append_only(world):
    for statement in ("DELETE FROM placement_log", "UPDATE placement_log SET to_place = 'x'"):
        # The driver's error class differs between SQLite and PostgreSQL.
        with pytest.raises(Exception, match="append-only"), world.lib.catalog.begin() as conn:  # noqa: B017
            conn.execute(text(statement))


@pytest.mark.index_files
def test_searches_never_write_index_files(world):
    files = {p: p.stat().st_mtime_ns for p in (world.root / "index").glob("*.faiss")}
    face = world.faces["img13.jpg"][0]
    with world.lib.catalog.begin() as conn:  # a move by another process, not yet applied here
        catalog_placement.set_blocked(conn, [face], True)
    reader = Library.open(world.settings())
    try:
        reader.index(Place.SEARCHABLE).search(world.vectors[face][None, :], 5)
        assert face not in reader.index(Place.SEARCHABLE).ids()
    finally:
        reader.close()
    assert {p: p.stat().st_mtime_ns for p in files} == files


@pytest.mark.index_files
def test_a_damaged_index_file_is_rebuilt_never_searched(world):
    path = world.root / "index" / "searchable.faiss"
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF  # a flipped byte in the body, past the header
    path.write_bytes(bytes(data))
    fresh = Library.open(world.settings())
    try:
        _assert_answers_as_rebuilt(fresh, np.stack(list(world.vectors.values())))
    finally:
        fresh.close()
