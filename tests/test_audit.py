"""The hash-chained audit log: append, verify and what it catches, export, triggers."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from faceledger.audit import GENESIS, append, entry_hash, export, verify
from faceledger.catalog.database import make_engine, migrate
from faceledger.clock import iso
from faceledger.records import AuditFilter

N = 10


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "catalog.sqlite"


@pytest.fixture
def engine(db_path):
    eng = make_engine(f"sqlite:///{db_path}")
    migrate(eng)
    yield eng
    eng.dispose()


def _fill(engine, n: int = N, start: int = 0) -> None:
    for i in range(start, start + n):
        with engine.begin() as conn:
            append(conn, f"user{i % 3}", "search", {"faces": [i, i + 100]}, {"k": 10, "n": i})


@pytest.fixture
def chain(engine):
    _fill(engine)
    return engine


def _attacker(db_path) -> sqlite3.Connection:
    # Someone with write access to the file: the triggers are only a speed bump for them.
    raw = sqlite3.connect(db_path, isolation_level=None)
    raw.execute("DROP TRIGGER audit_log_no_update")
    raw.execute("DROP TRIGGER audit_log_no_delete")
    return raw


def _row(raw: sqlite3.Connection, entry_id: int) -> dict:
    cur = raw.execute("SELECT * FROM audit_log WHERE id = ?", (entry_id,))
    return dict(zip([c[0] for c in cur.description], cur.fetchone(), strict=True))


def _forged_hash(row: dict, entry_id: int, prev_hash: str) -> str:
    # What an attacker who read this module would compute.
    at = datetime.fromisoformat(row["at"])
    return entry_hash(
        entry_id, at, row["actor"], row["action"], json.loads(row["object_ids"]),
        json.loads(row["details"]), prev_hash,
    )  # fmt: skip


# -- a sound chain ---------------------------------------------------------------------------


def test_chain_verifies(chain):
    result = verify(chain)
    entries = list(export(chain))
    assert result.ok and result.first_bad_id is None and result.reason is None
    assert result.checked == N
    assert [e["id"] for e in entries] == list(range(1, N + 1))
    assert entries[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(entries, entries[1:], strict=False))
    assert (result.last_id, result.last_hash) == (N, entries[-1]["hash"])


def test_empty_log_verifies(engine):
    result = verify(engine)
    assert result.ok and result.checked == 0 and result.last_id is None


def test_hash_is_sha256_of_canonical_json(chain):
    # The documented recipe, so that anyone can check an export without faceledger.
    for entry in export(chain):
        body = {k: entry[k] for k in ("id", "at", "actor", "action", "object_ids", "details")}
        body["prev_hash"] = entry["prev_hash"]
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        assert hashlib.sha256(canonical.encode()).hexdigest() == entry["hash"]


def test_times_are_aware_utc_and_hash_recomputes(chain):
    entry = next(export(chain))
    at = datetime.fromisoformat(entry["at"])
    assert at.utcoffset() == timedelta(0)
    # The same instant in another zone hashes the same: the hash covers the UTC text.
    other = at.astimezone(timezone(timedelta(hours=-5)))
    assert iso(other) == entry["at"]
    assert (
        entry_hash(1, other, entry["actor"], entry["action"], entry["object_ids"],
                   entry["details"], GENESIS)
        == entry["hash"]
    )  # fmt: skip


def test_details_are_normalised_to_plain_json(engine):
    with engine.begin() as conn:
        append(conn, "José", "export", {"photos": (1, 2)}, {3: "int key", "nested": {"b": "Zoë"}})
    assert verify(engine).ok
    entry = next(export(engine))
    assert entry["object_ids"] == {"photos": [1, 2]}
    assert entry["actor"] == "José"
    assert entry["details"] == {"3": "int key", "nested": {"b": "Zoë"}}
    assert entry["object_ids"] is not None and json.dumps(entry)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"details": {"when": datetime(2026, 1, 1)}},
        {"details": {"score": float("nan")}},
        {"object_ids": [1, 2]},
        {"actor": ""},
        {"action": "x" * 65},
    ],
)
def test_bad_entries_are_refused(engine, kwargs):
    args = {"actor": "alice", "action": "search"} | kwargs
    with pytest.raises(ValueError), engine.begin() as conn:
        append(conn, **args)
    assert verify(engine).checked == 0


def test_rolled_back_append_leaves_no_gap(chain):
    with pytest.raises(RuntimeError), chain.begin() as conn:
        append(conn, "alice", "search")
        raise RuntimeError("the caller's transaction fails")
    _fill(chain, 2, start=N)
    result = verify(chain)
    assert result.ok and result.last_id == N + 2


def test_append_joins_the_callers_transaction(chain):
    with chain.begin() as conn:
        conn.execute(text("INSERT INTO library_meta (key, value) VALUES ('k', 'v')"))
        entry_id = append(conn, "alice", "set_meta", details={"key": "k"})
        conn.rollback()
    assert entry_id == N + 1
    assert verify(chain).checked == N


def test_concurrent_appends_keep_one_chain(db_path, engine):
    threads, per_thread = 4, 15
    errors: list[BaseException] = []

    def work(t: int) -> None:
        eng = make_engine(f"sqlite:///{db_path}")
        try:
            for i in range(per_thread):
                with eng.begin() as conn:
                    # A read first: the appender must still see the newest tail.
                    conn.execute(text("SELECT count(*) FROM audit_log")).scalar()
                    append(conn, f"t{t}", "search", {"faces": [i]})
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            eng.dispose()

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    result = verify(engine)
    assert result.ok and result.checked == threads * per_thread


# -- export ----------------------------------------------------------------------------------


def test_export_since(chain):
    entries = list(export(chain))
    since = datetime.fromisoformat(entries[4]["at"])
    assert [e["id"] for e in export(chain, AuditFilter(since=since))] == list(range(5, N + 1))
    # The same instant written in another zone selects the same entries.
    elsewhere = since.astimezone(timezone(timedelta(hours=9)))
    assert [e["id"] for e in export(chain, AuditFilter(since=elsewhere))] == list(range(5, N + 1))
    assert list(export(chain, AuditFilter(since=since + timedelta(days=1)))) == []


def test_export_is_json_ready(chain):
    entries = list(export(chain))
    assert json.loads(json.dumps(entries)) == entries
    assert entries[2]["object_ids"] == {"faces": [2, 102]}


# -- tampering (the attacker drops the triggers first) ----------------------------------------


def test_edit_is_detected(chain, db_path):
    _attacker(db_path).execute('UPDATE audit_log SET details = \'{"k":10,"n":99}\' WHERE id = 5')
    result = verify(chain)
    assert not result.ok and result.first_bad_id == 5 and "altered" in result.reason
    assert result.checked == 5 and result.last_id == 4


def test_edit_to_non_ascii_text_is_detected(chain, db_path):
    _attacker(db_path).execute('UPDATE audit_log SET details = \'{"k":"Zoë"}\' WHERE id = 2')
    assert verify(chain).first_bad_id == 2


def test_edit_of_the_time_is_detected(chain, db_path):
    raw = _attacker(db_path)
    at = datetime.fromisoformat(_row(raw, 3)["at"]) - timedelta(hours=1)
    raw.execute("UPDATE audit_log SET at = ? WHERE id = 3", (at.strftime("%Y-%m-%d %H:%M:%S.%f"),))
    assert verify(chain).first_bad_id == 3


def test_edit_with_a_recomputed_hash_breaks_the_next_link(chain, db_path):
    raw = _attacker(db_path)
    row = _row(raw, 5)
    row["actor"] = "nobody"
    raw.execute(
        "UPDATE audit_log SET actor = ?, hash = ? WHERE id = 5",
        (row["actor"], _forged_hash(row, 5, row["prev_hash"])),
    )
    result = verify(chain)
    # Entry 5 is consistent in itself now; the chain still names the break right after it.
    assert not result.ok and result.first_bad_id == 6 and "prev_hash" in result.reason


@pytest.mark.parametrize(("deleted", "first_bad"), [(4, 5), (1, 2)])
def test_deletion_is_detected(chain, db_path, deleted, first_bad):
    _attacker(db_path).execute("DELETE FROM audit_log WHERE id = ?", (deleted,))
    result = verify(chain)
    assert not result.ok and result.first_bad_id == first_bad
    assert f"entry {deleted} is missing" in result.reason


def _make_room_after(raw: sqlite3.Connection, entry_id: int) -> None:
    # Shift the later entries up by one (two steps: ids are unique at every row update).
    raw.execute("UPDATE audit_log SET id = id + 100000 WHERE id > ?", (entry_id,))
    raw.execute("UPDATE audit_log SET id = id - 99999 WHERE id > 100000")


def test_insertion_is_detected(chain, db_path):
    raw = _attacker(db_path)
    _make_room_after(raw, 5)
    prev = _row(raw, 5)["hash"]
    raw.execute(
        "INSERT INTO audit_log VALUES (6, '2026-01-01 00:00:00.000000', 'ghost', 'search', "
        "'{}', '{}', ?, ?)",
        (prev, hashlib.sha256(b"made up").hexdigest()),
    )
    result = verify(chain)
    assert not result.ok and result.first_bad_id == 6 and result.checked == 6


def test_insertion_with_a_forged_hash_is_detected_at_the_next_entry(chain, db_path):
    raw = _attacker(db_path)
    _make_room_after(raw, 5)
    row = _row(raw, 5) | {"actor": "ghost"}
    raw.execute(
        "INSERT INTO audit_log VALUES (6, ?, 'ghost', ?, ?, ?, ?, ?)",
        (row["at"], row["action"], row["object_ids"], row["details"], row["hash"],
         _forged_hash(row, 6, row["hash"])),
    )  # fmt: skip
    result = verify(chain)
    assert not result.ok and result.first_bad_id == 7


def test_insertion_past_the_end_is_detected(chain, db_path):
    raw = _attacker(db_path)
    row = _row(raw, N)
    raw.execute(
        "INSERT INTO audit_log VALUES (?, ?, 'ghost', 'search', '{}', '{}', ?, ?)",
        (N + 5, row["at"], row["hash"], hashlib.sha256(b"made up").hexdigest()),
    )
    result = verify(chain)
    assert result.first_bad_id == N + 5 and f"entry {N + 1} is missing" in result.reason


@pytest.mark.parametrize(("a", "b"), [(3, 7), (4, 5)])
def test_swap_is_detected(chain, db_path, a, b):
    raw = _attacker(db_path)
    raw.execute("UPDATE audit_log SET id = -1 WHERE id = ?", (a,))
    raw.execute("UPDATE audit_log SET id = ? WHERE id = ?", (a, b))
    raw.execute("UPDATE audit_log SET id = ? WHERE id = -1", (b,))
    result = verify(chain)
    assert not result.ok and result.first_bad_id == a and result.last_id == a - 1


def test_removed_tail_needs_an_anchor(chain, db_path):
    anchor = (verify(chain).last_id, verify(chain).last_hash)
    _attacker(db_path).execute("DELETE FROM audit_log WHERE id >= ?", (N - 1,))
    # A plain hash chain cannot see its newest entries go; the recorded anchor can.
    assert verify(chain).ok
    result = verify(chain, anchor=anchor)
    assert not result.ok and result.first_bad_id == N - 1 and "removed" in result.reason


def test_rewritten_chain_fails_its_anchor(chain, db_path):
    anchor = (5, list(export(chain))[4]["hash"])
    raw = _attacker(db_path)
    prev = GENESIS
    for entry_id in range(1, N + 1):  # rewrite everything, consistently
        row = _row(raw, entry_id) | {"actor": "rewritten"}
        digest = _forged_hash(row, entry_id, prev)
        raw.execute(
            "UPDATE audit_log SET actor = ?, prev_hash = ?, hash = ? WHERE id = ?",
            (row["actor"], prev, digest, entry_id),
        )
        prev = digest
    assert verify(chain).ok
    assert verify(chain, anchor=anchor).first_bad_id == 5
    assert verify(chain, anchor=anchor).last_id == 4


# -- the database itself refuses changes ---------------------------------------------------


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET actor = 'x' WHERE id = 2", "DELETE FROM audit_log"]
)
def test_triggers_refuse_update_and_delete(chain, db_path, statement):
    with pytest.raises(DBAPIError, match="append-only"), chain.begin() as conn:
        conn.execute(text(statement))
    raw = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute(statement)
    raw.close()
    assert verify(chain).ok and verify(chain).checked == N


# -- PostgreSQL ------------------------------------------------------------------------------

PG_URL = os.environ.get("FACELEDGER_TEST_PG_URL")


@pytest.fixture
def pg_engine():
    if not PG_URL:
        pytest.skip("set FACELEDGER_TEST_PG_URL to a PostgreSQL database to run this test")
    url = make_url(PG_URL)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    schema = f"faceledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    # A schema of its own: the test leaves a shared database as it found it.
    scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
    eng = make_engine(scoped.render_as_string(hide_password=False))
    try:
        migrate(eng)
        yield eng
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_chain_verifies_and_detects_an_edit(pg_engine):
    _fill(pg_engine)
    result = verify(pg_engine)
    assert result.ok and result.checked == N
    entry = list(export(pg_engine))[3]
    assert entry["object_ids"] == {"faces": [3, 103]}
    with pg_engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))
        conn.execute(text("UPDATE audit_log SET actor = 'x' WHERE id = 4"))
    assert verify(pg_engine).first_bad_id == 4


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"],
)
def test_postgres_triggers_refuse_changes(pg_engine, statement):
    _fill(pg_engine, 2)
    with pytest.raises(DBAPIError, match="append-only"), pg_engine.begin() as conn:
        conn.execute(text(statement))
    assert verify(pg_engine).checked == 2


@pytest.mark.postgres
def test_postgres_concurrent_appends_keep_one_chain(pg_engine):
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            _fill(pg_engine, 10, start=t * 10)
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    result = verify(pg_engine)
    assert result.ok and result.checked == 40
