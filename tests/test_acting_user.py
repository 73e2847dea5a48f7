"""Security finding 10: acting as a user on the command line proves who you are.

The owner (the operator who created the library) is trusted; anyone else needs their own API
key, in FACELEDGER_API_KEY. Attestations are signed in person; an admin can revoke one. Also
issue 9's leftover: library errors name no command-line flag.
"""

from __future__ import annotations

import ast
import json
import re

import pytest
from argon2 import PasswordHasher
from conftest import make_settings
from helpers import cli

from faceledger.app.governance import attestations, users
from faceledger.app.library import Library


@pytest.fixture
def people(library, tmp_path, monkeypatch):
    # Keys hashed with cheap argon2 parameters (verify reads them from the hash).
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    owner = library.actor(None)
    users.add_user(library, owner, "sam", "searcher")
    users.add_user(library, owner, "cara", "custodian")
    keys = {n: users.new_api_key(library, owner, n)["api_key"] for n in ("sam", "cara")}
    statement = tmp_path / "statement.txt"
    statement.write_text("I use the vault only for legal obligations.\n")
    return library.root, keys, statement


def _as(root, user, key, *argv):
    env = {"FACELEDGER_API_KEY": key} if key is not None else {"FACELEDGER_API_KEY": ""}
    return cli(root, "--as", user, *argv, env=env)


def test_acting_as_a_user_needs_their_key(people):
    root, keys, _ = people
    # No key: refused, and told where the key goes.
    refused = _as(root, "sam", None, "stats")
    assert refused.exit_code == 3 and "FACELEDGER_API_KEY" in refused.stderr
    # Another user's key, or a made-up one: refused.
    for wrong in (keys["cara"], "flk_0123abcd_" + "x" * 43, "not a key"):
        bad = _as(root, "sam", wrong, "stats")
        assert bad.exit_code == 3 and "not sam's" in bad.stderr, wrong
    # Their own key: the command runs as them (a searcher may not list users).
    assert _as(root, "sam", keys["sam"], "stats", "--json").exit_code == 0
    as_sam = _as(root, "sam", keys["sam"], "users", "list")
    assert as_sam.exit_code == 3 and "role 'searcher'" in as_sam.stderr
    # The owner is trusted: no key, with --as or without.
    assert cli(root, "--as", "owner", "users", "list", "--json").exit_code == 0
    assert cli(root, "users", "list", "--json").exit_code == 0
    # A revoked key stops working at once.
    lib = Library.open(make_settings(root))
    try:
        users.new_api_key(lib, lib.actor(None), "sam")
    finally:
        lib.close()
    assert _as(root, "sam", keys["sam"], "stats").exit_code == 3


def test_an_attestation_is_signed_in_person_and_an_admin_can_revoke_it(people):
    root, keys, statement = people
    sign = ["attest", "cara", "--statement-file", str(statement)]
    # Nobody signs for cara: not the owner, not cara without her key.
    by_admin = cli(root, *sign)
    assert by_admin.exit_code == 3 and "in person" in by_admin.stderr
    assert _as(root, "cara", None, *sign).exit_code == 3
    signed = json.loads(_as(root, "cara", keys["cara"], *sign, "--json").stdout)
    count = ["discovery", "count", "--blocked", "--json"]
    assert _as(root, "cara", keys["cara"], *count).exit_code == 0
    # Revoked by an admin (with a reason), the vault is closed to her until she signs again.
    by_searcher = _as(root, "sam", keys["sam"], "revoke-attestation", "cara", "--reason", "x")
    assert by_searcher.exit_code == 3
    revoked = json.loads(
        cli(root, "revoke-attestation", "cara", "--reason", "left the matter", "--json").stdout
    )
    assert revoked["revoked"] == [signed["attestation"]]
    closed = _as(root, "cara", keys["cara"], *count)
    assert closed.exit_code == 3 and "attestation" in closed.stderr
    assert _as(root, "cara", keys["cara"], *sign).exit_code == 0
    assert _as(root, "cara", keys["cara"], *count).exit_code == 0
    # Both are in the audit log, by who did them.
    entries = json.loads(_as(root, "cara", keys["cara"], "audit", "export", "--json").stdout)
    done = [(e["actor"], e["action"]) for e in entries if e["action"].startswith("attest")]
    assert done == [("cara", "attest"), ("owner", "attest.revoke"), ("cara", "attest")]
    revoke = next(e for e in entries if e["action"] == "attest.revoke")
    assert revoke["details"] == {"user": "cara", "reason": "left the matter"}


def test_the_library_api_refuses_signing_for_another(library, tmp_path):
    users.add_user(library, library.actor(None), "cara", "custodian")
    statement = tmp_path / "s.txt"
    statement.write_text("statement\n")
    with pytest.raises(Exception, match="in person"):
        attestations.attest(library, library.actor(None), "cara", statement)


# -- issue 9's leftover: errors the web sees too name no CLI flag ------------------------------
def test_library_error_messages_name_no_cli_flag():
    from pathlib import Path

    import faceledger

    root = Path(faceledger.__file__).parent
    sources = [*sorted((root / "app").rglob("*.py")), root / "errors.py",
               root / "policy" / "roles.py", root / "ids.py"]  # fmt: skip
    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
    found = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for part in ast.walk(node.exc):
                    text = part.value if isinstance(part, ast.Constant) else None
                    if isinstance(text, str) and flag.search(text):
                        found.append(f"{path.name}:{node.lineno}: {text!r}")
    assert not found, found

