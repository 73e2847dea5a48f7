"""Who is calling: an ``Authorization: Bearer <api key>`` header resolved to a library user."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials

from faceledger.governance.users import user_for_api_key
from faceledger.library import Actor, Library

__all__ = ["actor_for_credentials", "unauthorized"]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def unauthorized(message: str) -> HTTPException:
    """A 401 answer that tells the client how to authenticate."""
    return HTTPException(status_code=401, detail=message, headers=_CHALLENGE)


def actor_for_credentials(lib: Library, credentials: HTTPAuthorizationCredentials | None) -> Actor:
    """The enabled user whose API key was sent; 401 when there is none or it is not valid."""
    if credentials is None or not credentials.credentials:
        raise unauthorized(
            "send an API key as 'Authorization: Bearer <key>'; "
            "an admin issues one with `faceledger users key NAME`"
        )
    with lib.catalog.engine.connect() as conn:
        name = user_for_api_key(conn, credentials.credentials)
    if name is None:
        raise unauthorized(
            "the API key is not valid: it is mistyped, revoked, or its user is disabled; "
            "ask an admin for a new one (`faceledger users key NAME`)"
        )
    # The library refuses a user disabled since the key check, and gives the role.
    return lib.actor(name)
