"""A fixed-size digest of each provenance row's source URL, and a covering index over it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

``photo_sources.source_url_digest`` is the SHA-256 of the UTF-8 source URL (32 bytes, NULL
where the URL is): ``discovery count`` counts distinct URLs by it, reading ``(photo_id,
source_url_digest)`` from ``ix_photo_sources_url_digest`` alone (an index-only scan) instead of
one heap page per provenance row. The URL itself cannot be the index key: a b-tree entry holds
at most 2,704 bytes on PostgreSQL and a URL has no such bound. The index leads with
``photo_id``, so it replaces ``ix_photo_sources_photo_id``, which is dropped.

A collision cannot change a count in practice: no two inputs with one SHA-256 are known, and
among 10^12 URLs the chance of any is about 10^-54. Every writer of ``photo_sources`` fills the
column (``catalog.photos.url_digest``); the rows already there are filled here, in batches of
ids (PostgreSQL: its built-in ``sha256(convert_to(source_url, 'UTF8'))``, the same value;
SQLite: Python's ``hashlib``).
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BATCH = 50_000


def upgrade() -> None:
    with op.batch_alter_table("photo_sources") as batch:
        batch.add_column(sa.Column("source_url_digest", sa.LargeBinary(length=32)))
    _backfill(op.get_bind())
    op.create_index(
        "ix_photo_sources_url_digest", "photo_sources", ["photo_id", "source_url_digest"]
    )
    # Its first column is the old index's whole key: one index less to write, and the planner
    # cannot prefer the narrower one and read the heap for the digest.
    op.drop_index("ix_photo_sources_photo_id", table_name="photo_sources")


def _backfill(conn) -> None:
    """Fill the digest of every row with a URL, one range of ``BATCH`` ids at a time (one
    statement per batch keeps each update's memory and, on PostgreSQL, its lock set small)."""
    low, high = conn.execute(sa.text("SELECT min(id), max(id) FROM photo_sources")).one()
    if low is None:
        return
    postgres = conn.dialect.name == "postgresql"
    for start in range(low, high + 1, BATCH):
        bounds = {"lo": start, "hi": start + BATCH - 1}
        if postgres:
            conn.execute(sa.text(
                "UPDATE photo_sources SET source_url_digest = "
                "sha256(convert_to(source_url, 'UTF8')) "
                "WHERE id BETWEEN :lo AND :hi AND source_url IS NOT NULL"
            ), bounds)  # fmt: skip
            continue
        rows = conn.execute(sa.text(
            "SELECT id, source_url FROM photo_sources "
            "WHERE id BETWEEN :lo AND :hi AND source_url IS NOT NULL"
        ), bounds).all()  # fmt: skip
        if rows:
            conn.execute(
                sa.text("UPDATE photo_sources SET source_url_digest = :d WHERE id = :i"),
                [{"d": hashlib.sha256(url.encode("utf-8")).digest(), "i": i} for i, url in rows],
            )


def downgrade() -> None:
    op.create_index("ix_photo_sources_photo_id", "photo_sources", ["photo_id"])
    op.drop_index("ix_photo_sources_url_digest", table_name="photo_sources")
    with op.batch_alter_table("photo_sources") as batch:
        batch.drop_column("source_url_digest")
