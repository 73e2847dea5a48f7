"""user_history (append-only, written by triggers on users) and a hash chain over placement_log

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

**user_history.** One row per user insert, and per update that changes the name, role,
customer type, region or disabled flag, written by database triggers in the same transaction
(so raw SQL cannot change a user without a row either). Existing users get one ``backfill`` row
each, holding their current values from their ``created_at``. What cannot be backfilled: any
change made before this revision. Before it the catalog kept only current values, so for a
time before this revision a user's backfilled values are an assumption (the answers that rest
on them say ``"basis": "backfill"``), not a record.

**The change log's hash chain.** ``placement_log`` gains ``prev_hash`` and ``hash``: each row's
hash is the SHA-256 of ``seq|face_id|from_place|to_place|at|prev_hash`` (``at`` as
``YYYY-MM-DD HH:MM:SS.ffffff`` UTC; the first row's ``prev_hash`` is 64 zeros), computed by
the trigger that writes the row (SQLite: the ``faceledger_sha256`` function every faceledger
connection registers; PostgreSQL: its built-in ``sha256``). Rows already in the log are chained
here, in seq order. An edited, removed or moved row then breaks the chain; an attacker with the
file can re-hash the chain after an edit, which is why the chain's head is also written into
audit entries (``audit.head`` witnessing and every compliance answer): re-hashing the change
log then means rewriting the audit chain after that entry, which a witnessed audit head
outside the library catches.
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"faceledger.audit_log").digest()[:8], "big", signed=True)

# -- placement_log: the triggers of 0005, now chaining each row to the one before ---------------
_SQLITE_PLACE = (
    "CASE WHEN {r}.status = 'destroyed' THEN 'destroyed' "
    "WHEN {r}.blocked THEN 'vault' ELSE 'searchable' END"
)
_SQLITE_NOW = (
    "strftime('%Y-%m-%d %H:%M:%S', 'now') || '.' || substr(strftime('%f', 'now'), 4) || '000'"
)


def _sqlite_log_insert(before: str, after: str) -> str:
    # One INSERT ... SELECT: seq, the previous hash and the time are read once, and 'now' is
    # the same for every use within one statement (SQLite guarantees it per step).
    return (
        "INSERT INTO placement_log (seq, face_id, from_place, to_place, at, prev_hash, hash) "
        "SELECT s, NEW.id, b, a, n, p, faceledger_sha256(s || '|' || NEW.id || '|' || b || '|' "
        "|| a || '|' || n || '|' || p) FROM (SELECT "
        "COALESCE((SELECT MAX(seq) FROM placement_log), 0) + 1 AS s, "
        f"COALESCE((SELECT hash FROM placement_log ORDER BY seq DESC LIMIT 1), '{GENESIS}') AS p, "
        f"{before} AS b, {after} AS a, {_SQLITE_NOW} AS n)"
    )


_SQLITE_LOG = [
    "CREATE TRIGGER faces_placement_insert AFTER INSERT ON faces BEGIN "
    f"{_sqlite_log_insert(repr('new'), _SQLITE_PLACE.format(r='NEW'))}; END",
    "CREATE TRIGGER faces_placement_update AFTER UPDATE OF blocked, status ON faces "
    f"WHEN ({_SQLITE_PLACE.format(r='OLD')}) IS NOT ({_SQLITE_PLACE.format(r='NEW')}) BEGIN "
    f"{_sqlite_log_insert(_SQLITE_PLACE.format(r='OLD'), _SQLITE_PLACE.format(r='NEW'))}; END",
]
_POSTGRES_LOG = [
    "CREATE OR REPLACE FUNCTION faces_log_placement() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "DECLARE v_from text; v_to text; s bigint; p text; n timestamptz; "
    "BEGIN "
    "IF TG_OP = 'INSERT' THEN v_from := 'new'; "
    "ELSE v_from := faceledger_place(OLD.status, OLD.blocked); END IF; "
    "v_to := faceledger_place(NEW.status, NEW.blocked); "
    "IF v_from IS DISTINCT FROM v_to THEN "
    f"PERFORM pg_advisory_xact_lock({_LOCK_KEY}); "
    "s := nextval(pg_get_serial_sequence('placement_log', 'seq')); "
    f"SELECT COALESCE((SELECT hash FROM placement_log ORDER BY seq DESC LIMIT 1), '{GENESIS}') "
    "INTO p; "
    "n := date_trunc('microseconds', clock_timestamp()); "
    "INSERT INTO placement_log (seq, face_id, from_place, to_place, at, prev_hash, hash) VALUES "
    "(s, NEW.id, v_from, v_to, n, p, encode(sha256(convert_to(s || '|' || NEW.id || '|' || "
    "v_from || '|' || v_to || '|' || to_char(n AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD HH24:MI:SS.US') || '|' || p, 'UTF8')), 'hex')); "
    "END IF; RETURN NULL; END $$",
]

# -- user_history ----------------------------------------------------------------------------
_COLUMNS = "user_id, name, role, customer_type, region, disabled, change, at"
_SQLITE_USERS = [
    "CREATE TRIGGER users_history_insert AFTER INSERT ON users BEGIN "
    f"INSERT INTO user_history ({_COLUMNS}) VALUES (NEW.id, NEW.name, NEW.role, "
    f"NEW.customer_type, NEW.region, NEW.disabled, 'insert', {_SQLITE_NOW}); END",
    "CREATE TRIGGER users_history_update AFTER UPDATE ON users WHEN "
    "OLD.name IS NOT NEW.name OR OLD.role IS NOT NEW.role OR "
    "OLD.customer_type IS NOT NEW.customer_type OR OLD.region IS NOT NEW.region OR "
    "OLD.disabled IS NOT NEW.disabled BEGIN "
    f"INSERT INTO user_history ({_COLUMNS}) VALUES (NEW.id, NEW.name, NEW.role, "
    f"NEW.customer_type, NEW.region, NEW.disabled, 'update', {_SQLITE_NOW}); END",
    "CREATE TRIGGER user_history_no_update BEFORE UPDATE ON user_history "
    "BEGIN SELECT RAISE(ABORT, 'user_history is append-only'); END",
    "CREATE TRIGGER user_history_no_delete BEFORE DELETE ON user_history "
    "BEGIN SELECT RAISE(ABORT, 'user_history is append-only'); END",
]
_POSTGRES_USERS = [
    "CREATE FUNCTION users_log_history() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP = 'UPDATE' AND OLD.name IS NOT DISTINCT FROM NEW.name "
    "AND OLD.role IS NOT DISTINCT FROM NEW.role "
    "AND OLD.customer_type IS NOT DISTINCT FROM NEW.customer_type "
    "AND OLD.region IS NOT DISTINCT FROM NEW.region "
    "AND OLD.disabled IS NOT DISTINCT FROM NEW.disabled THEN RETURN NULL; END IF; "
    f"INSERT INTO user_history ({_COLUMNS}) VALUES (NEW.id, NEW.name, NEW.role, "
    "NEW.customer_type, NEW.region, NEW.disabled, lower(TG_OP), clock_timestamp()); "
    "RETURN NULL; END $$",
    "CREATE TRIGGER users_history AFTER INSERT OR UPDATE ON users "
    "FOR EACH ROW EXECUTE FUNCTION users_log_history()",
    "CREATE FUNCTION user_history_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'user_history is append-only'; END $$",
    "CREATE TRIGGER user_history_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON user_history "
    "FOR EACH STATEMENT EXECUTE FUNCTION user_history_append_only()",
]

_log = sa.table(
    "placement_log",
    sa.column("seq", sa.Integer),
    sa.column("face_id", sa.Integer),
    sa.column("from_place", sa.String),
    sa.column("to_place", sa.String),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)


def _chain_existing_rows(bind) -> None:
    # The same body as catalog.history.placement_hash (copied: a migration stays as written).
    from datetime import UTC

    prev = GENESIS
    rows = bind.execute(
        sa.select(_log.c.seq, _log.c.face_id, _log.c.from_place, _log.c.to_place, _log.c.at)
        .order_by(_log.c.seq)
    ).all()
    for seq, face_id, before, after, at in rows:
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        body = f"{seq}|{face_id}|{before}|{after}|{at.strftime('%Y-%m-%d %H:%M:%S.%f')}|{prev}"
        digest = hashlib.sha256(body.encode()).hexdigest()
        bind.execute(
            sa.update(_log).where(_log.c.seq == seq).values(prev_hash=prev, hash=digest)
        )
        prev = digest


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    op.create_table(
        "user_history",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("customer_type", sa.String(length=16)),
        sa.Column("region", sa.String(length=16)),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_user_history")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_user_history_user_id", "user_history", ["user_id"])
    # Current values, from when each user was created: all the catalog knows of the past.
    op.execute(
        f"INSERT INTO user_history ({_COLUMNS}) SELECT id, name, role, customer_type, region, "
        "disabled, 'backfill', created_at FROM users ORDER BY id"
    )
    with op.batch_alter_table("placement_log") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(length=64)))
        batch.add_column(sa.Column("hash", sa.String(length=64)))
    if dialect == "sqlite":
        for name in ("faces_placement_insert", "faces_placement_update",
                     "placement_log_no_update", "placement_log_no_delete"):  # fmt: skip
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS placement_log_no_change ON placement_log")
    _chain_existing_rows(bind)
    if dialect == "sqlite":
        statements = [*_SQLITE_LOG, *_SQLITE_APPEND_ONLY, *_SQLITE_USERS]
    elif dialect == "postgresql":
        statements = [*_POSTGRES_LOG, _POSTGRES_APPEND_ONLY, *_POSTGRES_USERS]
    else:
        statements = []
    for statement in statements:
        op.execute(statement)


_SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER placement_log_no_update BEFORE UPDATE ON placement_log "
    "BEGIN SELECT RAISE(ABORT, 'placement_log is append-only'); END",
    "CREATE TRIGGER placement_log_no_delete BEFORE DELETE ON placement_log "
    "BEGIN SELECT RAISE(ABORT, 'placement_log is append-only'); END",
]
_POSTGRES_APPEND_ONLY = (
    "CREATE TRIGGER placement_log_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON placement_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION placement_log_append_only()"
)


def downgrade() -> None:
    raise NotImplementedError("0008 keeps history: restore a backup to go below it")
