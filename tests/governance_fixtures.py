"""Fixtures of the governance tests (loaded with ``pytest_plugins``, never imported)."""

from __future__ import annotations

from pathlib import Path

import pytest
from governance_support import _build, open_copy


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory) -> Path:
    """The seeded library, built once a session; tests copy it (see :func:`open_copy`)."""
    root = tmp_path_factory.mktemp("seeded") / "library"
    _build(root)
    return root


@pytest.fixture
def seeded(seeded_template, tmp_path):
    s = open_copy(seeded_template, tmp_path / "library")
    yield s
    s.lib.close()
