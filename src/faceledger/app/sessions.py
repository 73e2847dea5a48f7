"""Console sign-in: passwords, server-side sessions, sign-out; every sign-in (and failure) audited.

A user signs in with their name and either an API key or a password set with
`faceledger users password NAME`; both are checked against argon2 hashes. A session is a
random token: the browser holds it in a cookie, the catalog only its SHA-256, with the user,
a per-session CSRF token and an absolute expiry (``session_seconds``). Disabling a user or
setting a new password ends their sessions, and revoking the API key a session was opened with
ends that session. API clients do not use sessions: they send keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError

from faceledger import audit
from faceledger.app.governance import users
from faceledger.app.library import Actor, Library
from faceledger.catalog import sessions as catalog_sessions
from faceledger.catalog import users as catalog_users
from faceledger.clock import as_utc, iso, utcnow
from faceledger.errors import BadOptionError, NotFoundError, PermissionDenied, SignInError

__all__ = [
    "ConsoleSession",
    "SignedIn",
    "set_password",
    "sign_in",
    "session_for",
    "sign_out",
    "csrf_matches",
    "PASSWORD_MIN_CHARS",
]

#: Shortest password accepted (a passphrase; argon2 makes each guess slow, not impossible).
PASSWORD_MIN_CHARS = 12
#: Longest name, key or password looked at, so a huge form field costs no hashing.
SECRET_MAX_CHARS = 256
#: Ended and expired sessions are kept this long (for a sign-out after expiry), then deleted.
_KEEP_ENDED = timedelta(days=1)

_WRONG = "the name, API key or password is not right, or the user is disabled; ask an admin"


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in console session: who it acts as, its CSRF token, when it ends."""

    id: int
    actor: Actor
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class SignedIn:
    """A new session: the cookie's token (shown only here) and the session itself."""

    token: str
    session: ConsoleSession


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_password(lib: Library, actor: Actor, name: str, password: str) -> dict[str, Any]:
    """Set ``name``'s console password (admins, or the user themself); ends their sessions."""
    if name != actor.name:
        lib.authorize(actor, "users.manage")
    if not PASSWORD_MIN_CHARS <= len(password) <= SECRET_MAX_CHARS:
        raise BadOptionError(
            f"a password is {PASSWORD_MIN_CHARS} to {SECRET_MAX_CHARS} characters long"
        )
    digest = users._hasher.hash(password)  # the same argon2 parameters as API keys
    now = utcnow()
    with lib.writing() as conn:
        row = catalog_users.user_by_name(conn, name)
        if row is None:
            raise NotFoundError(f"no user named {name!r}; the users list shows them")
        if row.disabled:
            raise PermissionDenied(f"user {name!r} is disabled: a password would not work")
        catalog_sessions.set_password(conn, row.id, digest, now)
        ended = catalog_sessions.end_user_sessions(conn, row.id, now)
        audit.append(conn, actor.name, "users.password", {"users": [row.id]},
                     {"name": name, "sessions_ended": ended})  # fmt: skip
    return {"name": name, "password_set": True, "sessions_ended": ended}


def _check_secret(lib: Library, name: str, secret: str) -> tuple[str, bool, int | None]:
    """(method, whether ``secret`` is ``name``'s API key or password, the key's id); one
    argon2 check either way."""
    method = "api_key" if users.key_prefix(secret) is not None else "password"
    with lib.catalog.engine.connect() as conn:
        if method == "api_key":
            found = users.verify_api_key(conn, secret)
            if found is None or found[1] != name:
                return method, False, None
            return method, True, found[0]
        stored = catalog_sessions.password_hash(conn, name)
    if stored is None:
        # An unknown name costs the same hashing as a known one: timing tells nothing.
        with contextlib.suppress(VerificationError, InvalidHashError):
            users._hasher.verify(users._dummy_hash(), secret)
        return method, False, None
    try:
        users._hasher.verify(stored[1], secret)
    except (VerificationError, InvalidHashError):
        return method, False, None
    return method, not stored[2], None


def sign_in(lib: Library, name: str, secret: str, address: str = "") -> SignedIn:
    """Open a session for ``name`` if ``secret`` is their API key or password; audited."""
    name, secret = name.strip(), secret.strip()
    ok = False
    method, key_id = "password", None
    if name and secret and len(name) <= 64 and len(secret) <= SECRET_MAX_CHARS:
        method, ok, key_id = _check_secret(lib, name, secret)
    actor: Actor | None = None
    if ok:
        try:
            actor = lib.actor(name)  # refuses a user disabled meanwhile
        except PermissionDenied:
            ok = False
    now = utcnow()
    details = {"method": method, "address": address or None}
    if not ok or actor is None:
        with lib.writing() as conn:
            # The name as typed (cut to the column's size): the log shows who was tried.
            audit.append(conn, (name or "?")[:64], "session.sign_in_failed", {}, details)
        raise SignInError(_WRONG)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=lib.settings.session_seconds)
    with lib.writing() as conn:
        user_id = catalog_users.user_id(conn, name)
        assert user_id is not None  # lib.actor found them
        catalog_sessions.delete_expired(conn, now - _KEEP_ENDED)
        session_id = catalog_sessions.insert_session(
            conn, _digest(token), user_id, csrf, method, address, now, expires, key_id
        )
        audit.append(conn, name, "session.sign_in", {"sessions": [session_id]},
                     {**details, "expires_at": iso(expires)})  # fmt: skip
    return SignedIn(token, ConsoleSession(session_id, actor, csrf, expires))


def session_for(lib: Library, token: str | None) -> ConsoleSession | None:
    """The open session ``token`` names, or None (unknown, ended, expired, user disabled)."""
    if not token or len(token) > SECRET_MAX_CHARS:
        return None
    with lib.catalog.engine.connect() as conn:
        row = catalog_sessions.session_by_token(conn, _digest(token))
        # A session opened with an API key lasts no longer than the key.
        revoked = row is not None and row.api_key_id is not None and (
            users.active_key_user(conn, row.api_key_id) is None
        )
    if row is None or row.ended_at is not None or row.user_disabled or revoked:
        return None
    expires = as_utc(row.expires_at)
    assert expires is not None
    if expires <= utcnow():
        return None
    try:
        actor = lib.actor(row.user)
    except PermissionDenied:
        return None
    return ConsoleSession(row.id, actor, row.csrf_token, expires)


def sign_out(lib: Library, token: str | None) -> bool:
    """End the session ``token`` names (audited); False when there was none open."""
    if not token or len(token) > SECRET_MAX_CHARS:
        return False
    now = utcnow()
    with lib.writing() as conn:
        row = catalog_sessions.session_by_token(conn, _digest(token))
        if row is None or not catalog_sessions.end_session(conn, row.id, now):
            return False
        audit.append(conn, row.user, "session.sign_out", {"sessions": [row.id]})
    return True


def csrf_matches(session: ConsoleSession, sent: str | None) -> bool:
    """Whether a form's CSRF token is the session's (compared in constant time)."""
    return bool(sent) and hmac.compare_digest(session.csrf_token.encode(), str(sent).encode())
