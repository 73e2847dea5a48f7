"""photos.gps_note (why GPS tags gave no position) and ingest_errors.level (error | warning)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        batch.add_column(sa.Column("gps_note", sa.Text()))
    with op.batch_alter_table("ingest_errors") as batch:
        batch.add_column(
            sa.Column("level", sa.String(length=8), nullable=False, server_default="error")
        )


def downgrade() -> None:
    with op.batch_alter_table("ingest_errors") as batch:
        batch.drop_column("level")
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("gps_note")
