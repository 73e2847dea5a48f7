"""The catalog's SQL for what those without vault access may see of photos and faces.

A photo is *hidden* when it has a face in the vault and none in the searchable index: to
anyone without vault access it does not exist (its provenance, its sources per site, its place
in a hold). A face in the vault is hidden wherever it appears, in photos that are not.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, and_, select

from faceledger.catalog import schema as t
from faceledger.catalog.placement import PLACE_WHERE, Place

__all__ = ["HIDDEN_PHOTO", "hidden_photo_ids", "vault_face_ids", "photo_sha256s"]

_p, _f = t.photos, t.faces
_has = select(_f.c.id).where(_f.c.photo_id == _p.c.id)

#: Where-clause on ``photos``: the photo has a vault face and no searchable one.
HIDDEN_PHOTO = and_(
    _has.where(PLACE_WHERE[Place.VAULT]).exists(),
    ~_has.where(PLACE_WHERE[Place.SEARCHABLE]).exists(),
)


def hidden_photo_ids(conn: Connection, photo_ids: Iterable[int] | None = None) -> set[int]:
    """Ids of the hidden photos (among ``photo_ids`` when given)."""
    query = select(_p.c.id).where(HIDDEN_PHOTO)
    if photo_ids is not None:
        query = query.where(_p.c.id.in_([int(i) for i in photo_ids]))
    return set(conn.scalars(query))


def vault_face_ids(conn: Connection, face_ids: Iterable[int] | None = None) -> set[int]:
    """Ids of the faces now in the vault (among ``face_ids`` when given)."""
    query = select(_f.c.id).where(PLACE_WHERE[Place.VAULT])
    if face_ids is not None:
        query = query.where(_f.c.id.in_([int(i) for i in face_ids]))
    return set(conn.scalars(query))


def photo_sha256s(conn: Connection, photo_ids: Iterable[int]) -> dict[int, str]:
    """The SHA-256 of each of these photos."""
    ids = [int(i) for i in photo_ids]
    if not ids:
        return {}
    return dict(conn.execute(select(_p.c.id, _p.c.sha256).where(_p.c.id.in_(ids))).all())
