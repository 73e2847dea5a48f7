"""The catalog's SQL for serving face images: where a face's photo file is, and its box."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from faceledger.catalog import schema as t

__all__ = ["FaceImageSource", "face_image_source"]


@dataclass(frozen=True)
class FaceImageSource:
    """What a crop of one face is cut from."""

    face_id: int
    photo_id: int
    stored_path: str | None
    box: tuple[int, int, int, int]  # top, right, bottom, left
    blocked: bool


def face_image_source(conn: Connection, face_id: int) -> FaceImageSource | None:
    """The active face ``face_id`` of an active photo, with its photo's stored file."""
    f, p = t.faces, t.photos
    row = conn.execute(
        select(f.c.id, f.c.photo_id, p.c.stored_path, f.c.box_top, f.c.box_right,
               f.c.box_bottom, f.c.box_left, f.c.blocked)
        .select_from(f.join(p, f.c.photo_id == p.c.id))
        .where(f.c.id == face_id, f.c.status == "active", p.c.status == "active")
    ).first()  # fmt: skip
    if row is None:
        return None
    return FaceImageSource(row[0], row[1], row[2], (row[3], row[4], row[5], row[6]),
                           bool(row[7]))  # fmt: skip
