"""The vault's counts by region and signal, kept current for ``discovery count --blocked``

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

``discovery count --blocked -j US-IL`` counts distinct photos, faces and source URLs of the
vault tied to a region. Computed from the ties it read ~1.4·10^6 index entries at 10^7 faces
(2.6–3.3 s on PostgreSQL); these tables keep the answer, so it is one row read
(``catalog.vault_counts`` folds changes in and explains the design):

- ``vault_count_pending``: a photo whose vault faces, ties or source URLs changed. Written by
  triggers on ``faces`` (a face entering or leaving the vault), ``jurisdictions`` and
  ``photo_sources`` (any change), in the writer's transaction, so no code path can change what
  the counts rest on without a row here.
- ``vault_count_photos``: what each vault photo contributes now (its faces per region prefix
  and signal, and its URL digests), so a photo's old contribution is subtracted exactly when
  it is folded again.
- ``vault_count_urls``: per URL digest, how many vault photos of each region prefix and
  signal have that URL (a reference count: a URL leaves a count when its last photo does).
- ``vault_count_totals``: per region prefix and signal (``*``: any), the photos, faces and
  distinct URLs.

Every photo with a vault face is marked pending here, so the first count after this revision
folds the whole vault in (at 10^7 faces: see BENCHMARKS.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_PENDING = "INSERT INTO vault_count_pending (photo_id) VALUES ({row}.photo_id)"
# An update marks the old photo too only when the row changed photo (one mark, not two, for a
# face moved into or out of the vault).
_PENDING_OLD_IF_MOVED = (
    "INSERT INTO vault_count_pending (photo_id) SELECT OLD.photo_id "
    "WHERE OLD.photo_id <> NEW.photo_id"
)
_IN_VAULT = "({row}.status = 'active' AND {row}.blocked)"
# A face's move into or out of the vault, or a vault face given another photo.
_MOVED = (
    f"({_IN_VAULT.format(row='OLD')} OR {_IN_VAULT.format(row='NEW')}) AND "
    f"({_IN_VAULT.format(row='OLD')} IS NOT {_IN_VAULT.format(row='NEW')} "
    "OR OLD.photo_id <> NEW.photo_id)"
)


def _sqlite_triggers() -> list[str]:
    def trigger(name: str, event: str, table: str, rows: tuple[str, ...], when: str = "") -> str:
        body = "; ".join(_PENDING_OLD_IF_MOVED if (row, rows) == ("OLD", ("OLD", "NEW"))
                         else _PENDING.format(row=row) for row in rows)  # fmt: skip
        return (f"CREATE TRIGGER {name} AFTER {event} ON {table} "
                f"{'WHEN ' + when + ' ' if when else ''}BEGIN {body}; END")  # fmt: skip

    return [
        trigger("vault_counts_faces_insert", "INSERT", "faces", ("NEW",),
                _IN_VAULT.format(row="NEW")),
        trigger("vault_counts_faces_update", "UPDATE OF status, blocked, photo_id", "faces",
                ("OLD", "NEW"), _MOVED),
        trigger("vault_counts_faces_delete", "DELETE", "faces", ("OLD",),
                _IN_VAULT.format(row="OLD")),
        trigger("vault_counts_ties_insert", "INSERT", "jurisdictions", ("NEW",)),
        trigger("vault_counts_ties_update", "UPDATE", "jurisdictions", ("OLD", "NEW")),
        trigger("vault_counts_ties_delete", "DELETE", "jurisdictions", ("OLD",)),
        trigger("vault_counts_sources_insert", "INSERT", "photo_sources", ("NEW",),
                "NEW.source_url_digest IS NOT NULL"),
        trigger("vault_counts_sources_update", "UPDATE OF photo_id, source_url_digest",
                "photo_sources", ("OLD", "NEW")),
        trigger("vault_counts_sources_delete", "DELETE", "photo_sources", ("OLD",),
                "OLD.source_url_digest IS NOT NULL"),
    ]  # fmt: skip


_SQLITE_NAMES = [
    f"vault_counts_{table}_{event}"
    for table in ("faces", "ties", "sources") for event in ("insert", "update", "delete")
]


def _postgres_triggers() -> list[str]:
    def trigger(name: str, event: str, table: str, when: str = "") -> str:
        return (f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW "
                f"{'WHEN (' + when + ') ' if when else ''}EXECUTE FUNCTION vault_counts_mark()")

    moved = _MOVED.replace(" IS NOT ", " IS DISTINCT FROM ")
    return [
        "CREATE FUNCTION vault_counts_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.photo_id <> NEW.photo_id) THEN "
        f"{_PENDING.format(row='OLD')}; END IF; "
        f"IF TG_OP <> 'DELETE' THEN {_PENDING.format(row='NEW')}; END IF; "
        "RETURN NULL; END $$",
        trigger("vault_counts_faces_insert", "INSERT", "faces", _IN_VAULT.format(row="NEW")),
        trigger("vault_counts_faces_update", "UPDATE OF status, blocked, photo_id", "faces",
                moved),
        trigger("vault_counts_faces_delete", "DELETE", "faces", _IN_VAULT.format(row="OLD")),
        trigger("vault_counts_ties", "INSERT OR UPDATE OR DELETE", "jurisdictions"),
        trigger("vault_counts_sources_insert", "INSERT", "photo_sources",
                "NEW.source_url_digest IS NOT NULL"),
        trigger("vault_counts_sources_update", "UPDATE OF photo_id, source_url_digest",
                "photo_sources"),
        trigger("vault_counts_sources_delete", "DELETE", "photo_sources",
                "OLD.source_url_digest IS NOT NULL"),
    ]  # fmt: skip


_POSTGRES_NAMES = [
    ("vault_counts_faces_insert", "faces"), ("vault_counts_faces_update", "faces"),
    ("vault_counts_faces_delete", "faces"), ("vault_counts_ties", "jurisdictions"),
    ("vault_counts_sources_insert", "photo_sources"),
    ("vault_counts_sources_update", "photo_sources"),
    ("vault_counts_sources_delete", "photo_sources"),
]  # fmt: skip


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "vault_count_pending",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_count_pending")),
        sqlite_autoincrement=True,
    )  # fmt: skip
    op.create_table(
        "vault_count_photos",
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("digests", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("photo_id", name=op.f("pk_vault_count_photos")),
    )
    op.create_table(
        "vault_count_urls",
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_vault_count_urls")),
    )
    op.create_table(
        "vault_count_totals",
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("signal", sa.String(length=16), nullable=False),
        sa.Column("photos", sa.BigInteger(), nullable=False),
        sa.Column("faces", sa.BigInteger(), nullable=False),
        sa.Column("urls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("region", "signal", name=op.f("pk_vault_count_totals")),
    )
    for statement in {"sqlite": _sqlite_triggers, "postgresql": _postgres_triggers}[dialect]():
        op.execute(statement)
    # Every vault photo is folded in by the first count (catalog.vault_counts).
    op.execute(
        "INSERT INTO vault_count_pending (photo_id) SELECT DISTINCT photo_id FROM faces "
        "WHERE status = 'active' AND blocked ORDER BY photo_id"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in _SQLITE_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for name, table in _POSTGRES_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS vault_counts_mark()")
    for table in ("vault_count_totals", "vault_count_urls", "vault_count_photos",
                  "vault_count_pending"):  # fmt: skip
        op.drop_table(table)
