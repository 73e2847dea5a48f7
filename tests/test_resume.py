"""Invariant 5: ingest is idempotent and resumable, even after SIGKILL at an arbitrary point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import make_settings, shared_path
from helpers import canonical_catalog, cli
from sqlalchemy import func, select

from faceledger.app.library import Library
from faceledger.catalog import schema as t


def _faceledger(library, *args) -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "faceledger")
    return [exe, "--library", str(library), *args]


def test_sigkill_midway_then_rerun_gives_the_same_catalog(tmp_path):
    photos = shared_path("faces", "face_recognition")
    reference = make_settings(tmp_path / "reference")
    killed = make_settings(tmp_path / "killed")
    for s in (reference, killed):
        assert cli(s.library, "init").exit_code == 0

    env = {**os.environ, "FACELEDGER_WORKERS": "2"}
    proc = subprocess.Popen(
        _faceledger(killed.library, "ingest", str(photos)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    lib = Library.open(killed)
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        with lib.catalog.engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(t.photos))
        if stored >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the workers die with it
    proc.wait()
    assert stored >= 5

    rerun = subprocess.run(
        _faceledger(killed.library, "ingest", str(photos)), env=env, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert cli(reference.library, "ingest", str(photos)).exit_code == 0

    ref_lib = Library.open(reference)
    lib = Library.open(killed)
    assert canonical_catalog(lib) == canonical_catalog(ref_lib)
    # The index that search uses holds exactly the catalog's searchable faces.
    assert list(lib.index("searchable").ids()) == list(lib.catalog.face_ids())
    with lib.catalog.engine.connect() as conn:
        statuses = sorted(conn.scalars(select(t.ingest_runs.c.status)))
    assert statuses == ["finished", "interrupted"]


def test_rerun_is_idempotent(tmp_path, settings):
    photos = shared_path("faces", "openface")
    assert cli(settings.library, "init").exit_code == 0
    assert cli(settings.library, "ingest", str(photos)).exit_code == 0
    lib = Library.open(settings)
    first = canonical_catalog(lib)
    assert cli(settings.library, "ingest", str(photos)).exit_code == 0
    assert canonical_catalog(lib) == first
    assert len(first["photos"]) > 0
