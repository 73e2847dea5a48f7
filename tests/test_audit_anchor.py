"""Witnessed audit heads: `audit head`, `audit verify --anchor/--verify-key`, signing keys, and
the heads that productions and reports record. Each attack is made as someone holding the
database file would: drop the triggers that refuse edits, then write with raw SQL."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import stat
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from conftest import make_settings
from cryptography.hazmat.primitives import serialization
from helpers import cli
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from faceledger import audit
from faceledger.app.library import Library
from faceledger.audit import anchor
from faceledger.audit.anchor import AuditHead
from faceledger.discovery.production import (
    AUDIT_HEAD_COMMENT,
    MANIFEST_NAME,
    ProductionItem,
    verify_production,
    write_production,
)
from faceledger.discovery.report import ReportData, render_html

pytest_plugins = ["governance_fixtures"]  # the seeded library, for a real production

PG_URL = os.environ.get("FACELEDGER_TEST_PG_URL")


@pytest.fixture
def root(tmp_path) -> Path:
    """A fresh library (SQLite) made through the CLI, with a few entries in its log."""
    library = tmp_path / "library"
    assert cli(library, "init").exit_code == 0
    assert cli(library, "users", "add", "audrey", "--role", "auditor").exit_code == 0
    assert cli(library, "users", "add", "sam", "--role", "searcher").exit_code == 0
    return library


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the library: where witnesses and signing keys are kept."""
    folder = tmp_path / "witness"
    folder.mkdir()
    return folder


def _json(library: Path, *args: str, user: str | None = None, code: int = 0) -> dict:
    result = cli(library, *args, "--json", user=user)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def _entries(library: Path) -> list[dict]:
    lib = Library.open(make_settings(library))
    try:
        return list(audit.export(lib.catalog.engine))
    finally:
        lib.close()


def _attacker(library: Path) -> sqlite3.Connection:
    # Someone with write access to the file: the triggers are only a speed bump for them.
    raw = sqlite3.connect(library / "catalog.sqlite", isolation_level=None)
    raw.execute("DROP TRIGGER audit_log_no_update")
    raw.execute("DROP TRIGGER audit_log_no_delete")
    return raw


def _verify(library: Path, *args: str) -> tuple[int, dict]:
    result = cli(library, "audit", "verify", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


# -- audit head ------------------------------------------------------------------------------


def test_head_is_the_entry_that_records_the_witnessing(root):
    before = _entries(root)[-1]["id"]
    head = _json(root, "audit", "head")
    entries = _entries(root)
    assert head["id"] == before + 1 == entries[-1]["id"]
    assert (head["hash"], head["at"]) == (entries[-1]["hash"], entries[-1]["at"])
    assert entries[-1]["action"] == "audit.head" and entries[-1]["actor"] == "owner"
    details = entries[-1]["details"]
    assert {k: details[k] for k in ("signed_by", "to_file")} == {"signed_by": None,
                                                                 "to_file": False}
    # The change log's head too (None for a library without faces), for discovery compliance.
    assert "placement_log" in details
    assert "signature" not in head and head["out"] is None
    human = cli(root, "audit", "head")
    assert human.exit_code == 0 and f"audit head: entry {head['id'] + 1} sha256" in human.stdout


def test_head_out_appends_one_json_line_per_head(root, outside):
    heads_file = outside / "heads.jsonl"
    first = _json(root, "audit", "head", "--out", str(heads_file))
    second = _json(root, "audit", "head", "--out", str(heads_file))
    lines = [json.loads(line) for line in heads_file.read_text().splitlines()]
    assert lines == [
        {k: first[k] for k in ("id", "hash", "at")},
        {k: second[k] for k in ("id", "hash", "at")},
    ]
    assert second["id"] == first["id"] + 1 and second["out"] == str(heads_file)
    assert [h.head for h in anchor.read_heads(heads_file)] == [
        AuditHead(first["id"], first["hash"], first["at"]),
        AuditHead(second["id"], second["hash"], second["at"]),
    ]
    ok, report = _verify(root, "--anchor", str(heads_file))
    assert ok == 0 and report["ok"]
    assert report["anchor"]["heads"] == 2 and report["anchor"]["newest_id"] == second["id"]
    assert report["anchor"]["signatures"] == "not checked"


def test_head_may_be_taken_by_whoever_may_verify(root, outside):
    assert _json(root, "audit", "head", user="audrey")["id"] > 0
    refused = cli(root, "audit", "head", "--out", str(outside / "h.jsonl"), user="sam")
    assert refused.exit_code == 3 and "may not" in refused.stderr
    assert not (outside / "h.jsonl").exists()


def test_witnesses_and_keys_inside_the_library_are_refused(root, outside):
    count = len(_entries(root))
    refused = cli(root, "audit", "head", "--out", str(root / "heads.jsonl"))
    assert refused.exit_code == 2 and "inside the library" in refused.stderr
    refused = cli(root, "key", "generate", "--ed25519", "--key-file", str(root / "sig.key"))
    assert refused.exit_code == 2 and "inside the library" in refused.stderr
    assert not (root / "heads.jsonl").exists() and not (root / "sig.key").exists()
    assert len(_entries(root)) == count  # nothing witnessed, nothing recorded


# -- signing keys ----------------------------------------------------------------------------


def test_key_generate_ed25519_writes_a_private_and_a_public_key(root, outside):
    key_file = outside / "sig.key"
    made = _json(root, "key", "generate", "--ed25519", "--key-file", str(key_file))
    assert made["public_key_file"] == str(outside / "sig.key.pub")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((outside / "sig.key.pub").stat().st_mode) == 0o644
    public = anchor.load_verify_key(outside / "sig.key.pub")
    assert anchor.key_id(anchor.load_signing_key(key_file).public_key()) == made["key_id"]
    assert anchor.key_id(public) == made["key_id"]
    assert _entries(root)[-1]["action"] == "key.generate"
    assert _entries(root)[-1]["details"] == {"kind": "ed25519", "key_id": made["key_id"]}
    # Auditors make their own; nothing is ever overwritten.
    again = cli(root, "key", "generate", "--ed25519", "--key-file", str(key_file), user="audrey")
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert anchor.key_id(anchor.load_verify_key(outside / "sig.key.pub")) == made["key_id"]


def test_signed_heads_verify_with_their_public_key(root, outside):
    key_file, heads_file = outside / "sig.key", outside / "heads.jsonl"
    kid = _json(root, "key", "generate", "--ed25519", "--key-file", str(key_file))["key_id"]
    head = _json(root, "audit", "head", "--out", str(heads_file), "--sign-key", str(key_file))
    assert head["key_id"] == kid and _entries(root)[-1]["details"]["signed_by"] == kid
    code, report = _verify(root, "--anchor", str(heads_file), "--verify-key", f"{key_file}.pub")
    assert code == 0 and report["ok"] and report["anchor"]["signatures"] == "verified"
    # The documented recipe, checked without faceledger's helpers.
    line = json.loads(heads_file.read_text())
    body = json.dumps({k: line[k] for k in ("id", "hash", "at")}, sort_keys=True,
                      separators=(",", ":"))  # fmt: skip
    public = serialization.load_pem_public_key((outside / "sig.key.pub").read_bytes())
    public.verify(base64.b64decode(line["signature"]),
                  b"faceledger audit head v1\n" + body.encode())  # fmt: skip
    human = cli(root, "audit", "verify", "--anchor", str(heads_file), "--verify-key",
                f"{key_file}.pub")  # fmt: skip
    assert "signatures verified" in human.stdout


def test_a_wrong_public_key_fails(root, outside):
    heads_file = outside / "heads.jsonl"
    cli(root, "key", "generate", "--ed25519", "--key-file", str(outside / "mine.key"))
    cli(root, "key", "generate", "--ed25519", "--key-file", str(outside / "other.key"))
    head = _json(root, "audit", "head", "--out", str(heads_file), "--sign-key",
                 str(outside / "mine.key"))  # fmt: skip
    code, report = _verify(root, "--anchor", str(heads_file), "--verify-key",
                           str(outside / "other.key.pub"))  # fmt: skip
    assert code == 1 and not report["ok"] and report["anchor"]["signatures"] == "failed"
    assert f"line 1: entry {head['id']}" in report["reason"] and "does not verify" in report[
        "reason"]  # fmt: skip
    human = cli(root, "audit", "verify", "--anchor", str(heads_file), "--verify-key",
                str(outside / "other.key.pub"))  # fmt: skip
    assert human.exit_code == 1 and "fails its witnessed heads" in human.stdout


def test_an_unsigned_or_forged_head_fails_when_a_verify_key_is_given(root, outside):
    key_file, heads_file = outside / "sig.key", outside / "heads.jsonl"
    cli(root, "key", "generate", "--ed25519", "--key-file", str(key_file))
    _json(root, "audit", "head", "--out", str(heads_file), "--sign-key", str(key_file))
    _json(root, "audit", "head", "--out", str(heads_file))  # unsigned
    code, report = _verify(root, "--anchor", str(heads_file), "--verify-key", f"{key_file}.pub")
    assert code == 1 and "line 2" in report["reason"] and "is not signed" in report["reason"]
    # A signature moved onto another head does not verify either.
    lines = heads_file.read_text().splitlines()
    signed, unsigned = json.loads(lines[0]), json.loads(lines[1])
    forged = unsigned | {"signature": signed["signature"], "key_id": signed["key_id"]}
    heads_file.write_text(lines[0] + "\n" + json.dumps(forged) + "\n")
    code, report = _verify(root, "--anchor", str(heads_file), "--verify-key", f"{key_file}.pub")
    assert code == 1 and "line 2" in report["reason"] and "does not verify" in report["reason"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the heads file"),
        ("", "holds no witnessed heads"),
        ("not json\n", "line 1 of the heads file"),
        ('{"id": 3, "hash": "abc", "at": "x"}\n', "'hash' must be 64"),
    ],
)
def test_an_unusable_heads_file_is_a_clear_error(root, outside, content, message):
    heads_file = outside / "heads.jsonl"
    if content is not None:
        heads_file.write_text(content)
    result = cli(root, "audit", "verify", "--anchor", str(heads_file))
    assert result.exit_code == 2 and message in result.stderr


def test_a_verify_key_needs_an_anchor(root, outside):
    cli(root, "key", "generate", "--ed25519", "--key-file", str(outside / "sig.key"))
    result = cli(root, "audit", "verify", "--verify-key", str(outside / "sig.key.pub"))
    assert result.exit_code == 2 and "give the heads file too" in result.stderr


# -- the attacks the chain alone cannot see ----------------------------------------------------


def _witness(root: Path, outside: Path) -> tuple[Path, dict]:
    heads_file = outside / "heads.jsonl"
    return heads_file, _json(root, "audit", "head", "--out", str(heads_file))


def test_cut_tail_verifies_without_anchor_but_fails_with_it(root, outside):
    heads_file, head = _witness(root, outside)
    _attacker(root).execute("DELETE FROM audit_log WHERE id > ?", (head["id"] - 2,))
    # The limitation: a hash chain cannot see its newest entries go.
    code, plain = _verify(root)
    assert code == 0 and plain["ok"] and plain["last_id"] == head["id"] - 2
    code, report = _verify(root, "--anchor", str(heads_file))
    assert code == 1 and not report["ok"] and report["first_bad_id"] == head["id"] - 1
    assert "newest entries were removed" in report["reason"]
    assert f"witnessed head on line 1: entry {head['id']} (sha256 {head['hash']}" in report[
        "reason"]  # fmt: skip
    human = cli(root, "audit", "verify", "--anchor", str(heads_file))
    assert human.exit_code == 1 and "audit log broken at entry" in human.stdout


def test_emptied_log_verifies_without_anchor_but_fails_with_it(root, outside):
    heads_file, head = _witness(root, outside)
    _attacker(root).execute("DELETE FROM audit_log")
    code, plain = _verify(root)
    assert code == 0 and plain["ok"] and plain["checked"] == 0
    code, report = _verify(root, "--anchor", str(heads_file))
    assert code == 1 and report["first_bad_id"] == 1
    assert f"the log ends at entry 0 but an anchor names entry {head['id']}" in report["reason"]


def test_rehashed_chain_verifies_without_anchor_but_fails_with_it(root, outside):
    heads_file, head = _witness(root, outside)
    raw = _attacker(root)
    # Edit entry 2, then re-hash it and every later entry, as one who read audit/log.py would.
    rows = raw.execute("SELECT * FROM audit_log ORDER BY id").fetchall()
    prev = audit.GENESIS
    for entry_id, at, actor, action, oids, details, _prev, _hash in rows:
        if entry_id == 2:
            actor = "nobody"
        digest = audit.entry_hash(entry_id, datetime.fromisoformat(at), actor, action,
                                  json.loads(oids), json.loads(details), prev)  # fmt: skip
        raw.execute("UPDATE audit_log SET actor = ?, prev_hash = ?, hash = ? WHERE id = ?",
                    (actor, prev, digest, entry_id))  # fmt: skip
        prev = digest
    code, plain = _verify(root)
    assert code == 0 and plain["ok"] and plain["last_hash"] != head["hash"]
    code, report = _verify(root, "--anchor", str(heads_file))
    assert code == 1 and report["first_bad_id"] == head["id"]
    assert "its hash differs from the witnessed one" in report["reason"]
    assert f"entry {head['id']} (sha256 {head['hash']}" in report["reason"]


def test_entries_after_the_newest_witnessed_head_still_verify(root, outside):
    heads_file, head = _witness(root, outside)
    cli(root, "users", "add", "cara", "--role", "custodian")
    code, report = _verify(root, "--anchor", str(heads_file))
    assert code == 0 and report["last_id"] > head["id"]


@pytest.fixture
def pg_library(tmp_path, monkeypatch, pg_database) -> Path:
    monkeypatch.setenv("FACELEDGER_DATABASE_URL", pg_database)
    library = tmp_path / "pg-library"
    assert cli(library, "init").exit_code == 0
    return library


@pytest.mark.postgres
def test_postgres_cut_tail_fails_its_anchor(pg_library, outside):
    cli(pg_library, "users", "add", "audrey", "--role", "auditor")
    heads_file, head = _witness(pg_library, outside)
    engine = create_engine(
        make_url(os.environ["FACELEDGER_DATABASE_URL"]).set(drivername="postgresql+psycopg")
    )
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))
        conn.execute(text("DELETE FROM audit_log WHERE id > :n"), {"n": head["id"] - 2})
    engine.dispose()
    code, plain = _verify(pg_library)
    assert code == 0 and plain["ok"]
    code, report = _verify(pg_library, "--anchor", str(heads_file))
    assert code == 1 and "newest entries were removed" in report["reason"]


# -- productions and reports witness the head they were made at --------------------------------

HEAD = AuditHead(7, "ab" * 32, "2026-01-31T12:00:00.500000+00:00")


def test_production_manifest_names_its_audit_head(tmp_path):
    native = tmp_path / "a.jpg"
    Image.new("RGB", (16, 16), "white").save(native)  # a page image is rendered from it
    result = write_production(tmp_path / "prod", "FL", 1, [ProductionItem(native, 1, "jpg")],
                              "VOL001", audit_head=HEAD)  # fmt: skip
    lines = result.manifest_path.read_text("ascii").splitlines()
    assert lines[0] == f"{AUDIT_HEAD_COMMENT}entry 7 sha256 {HEAD.hash} at {HEAD.at}"
    assert result.audit_head == HEAD
    assert verify_production(result.out_dir) == []
    if shutil.which("sha256sum"):  # the comment line must not upset the standard tool
        subprocess.run(["sha256sum", "--check", "--strict", "--quiet", MANIFEST_NAME],
                       cwd=result.out_dir, check=True)  # fmt: skip


def test_report_footer_names_its_audit_head():
    page = render_html(ReportData("Doe v. Acme", "2026-02-01T00:00:00+00:00", audit_head=HEAD))
    assert f"Made at audit log entry 7 (SHA-256 {HEAD.hash}, {HEAD.at})" in page
    assert "<footer>" in page


def test_produce_and_report_record_the_head_they_were_made_at(seeded, tmp_path):
    root = seeded.root
    statement = tmp_path / "statement.txt"
    statement.write_text("I will use vault access only for legal duties.\n")
    assert cli(root, "users", "add", "cara", "--role", "custodian").exit_code == 0
    assert cli(root, "attest", "cara", "--statement-file", str(statement),
               user="cara").exit_code == 0  # fmt: skip
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{seeded.photos['img1.jpg']}\n")

    def in_log(head: dict) -> dict:
        entry = next(e for e in _entries(root) if e["id"] == head["id"])
        assert head == {k: entry[k] for k in ("id", "hash", "at")}
        return entry

    before = _entries(root)[-1]["id"]
    produced = _json(root, "discovery", "produce", "--matter", "M", "--prefix", "ABC", "--out",
                     str(tmp_path / "vol"), "--photos", str(ids), user="cara")  # fmt: skip
    head = produced["audit_head"]
    in_log(head)
    manifest = (tmp_path / "vol" / MANIFEST_NAME).read_text().splitlines()
    assert manifest[0] == (f"{AUDIT_HEAD_COMMENT}entry {head['id']} sha256 {head['hash']} "
                           f"at {head['at']}")  # fmt: skip
    entry = _entries(root)[-1]
    # Made after this command began (it audits its reads first), recorded before its own entry.
    assert entry["action"] == "discovery.produce" and before <= head["id"] < entry["id"]
    assert entry["details"]["audit_head_id"] == head["id"]

    before = _entries(root)[-1]["id"]
    out = tmp_path / "report.html"
    made = _json(root, "discovery", "report", "--matter", "M", "--out", str(out), user="cara")
    head = made["audit_head"]
    in_log(head)
    assert before <= head["id"] < _entries(root)[-1]["id"]
    assert f"Made at audit log entry {head['id']} (SHA-256 {head['hash']}" in out.read_text()
