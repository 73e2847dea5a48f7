"""Passwords and sessions as library calls, and the audit export filters on the CLI."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher
from helpers import cli

from faceledger.app import sessions
from faceledger.app.governance import users
from faceledger.errors import BadOptionError, PermissionDenied, SignInError

PASSWORD = "a long enough passphrase"


@pytest.fixture
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


def test_passwords_are_set_by_admins_or_oneself(library, cheap_hashes):
    owner = library.actor(None)
    users.add_user(library, owner, "sam", "searcher")
    users.add_user(library, owner, "ann", "auditor")
    with pytest.raises(BadOptionError):
        sessions.set_password(library, owner, "sam", "short")
    with pytest.raises(PermissionDenied):
        sessions.set_password(library, library.actor("ann"), "sam", PASSWORD)
    sessions.set_password(library, library.actor("sam"), "sam", PASSWORD)
    signed = sessions.sign_in(library, "sam", PASSWORD, "127.0.0.1")
    assert sessions.session_for(library, signed.token).actor.name == "sam"
    # A new password ends the sessions opened with the old one.
    sessions.set_password(library, owner, "sam", PASSWORD + "!")
    assert sessions.session_for(library, signed.token) is None
    with pytest.raises(SignInError):
        sessions.sign_in(library, "sam", PASSWORD)


def test_the_cookie_token_is_not_stored(library, cheap_hashes):
    owner = library.actor(None)
    sessions.set_password(library, owner, owner.name, PASSWORD)
    signed = sessions.sign_in(library, owner.name, PASSWORD)
    db = (library.root / "catalog.sqlite").read_bytes()
    wal = library.root / "catalog.sqlite-wal"
    db += wal.read_bytes() if wal.exists() else b""
    assert signed.token.encode() not in db
    assert sessions.csrf_matches(signed.session, signed.session.csrf_token)
    assert not sessions.csrf_matches(signed.session, signed.session.csrf_token[:-1] + "x")
    assert not sessions.csrf_matches(signed.session, None)


def test_users_password_command(library, cheap_hashes):
    result = cli(library.root, "users", "password", "owner", "--json")
    assert result.exit_code != 0  # no password given and none typed
    from typer.testing import CliRunner

    from faceledger.cli import app

    done = CliRunner().invoke(app, ["--library", str(library.root), "users", "password",
                                    "owner", "--json"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert done.exit_code == 0, done.output
    assert '"password_set": true' in done.stdout
    assert sessions.sign_in(library, "owner", PASSWORD).session.actor.role == "admin"


def test_audit_export_filters(library):
    owner = library.actor(None)
    users.add_user(library, owner, "ann", "auditor")
    users.add_user(library, owner, "bob", "searcher")
    out = cli(library.root, "audit", "export", "--json", "--action", "users.add", user="ann")
    assert out.exit_code == 0, out.output
    entries = json.loads(out.stdout)
    assert [e["details"]["name"] for e in entries] == ["ann", "bob"]
    by_ann = json.loads(cli(library.root, "audit", "export", "--json", "--actor", "ann",
                            user="ann").stdout)  # fmt: skip
    assert {e["actor"] for e in by_ann} == {"ann"} and by_ann
    first = entries[0]["at"]
    until = json.loads(cli(library.root, "audit", "export", "--json", "--action", "users.add",
                           "--until", first, user="ann").stdout)  # fmt: skip
    assert [e["details"]["name"] for e in until] == ["ann"]
    day = first[:10]
    whole_day = json.loads(cli(library.root, "audit", "export", "--json", "--action",
                               "users.add", "--until", day, user="ann").stdout)  # fmt: skip
    assert len(whole_day) == 2  # a date alone covers that whole day
    none = json.loads(cli(library.root, "audit", "export", "--json", "--since", "2999-01-01",
                          user="ann").stdout)  # fmt: skip
    assert none == []
    bad = cli(library.root, "audit", "export", "--until", "yesterday", user="ann")
    assert bad.exit_code == 2 and "--until" in bad.output


def test_a_session_opened_with_a_key_ends_when_the_key_is_revoked(library, cheap_hashes):
    owner = library.actor(None)
    users.add_user(library, owner, "sam", "searcher")
    key = users.new_api_key(library, owner, "sam")["api_key"]
    signed = sessions.sign_in(library, "sam", key)
    assert sessions.session_for(library, signed.token) is not None
    users.new_api_key(library, owner, "sam")  # revokes the first key
    assert sessions.session_for(library, signed.token) is None
    with pytest.raises(SignInError):
        sessions.sign_in(library, "sam", key)
