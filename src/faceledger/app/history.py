"""Faithful history: where a face was at any past time (the change log), and what a user's
role, customer type and region were at any past time (``user_history``).

The pure helpers here (:func:`periods`, :func:`place_at`, :func:`user_at`) turn the catalog's
rows into answers; :func:`face_history` is the use case behind ``show face ID --history``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from faceledger import audit
from faceledger.app.governance.vault import may_read_vault
from faceledger.catalog import history as catalog_history
from faceledger.clock import iso
from faceledger.errors import NotFoundError
from faceledger.ids import checked_id

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = ["Move", "periods", "place_at", "user_at", "face_history"]

#: One change-log row of a face: (seq, at, from place, to place).
Move = tuple[int, datetime, str, str]


def periods(moves: Sequence[Move]) -> list[dict[str, Any]]:
    """The face's places as consecutive periods ``{"place", "from", "until", "seq"}``;
    ``until`` is None for the place it is in now, ``seq`` the move that put it there."""
    out: list[dict[str, Any]] = []
    for seq, at, _before, after in moves:
        if out:
            out[-1]["until"] = at
        out.append({"place": after, "from": at, "until": None, "seq": seq})
    return out


def place_at(moves: Sequence[Move], when: datetime) -> str | None:
    """Where the face was at ``when`` (None: it was not stored yet)."""
    place = None
    for _seq, at, _before, after in moves:
        if at > when:
            break
        place = after
    return place


def user_at(rows: Sequence[dict[str, Any]], name: str, when: datetime) -> dict[str, Any] | None:
    """The user_history row in force for ``name`` at ``when`` (None: no such user then).

    Rows are in seq order. A time before a user's first row takes that first row when it is the
    backfill (the catalog knew no earlier values), marked ``basis: backfill``.
    """
    mine = [r for r in rows if r["name"] == name]
    if not mine:
        return None
    current = None
    for row in mine:
        if row["at"] > when:
            break
        current = row
    if current is None:
        first = mine[0]
        if first["change"] != "backfill":
            return None
        current = first
    return {**current, "basis": "backfill" if current["change"] == "backfill" else "recorded"}


def face_history(lib: Library, actor: Actor, face_id: int) -> dict[str, Any]:
    """A face (if still stored) and every move of it, with the periods it spent in each place.

    Non-custodians get 'not found' for a face in the vault, or destroyed from it.
    """
    lib.authorize(actor, "show")
    face_id = checked_id("face", face_id)
    with lib.catalog.engine.connect() as conn:
        moves = catalog_history.face_moves(conn, [face_id]).get(face_id, [])
    if not moves:
        raise NotFoundError(f"no face with id {face_id}")
    spans = periods(moves)
    now = spans[-1]["place"]
    vault = now == "vault" or (now == "destroyed" and any(s["place"] == "vault" for s in spans))
    if vault and not may_read_vault(lib, actor):  # as missing to all without vault access
        raise NotFoundError(f"no face with id {face_id}")
    if vault:
        lib.require_vault_access(actor)
    face = lib.catalog.face(face_id) if now != "destroyed" else None
    with lib.catalog.begin() as conn:
        audit.append(conn, actor.name, "show.face", {"faces": [face_id]}, {"history": True})
    return {
        "face_id": face_id,
        "face": face,
        "place": now,
        "moves": [{"seq": s, "at": iso(a), "from": b, "to": t} for s, a, b, t in moves],
        "periods": [{**p, "from": iso(p["from"]), "until": iso(p["until"])} for p in spans],
    }
