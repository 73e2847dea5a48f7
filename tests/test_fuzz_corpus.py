"""Replay every input kept in tests/fuzz-corpus/ through the reader of its kind."""

from __future__ import annotations

import hashlib

import pytest
from test_fuzz import CORPUS, READERS, run_reader

CASES = sorted(p for p in CORPUS.glob("*/*") if p.is_file())


def test_every_kind_has_a_corpus_and_every_file_a_reader():
    kinds = {p.parent.name for p in CASES}
    assert kinds == set(READERS), f"corpus folders {sorted(kinds)} vs readers {sorted(READERS)}"


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.name[:12]}" for p in CASES])
def test_corpus_input_gives_only_input_errors(path):
    data = path.read_bytes()
    assert path.name == hashlib.sha256(data).hexdigest(), "corpus files are named by sha256"
    run_reader(path.parent.name, data)
