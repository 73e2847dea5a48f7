"""Each governance action appends its audit entry; the chain stays verifiable throughout."""

from __future__ import annotations

from helpers import cli

from faceledger import audit
from faceledger.app.governance import (
    attestations,
    consent,
    destruction,
    holds,
    keys,
    retention,
    users,
)

pytest_plugins = ["governance_fixtures"]  # its seeded-library fixtures


def _last(lib) -> dict:
    return list(audit.export(lib.catalog.engine))[-1]


def test_every_governance_action_is_audited(seeded, tmp_path):
    lib = seeded.lib
    admin = lib.actor(None)
    doc = tmp_path / "doc.txt"
    doc.write_text("signed text\n")

    def cust():
        return lib.actor("cara")

    steps = [
        ("users.add", lambda: users.add_user(lib, admin, "cara", "custodian")),
        ("users.key", lambda: users.new_api_key(lib, admin, "cara")),
        ("attest", lambda: attestations.attest(lib, cust(), "cara", doc)),
        ("vault.read", lambda: lib.show_face(cust(), seeded.faces["img5.jpg"][0])),
        ("hold.create", lambda: holds.create_hold(lib, admin, "m", "all")),
        ("hold.release", lambda: holds.release_hold(lib, admin, 1)),
        ("retention.dry_run", lambda: retention.run_retention(lib, admin, dry_run=True)),
        ("retention.run", lambda: retention.run_retention(lib, admin)),
        ("erase", lambda: destruction.erase(lib, cust(), face=seeded.faces["img1.jpg"][0])),
        ("consent.record", lambda: consent.record_consent(lib, admin, "p", "search", "1y", doc)),
        ("key.generate", lambda: keys.generate(lib, admin, tmp_path / "a.key")),
        ("key.rotate", lambda: keys.rotate(lib, admin, tmp_path / "a.key")),
        ("users.disable", lambda: users.disable_user(lib, admin, "cara")),
    ]
    for action, step in steps:
        before = _last(lib)["id"]
        step()
        entries = [e for e in audit.export(lib.catalog.engine) if e["id"] > before]
        assert action in [e["action"] for e in entries], (action, entries)
        assert all(e["actor"] in (admin.name, "cara") for e in entries)
    assert audit.verify(lib.catalog.engine).ok


def test_api_key_is_shown_once_and_stored_hashed(seeded):
    from sqlalchemy import select

    from faceledger.catalog import schema as t

    lib = seeded.lib
    users.add_user(lib, lib.actor(None), "sam", "searcher")
    issued = users.new_api_key(lib, lib.actor(None), "sam")
    key = issued["api_key"]
    with lib.catalog.engine.connect() as conn:
        stored = conn.scalar(select(t.api_keys.c.key_hash))
        assert stored.startswith("$argon2") and key not in stored
        assert users.user_for_api_key(conn, key) == "sam"
        assert users.user_for_api_key(conn, key + "x") is None
    listed = cli(seeded.root, "users", "list", "--json")
    assert key not in listed.stdout and '"api_keys": 1' in listed.stdout


def test_audit_verify_and_export_commands(seeded):
    ok = cli(seeded.root, "audit", "verify")
    assert ok.exit_code == 0 and "intact" in ok.stdout
    seeded.lib.close()
    import sqlite3

    db = sqlite3.connect(seeded.root / "catalog.sqlite")
    db.execute("DROP TRIGGER audit_log_no_update")  # what an attacker with the file could do
    db.execute("UPDATE audit_log SET actor = 'someone' WHERE id = 2")
    db.commit()
    db.close()
    bad = cli(seeded.root, "audit", "verify")
    assert bad.exit_code == 1 and "entry 2" in bad.stdout
    exported = cli(seeded.root, "--as", "owner", "audit", "export")
    assert exported.exit_code == 3  # admins may not export the log (custodians, auditors may)
