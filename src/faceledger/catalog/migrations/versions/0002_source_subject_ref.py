"""photo_sources.subject_ref: the consent subject a manifest row names

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photo_sources") as batch:
        batch.add_column(sa.Column("subject_ref", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("photo_sources") as batch:
        batch.drop_column("subject_ref")
