"""faces (status, blocked, photo_id): counts of blocked faces read the index alone

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_faces_placement", "faces", ["status", "blocked", "photo_id"])
    op.drop_index("ix_faces_searchable", table_name="faces")


def downgrade() -> None:
    op.create_index("ix_faces_searchable", "faces", ["status", "blocked"])
    op.drop_index("ix_faces_placement", table_name="faces")
