"""Catalog ids named by a caller, checked once for both front ends (CLI and web service)."""

from __future__ import annotations

from faceledger.errors import NotFoundError

__all__ = ["MAX_ID", "checked_id"]

#: Largest id a catalog row can have: SQLite INTEGER and PostgreSQL BIGINT are signed 64-bit.
MAX_ID = 2**63 - 1

#: The catalog's own "missing id" messages, so an id out of range reads like any missing one.
_MISSING = {
    "photo": "no photo with id {id}; `faceledger stats` shows counts",
    "face": "no face with id {id}",
}


def checked_id(kind: str, value: int) -> int:
    """``value`` if a ``kind`` (e.g. "photo", "face", "opt-out", "hold") could have it;
    NotFoundError otherwise.

    A database driver cannot bind an integer outside 64 bits (SQLite raises OverflowError), and
    no row has a negative id; either way the answer is the one a missing id gets.
    """
    if not 0 <= value <= MAX_ID:
        message = _MISSING.get(kind, "no {kind} with id {id}")
        raise NotFoundError(message.format(kind=kind, id=value))
    return value
