"""Who is calling: an ``Authorization: Bearer <api key>`` header resolved to a library user.

Checking a key costs an argon2 verification (about 0.3 s of CPU with the default parameters), so
:class:`KeyAuthenticator` makes sure callers cannot spend that CPU at will:

- a verified key is cached (by the SHA-256 of the whole key, for ``key_cache_seconds``); a hit
  costs one lookup by primary key that confirms the key is not revoked and its user not disabled,
  so revocation takes effect on the next request, cached or not;
- before argon2 runs, a token is taken from three buckets: the client address's, the key
  prefix's (``auth_failures_per_minute`` each) and the whole service's (ten times that); a key
  that verifies gives its tokens back, so only failures count. With any bucket empty the answer is
  429 with ``Retry-After`` and no hashing at all;
- a well-formed key with an unknown prefix costs the same argon2 verification as a known one
  (against a dummy hash) and draws on the same buckets, so neither time nor a 429 tells a caller
  whether a prefix exists.

The address is the TCP peer's: behind a reverse proxy all clients share the proxy's address and
its bucket (the prefix and service buckets still hold).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials

from faceledger.app.governance.users import active_key_user, key_prefix, verify_api_key
from faceledger.app.library import Actor, Library
from faceledger.config import Settings
from faceledger.service.ratelimit import BucketKey, TokenBuckets, retry_after

__all__ = ["actor_for_credentials", "unauthorized", "KeyAuthenticator", "KEY_CACHE_SIZE"]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
#: Most verified keys held in the cache (least recently used dropped first).
KEY_CACHE_SIZE = 1024
#: The whole service's failure budget, as a multiple of the per-address one.
SERVICE_FAILURES_FACTOR = 10

_NOT_VALID = (
    "the API key is not valid: it is mistyped, revoked, or its user is disabled; "
    "ask an admin for a new one (`faceledger users key NAME`)"
)


def unauthorized(message: str) -> HTTPException:
    """A 401 answer that tells the client how to authenticate."""
    return HTTPException(status_code=401, detail=message, headers=_CHALLENGE)


class KeyAuthenticator:
    """API keys to user names, with a cache of verified keys and limits on failed checks."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        per_minute = settings.auth_failures_per_minute
        self.ttl = settings.key_cache_seconds
        self.clock = clock
        self.buckets = TokenBuckets(
            {
                "address": per_minute,
                "prefix": per_minute,
                "service": per_minute * SERVICE_FAILURES_FACTOR,
            },
            period=60.0,
            clock=lambda: self.clock(),
        )
        self._lock = threading.Lock()
        # sha256(key) -> (key id, user name, expiry). A fast hash is enough here: the key is a
        # 256-bit random secret, and the digest never leaves this process.
        self._cache: OrderedDict[bytes, tuple[int, str, float]] = OrderedDict()

    def _cached(self, digest: bytes) -> int | None:
        with self._lock:
            entry = self._cache.get(digest)
            if entry is None:
                return None
            if entry[2] <= self.clock():
                del self._cache[digest]
                return None
            self._cache.move_to_end(digest)
            return entry[0]

    def _remember(self, digest: bytes, key_id: int, name: str) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._cache[digest] = (key_id, name, self.clock() + self.ttl)
            self._cache.move_to_end(digest)
            while len(self._cache) > KEY_CACHE_SIZE:
                self._cache.popitem(last=False)

    def forget(self, digest: bytes) -> None:
        """Drop one cached key (revoked, or its user disabled)."""
        with self._lock:
            self._cache.pop(digest, None)

    def user_for(self, lib: Library, key: str, address: str) -> str:
        """The enabled user whose key this is; 401 when it is not valid, 429 over the limits."""
        prefix = key_prefix(key)
        if prefix is None:
            raise unauthorized(_NOT_VALID)  # malformed: no database, no hashing
        digest = hashlib.sha256(key.encode()).digest()
        key_id = self._cached(digest)
        if key_id is not None:
            with lib.catalog.engine.connect() as conn:
                name = active_key_user(conn, key_id)
            if name is None:
                self.forget(digest)
                raise unauthorized(_NOT_VALID)
            return name
        buckets: list[BucketKey] = [("address", address), ("prefix", prefix), ("service", "")]
        wait = self.buckets.take(buckets)
        if wait:
            seconds = retry_after(wait)
            raise HTTPException(
                status_code=429,
                detail="too many API key checks failed recently from this address or for this "
                f"key; retry in {seconds} s with a valid key (`faceledger users key NAME`)",
                headers={"Retry-After": seconds},
            )
        with lib.catalog.engine.connect() as conn:
            found = verify_api_key(conn, key)
        if found is None:
            raise unauthorized(_NOT_VALID)
        self.buckets.give_back(buckets)
        self._remember(digest, *found)
        return found[1]


def actor_for_credentials(
    lib: Library,
    credentials: HTTPAuthorizationCredentials | None,
    authenticator: KeyAuthenticator,
    address: str,
) -> Actor:
    """The enabled user whose API key was sent; 401 when there is none or it is not valid."""
    if credentials is None or not credentials.credentials:
        raise unauthorized(
            "send an API key as 'Authorization: Bearer <key>'; "
            "an admin issues one with `faceledger users key NAME`"
        )
    name = authenticator.user_for(lib, credentials.credentials, address)
    # The library refuses a user disabled since the key check, and gives the role.
    return lib.actor(name)
