"""The per-search log-head read: its own connection, yet every commit is seen at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import insert

from faceledger.catalog import Catalog
from faceledger.catalog import schema as t
from faceledger.catalog.placement import CatalogFeed
from faceledger.clock import utcnow


def _append_log_row(url: str, face_id: int) -> None:
    """A commit by another engine (as another process would make it)."""
    other = Catalog(url)
    with other.begin() as conn:
        conn.execute(insert(t.placement_log).values(
            face_id=face_id, from_place="new", to_place="searchable", at=utcnow()))  # fmt: skip
    other.close()


def _check_head_follows_commits(url: str) -> None:
    catalog = Catalog(url)
    catalog.create()
    feed = CatalogFeed(catalog)
    assert feed.head() == 0
    _append_log_row(url, 1)
    assert feed.head() == 1  # no snapshot held between reads
    seen = []
    reader = threading.Thread(target=lambda: seen.append(feed.head()))
    reader.start()
    reader.join()
    assert seen == [1] and len(feed._head_conns) == 2  # one connection per thread
    catalog.close()  # disposing the engine closes the head connections too
    assert feed._head_conns == []
    _append_log_row(url, 2)
    assert feed.head() == 2  # and a later read opens a fresh one
    catalog.close()


def test_head_sees_other_commits_on_sqlite(tmp_path):
    _check_head_follows_commits(f"sqlite:///{tmp_path}/catalog.sqlite")


@pytest.mark.postgres
def test_head_sees_other_commits_on_postgres(pg_database):
    _check_head_follows_commits(pg_database)
