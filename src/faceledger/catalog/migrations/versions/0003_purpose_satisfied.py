"""faces.purpose_satisfied_at: when the purpose a vector was collected for ended

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("faces") as batch:
        batch.add_column(sa.Column("purpose_satisfied_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("faces") as batch:
        batch.drop_column("purpose_satisfied_at")
