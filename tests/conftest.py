"""Shared fixtures: the shared real-photo data, fresh libraries, one face engine per session."""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# One OpenBLAS thread per test process (xdist runs two on two cores); read when dlib loads it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from faceledger.config import Settings
from faceledger.faces import FaceEngine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data; skip when absent, except under CI where absence fails."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"shared test data not found at {path}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (it must be present under CI)")
        pytest.skip(message)
    return path


def labelled(dataset: str) -> list[tuple[Path, str]]:
    """(image path, identity) for each labelled image of a shared face set."""
    root = shared_path("faces", dataset)
    with (root / "LABELS.csv").open() as handle:
        return [(root / r["file"], r["identity"]) for r in csv.DictReader(handle) if r["identity"]]


def make_settings(root: Path, **overrides) -> Settings:
    """Settings for a library under ``root``, ignoring the caller's environment."""
    return Settings.from_env(environ={}, library=root, workers=2, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "library")


@pytest.fixture
def library(settings: Settings):
    from faceledger.app.library import Library

    lib = Library.create(settings)
    yield lib
    lib.close()


@pytest.fixture(scope="session")
def engine() -> FaceEngine:
    return FaceEngine()


PG_URL = os.environ.get("FACELEDGER_TEST_PG_URL")


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """The URL of a new PostgreSQL database on FACELEDGER_TEST_PG_URL's server, dropped
    afterwards; a skip without that server, or a failure under CI (.ci/run starts one)."""
    if not PG_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("FACELEDGER_TEST_PG_URL must be set under CI (.ci/run starts PostgreSQL)")
        pytest.skip("set FACELEDGER_TEST_PG_URL to a PostgreSQL server to run this test")
    url = make_url(PG_URL).set(drivername="postgresql+psycopg")
    name = f"faceledger_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_database():
    """A fresh PostgreSQL database (dropped afterwards); a skip, or a failure under CI."""
    with fresh_pg_database() as url:
        yield url
