"""matters, protective_orders, productions' register columns, websites.sensitivity

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "matters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False, unique=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "protective_orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("matter_id", sa.Integer(), sa.ForeignKey("matters.id"), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("file_name", sa.Text()),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
    )
    op.create_index("ix_protective_orders_matter_id", "protective_orders", ["matter_id"])
    with op.batch_alter_table("productions") as batch:
        batch.add_column(sa.Column("volume", sa.String(length=64)))
        batch.add_column(sa.Column("profile", sa.String(length=32)))
        batch.add_column(sa.Column("documents", sa.Integer()))
        batch.add_column(sa.Column("audit_head_id", sa.Integer()))
        batch.add_column(sa.Column("audit_head_hash", sa.String(length=64)))
        batch.add_column(sa.Column("redactions", sa.Integer()))
    with op.batch_alter_table("websites") as batch:
        batch.add_column(sa.Column("sensitivity", sa.String(length=32)))
    # Matters already produced for become rows of the register.
    op.execute(
        "INSERT INTO matters (name, created_by, created_at) "
        "SELECT matter, MIN(produced_by), MIN(produced_at) FROM productions GROUP BY matter"
    )
    op.execute(
        "UPDATE productions SET documents = "
        "(SELECT COUNT(*) FROM production_items i WHERE i.production_id = productions.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("websites") as batch:
        batch.drop_column("sensitivity")
    with op.batch_alter_table("productions") as batch:
        for name in ("redactions", "audit_head_hash", "audit_head_id", "documents", "profile",
                     "volume"):  # fmt: skip
            batch.drop_column(name)
    op.drop_table("protective_orders")
    op.drop_table("matters")
