"""placement_log (the index change log, written by triggers on faces) and index_marks

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The audit log's advisory lock key (catalog/audit.py). Moves take the same lock as audit appends:
# one lock order for every writer (no deadlock between them), and log rows get their seq in
# commit order, so a reader that sees seq N has seen every seq below it.
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"faceledger.audit_log").digest()[:8], "big", signed=True)

_SQLITE_PLACE = (
    "CASE WHEN {r}.status = 'destroyed' THEN 'destroyed' "
    "WHEN {r}.blocked THEN 'vault' ELSE 'searchable' END"
)
# SQLAlchemy reads SQLite datetimes as text with six fractional digits.
_SQLITE_NOW = (
    "strftime('%Y-%m-%d %H:%M:%S', 'now') || '.' || substr(strftime('%f', 'now'), 4) || '000'"
)
_SQLITE = [
    "CREATE TRIGGER faces_placement_insert AFTER INSERT ON faces BEGIN "
    "INSERT INTO placement_log (face_id, from_place, to_place, at) "
    f"VALUES (NEW.id, 'new', {_SQLITE_PLACE.format(r='NEW')}, {_SQLITE_NOW}); END",
    "CREATE TRIGGER faces_placement_update AFTER UPDATE OF blocked, status ON faces "
    f"WHEN ({_SQLITE_PLACE.format(r='OLD')}) IS NOT ({_SQLITE_PLACE.format(r='NEW')}) BEGIN "
    "INSERT INTO placement_log (face_id, from_place, to_place, at) "
    f"VALUES (NEW.id, {_SQLITE_PLACE.format(r='OLD')}, {_SQLITE_PLACE.format(r='NEW')}, "
    f"{_SQLITE_NOW}); END",
    "CREATE TRIGGER placement_log_no_update BEFORE UPDATE ON placement_log "
    "BEGIN SELECT RAISE(ABORT, 'placement_log is append-only'); END",
    "CREATE TRIGGER placement_log_no_delete BEFORE DELETE ON placement_log "
    "BEGIN SELECT RAISE(ABORT, 'placement_log is append-only'); END",
]
_POSTGRES = [
    "CREATE FUNCTION faceledger_place(status text, blocked boolean) RETURNS text "
    "LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN status = 'destroyed' THEN 'destroyed' "
    "WHEN blocked THEN 'vault' ELSE 'searchable' END $$",
    "CREATE FUNCTION faces_log_placement() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "DECLARE before text; "
    "BEGIN "
    "IF TG_OP = 'INSERT' THEN before := 'new'; "
    "ELSE before := faceledger_place(OLD.status, OLD.blocked); END IF; "
    "IF before IS DISTINCT FROM faceledger_place(NEW.status, NEW.blocked) THEN "
    f"PERFORM pg_advisory_xact_lock({_LOCK_KEY}); "
    "INSERT INTO placement_log (face_id, from_place, to_place, at) VALUES "
    "(NEW.id, before, faceledger_place(NEW.status, NEW.blocked), clock_timestamp()); "
    "END IF; RETURN NULL; END $$",
    "CREATE TRIGGER faces_placement AFTER INSERT OR UPDATE OF blocked, status ON faces "
    "FOR EACH ROW EXECUTE FUNCTION faces_log_placement()",
    "CREATE FUNCTION placement_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'placement_log is append-only'; END $$",
    "CREATE TRIGGER placement_log_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON placement_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION placement_log_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "placement_log",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("face_id", sa.Integer(), nullable=False),
        sa.Column("from_place", sa.String(length=16), nullable=False),
        sa.Column("to_place", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_placement_log")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_placement_log_face_id", "placement_log", ["face_id"])
    op.create_table(
        "index_marks",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("applied_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_index_marks")),
    )
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": _SQLITE, "postgresql": _POSTGRES}.get(dialect, []):
        op.execute(statement)
    # Faces already stored start the log: one 'new' row each, in id order (what indexes built
    # before this revision hold is unknown, so they are rebuilt on first open).
    op.execute(
        "INSERT INTO placement_log (face_id, from_place, to_place, at) "
        "SELECT id, 'new', CASE WHEN status = 'destroyed' THEN 'destroyed' "
        "WHEN blocked THEN 'vault' ELSE 'searchable' END, vector_collected_at "
        "FROM faces ORDER BY id"
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("faces_placement_insert", "faces_placement_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS faces_placement ON faces")
        op.execute("DROP FUNCTION IF EXISTS faces_log_placement()")
        op.execute("DROP FUNCTION IF EXISTS faceledger_place(text, boolean)")
        op.execute("DROP FUNCTION IF EXISTS placement_log_append_only() CASCADE")
    op.drop_table("index_marks")
    op.drop_index("ix_placement_log_face_id", table_name="placement_log")
    op.drop_table("placement_log")
