"""Catalog ids named by a caller, checked once for both front ends (CLI and web service)."""

from __future__ import annotations

from faceledger.errors import NotFoundError

__all__ = ["MAX_ID", "checked_id", "missing"]

#: Largest id a catalog row can have: SQLite INTEGER and PostgreSQL BIGINT are signed 64-bit.
MAX_ID = 2**63 - 1



def missing(kind: str, value: int) -> NotFoundError:
    """The one answer for an id that is not there: missing, out of range, or hidden (a photo or
    face in the vault, to anyone without vault access) all read alike."""
    return NotFoundError(f"no {kind} with id {value}")


def checked_id(kind: str, value: int) -> int:
    """``value`` if a ``kind`` (e.g. "photo", "face", "opt-out", "hold") could have it;
    NotFoundError otherwise.

    A database driver cannot bind an integer outside 64 bits (SQLite raises OverflowError), and
    no row has a negative id; either way the answer is the one a missing id gets.
    """
    if not 0 <= value <= MAX_ID:
        raise missing(kind, value)
    return value
