"""Catalog queries at 10^7 faces: covering indexes for the vault and jurisdiction ties, and the
publisher region each website had when policy was last applied

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

- ``ix_faces_vault``: a partial index on ``faces (photo_id, id)`` of the active blocked faces
  (the vault, ~6% of faces), so ``discovery count --blocked`` joins its ties by an index-only
  scan instead of reading the whole faces table.
- ``ix_jurisdictions_ties`` replaces ``ix_jurisdictions_region``: ``(region, signal, photo_id,
  face_id)`` holds every column a tie to a region needs, so the region's rows are read from the
  index alone. On PostgreSQL ``region`` uses ``text_pattern_ops``, so that the prefix match for
  sub-regions (``region LIKE 'US-IL%'``) is an index range under any database collation.
- ``websites.applied_region``: the publisher region ``policy apply`` last decided with, so the
  next apply re-decides only the photos of websites whose region changed since (NULL for a site
  never applied; the first apply after this revision re-decides every photo, since what was
  applied before it is unknown).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_faces_vault", "faces", ["photo_id", "id"],
        postgresql_where=sa.text("status = 'active' AND blocked"),
        sqlite_where=sa.text("status = 'active' AND blocked"),
    )  # fmt: skip
    op.create_index(
        "ix_jurisdictions_ties", "jurisdictions", ["region", "signal", "photo_id", "face_id"],
        postgresql_ops={"region": "text_pattern_ops"},
    )  # fmt: skip
    op.drop_index("ix_jurisdictions_region", table_name="jurisdictions")
    with op.batch_alter_table("websites") as batch:
        batch.add_column(sa.Column("applied_region", sa.String(length=16)))


def downgrade() -> None:
    with op.batch_alter_table("websites") as batch:
        batch.drop_column("applied_region")
    op.create_index("ix_jurisdictions_region", "jurisdictions", ["region", "signal"])
    op.drop_index("ix_jurisdictions_ties", table_name="jurisdictions")
    op.drop_index("ix_faces_vault", table_name="faces")
