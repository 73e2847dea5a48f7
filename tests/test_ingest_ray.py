"""``ingest --engine ray``: the same catalog as the local engine, bad input, kill and rerun.

One local Ray serves the whole module (started here, on 127.0.0.1, and stopped here: no other
Ray on the machine is touched). In-process ingests reuse it; a CLI subprocess joins it through
RAY_ADDRESS, as a run joins a cluster.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from conftest import make_settings, shared_path
from helpers import canonical_catalog, cli

# The scenarios of the local engine, collected here once more and run on Ray (the autouse
# fixture below makes Ray the engine of every ingest in this module).
from test_bad_input import test_bad_items_are_reported_and_the_run_goes_on  # noqa: F401
from test_resume import test_sigkill_midway_then_rerun_gives_the_same_catalog  # noqa: F401

from faceledger.app.library import Library

if os.environ.get("CI") != "true":  # under CI the ray extra is installed, and must be
    pytest.importorskip("ray", reason="the ray extra is not installed")


@pytest.fixture(scope="module")
def local_ray():
    """A Ray for this module only; its GCS address."""
    from faceledger.ingest.ray_engine import start_local_ray

    ray = start_local_ray(num_cpus=2)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(autouse=True)
def on_ray(local_ray, monkeypatch):
    monkeypatch.setenv("FACELEDGER_INGEST_ENGINE", "ray")
    monkeypatch.setenv("RAY_ADDRESS", local_ray)  # what a subprocess joins


def _without_vectors(catalog: dict) -> tuple[dict, list[np.ndarray]]:
    """The catalog with each face's vector taken out, and those vectors in the same order."""
    faces = [(*f[:7], *f[8:]) for f in catalog["faces"]]
    vectors = [np.frombuffer(f[7], dtype="<f4") for f in catalog["faces"]]
    return {**catalog, "faces": faces}, vectors


def test_ray_engine_gives_the_catalog_of_the_local_engine(tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(shared_path("faces", "openface"), photos / "openface")
    big = shared_path("faces", "deepface", "tests", "unit", "dataset")
    for name in ("img1.jpg", "img2.jpg", "img3.jpg", "couple.jpg"):  # large JPEGs: draft mode
        if (big / name).exists():
            shutil.copy(big / name, photos / name)
    shutil.copy(photos / "img1.jpg", photos / "again.jpg")  # one photo, two provenance rows
    # Decisions too: rows tying photos to Illinois put their faces in the vault.
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,source_url,uploader_region\n"
        f"{photos / 'img2.jpg'},https://a.example/2.jpg,US-IL\n"
        f"{photos / 'img3.jpg'},https://b.example/3.jpg,US-NY\n"
    )
    catalogs = {}
    for engine in ("local", "ray"):
        library = tmp_path / engine
        assert cli(library, "init").exit_code == 0
        result = cli(
            library, "ingest", str(photos), "--manifest", str(manifest), "--root", str(photos),
            "--engine", engine, "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        lib = Library.open(make_settings(library))
        catalogs[engine] = canonical_catalog(lib)
        assert '"engine": "' + engine + '"' in result.stdout
    local, local_vectors = _without_vectors(catalogs["local"])
    ray, ray_vectors = _without_vectors(catalogs["ray"])
    assert local == ray  # photos, provenance, boxes, models, decisions, jurisdictions
    assert len(local["photos"]) >= 15 and any(f[-2] for f in local["faces"])  # some blocked
    distances = [float(np.linalg.norm(a - b)) for a, b in zip(local_vectors, ray_vectors,
                                                                strict=True)]  # fmt: skip
    assert max(distances) < 1e-4
