"""Legal holds: what they cover, and releasing them (which carries out deferred destruction).

A hold's scope is evaluated when destruction is asked for, not when the hold is made: a
``jurisdiction=US-IL`` hold also covers photos tied to Illinois after it was created.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from faceledger import audit
from faceledger.app.governance import vault
from faceledger.catalog import holds as catalog_holds
from faceledger.catalog import optouts as catalog_optouts
from faceledger.catalog import visibility as catalog_visibility
from faceledger.catalog.holds import held_photo_ids
from faceledger.clock import iso, utcnow
from faceledger.errors import BadOptionError, ConflictError, NotFoundError
from faceledger.photo_lists import read_photo_ids

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = ["parse_scope", "create_hold", "list_holds", "release_hold", "held_photo_ids",
           "is_held"]  # fmt: skip

SCOPE_HELP = "jurisdiction=REGION, optout=ID, photos=FILE (one photo id a line) or all"


def parse_scope(scope: str) -> tuple[str, Any]:
    """A hold scope as (kind, value); photos=FILE is read into a list of photo ids now."""
    kind, sep, value = scope.partition("=")
    kind, value = kind.strip().lower(), value.strip()
    if kind == "all" and not sep:
        return "all", None
    if kind == "jurisdiction" and value:
        country, _, sub = value.partition("-")
        if len(country) != 2 or not country.isalpha() or (sub and not 1 <= len(sub) <= 3):
            raise BadOptionError(f"{value!r} is not a region code; write e.g. US-IL or FR")
        return kind, value.upper()
    if kind == "optout" and value.isdigit():
        return kind, int(value)
    if kind == "photos" and value:
        ids = read_photo_ids(Path(value))
        if not ids:
            raise BadOptionError(f"the photo list {value} holds no photo ids")
        return kind, sorted(set(ids))
    raise BadOptionError(f"cannot read the hold scope {scope!r}; give {SCOPE_HELP}")


def create_hold(lib: Library, actor: Actor, matter: str, scope: str) -> dict[str, Any]:
    """Place a legal hold for ``matter`` over ``scope``."""
    lib.authorize(actor, "hold.manage")
    if not matter.strip():
        raise BadOptionError("a hold needs the matter it is for, e.g. 1:21-cv-00135")
    kind, value = parse_scope(scope)
    full = vault.may_read_vault(lib, actor)  # the count shown (and audited) hides the vault
    with lib.writing() as conn:
        if kind == "optout" and not catalog_optouts.exists(conn, value):
            raise NotFoundError(f"no opt-out with id {value}")
        now = utcnow()
        hold_id = catalog_holds.insert_hold(conn, matter, kind, value, actor.name, now)
        photos = _visible(full, conn, catalog_holds.scope_photos(conn, kind, value))
        audit.append(conn, actor.name, "hold.create", {"holds": [hold_id]},
                     {"matter": matter, "scope": kind, "value": value,
                      "photos_now": len(photos)})  # fmt: skip
    return {"hold": hold_id, "matter": matter, "scope": kind, "value": value,
            "photos_held_now": len(photos), "created_at": iso(now)}  # fmt: skip


def list_holds(lib: Library, actor: Actor, include_released: bool = True) -> list[dict[str, Any]]:
    """Every hold, newest first, with how many photos it covers now."""
    lib.authorize(actor, "hold.list")
    full = vault.may_read_vault(lib, actor)
    with lib.catalog.engine.connect() as conn:
        hidden = set() if full else catalog_visibility.hidden_photo_ids(conn)
        out = []
        for r in catalog_holds.holds(conn, include_released):
            active = r.released_at is None
            out.append({
                "hold": r.id, "matter": r.matter, "scope": r.scope_kind,
                "value": r.scope_value, "created_by": r.created_by,
                "created_at": iso(r.created_at), "released_by": r.released_by,
                "released_at": iso(r.released_at), "active": active,
                "photos_held": len(catalog_holds.scope_photos(conn, r.scope_kind, r.scope_value)
                                   - hidden) if active else 0,
            })  # fmt: skip
        return out


def _visible(full: bool, conn: Connection, photos: set[int]) -> set[int]:
    """``photos`` less those hidden in the vault, unless the actor may read it (``full``)."""
    if full:
        return photos
    return photos - catalog_visibility.hidden_photo_ids(conn, photos)


def release_hold(lib: Library, actor: Actor, hold_id: int) -> dict[str, Any]:
    """Release a hold, then carry out the deferred destruction it no longer blocks."""
    from faceledger.app.governance.destruction import carry_out_deferred

    lib.authorize(actor, "hold.manage")
    with lib.writing() as conn:
        row = catalog_holds.hold(conn, hold_id)
        if row is None:
            raise NotFoundError(f"no legal hold with id {hold_id}; `faceledger hold list`")
        if row.released_at is not None:
            raise ConflictError(f"hold {hold_id} was already released on {iso(row.released_at)}")
        catalog_holds.release(conn, hold_id, actor.name, utcnow())
        audit.append(conn, actor.name, "hold.release", {"holds": [hold_id]},
                     {"matter": row.matter})  # fmt: skip
    done = carry_out_deferred(lib, actor)
    return {"hold": hold_id, "matter": row.matter, "released": True, "deferred": done}


def is_held(conn: Connection, photo_id: int) -> bool:
    """Whether an active legal hold covers this photo (and so all of its faces)."""
    return int(photo_id) in held_photo_ids(conn)
