"""Face images for the console: crops cut on the fly from stored photos, and probe previews.

A crop is made in memory from the stored photo each time it is asked for and never written
anywhere; only roles that may see the face get it (a blocked face only for an attested
custodian), and every crop served is an audit entry. A probe preview is the caller's own upload,
downscaled in memory so the page can draw the found faces' boxes on it.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from faceledger import audit
from faceledger.app.governance import vault
from faceledger.app.library import Actor, Library
from faceledger.catalog import images as catalog_images
from faceledger.config import Settings
from faceledger.errors import InputError, NotFoundError
from faceledger.ingest import decode_image

__all__ = ["face_crop", "probe_preview", "Preview", "CROP_MAX_SIDE"]

#: Long side of a served crop (px): enough to recognise a face, no more.
CROP_MAX_SIDE = 200
#: Margin around the face box, as a fraction of the box's size.
CROP_MARGIN = 0.3
#: Long side of a probe preview (px).
PREVIEW_MAX_SIDE = 720


def _jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _crop(rgb: np.ndarray, box: tuple[int, int, int, int]) -> Image.Image:
    top, right, bottom, left = box
    height, width = rgb.shape[:2]
    pad_y, pad_x = int((bottom - top) * CROP_MARGIN), int((right - left) * CROP_MARGIN)
    y0, y1 = max(0, top - pad_y), min(height, bottom + pad_y)
    x0, x1 = max(0, left - pad_x), min(width, right + pad_x)
    if y1 <= y0 or x1 <= x0:
        raise NotFoundError("the face's box lies outside its photo")
    image = Image.fromarray(rgb[y0:y1, x0:x1])
    image.thumbnail((CROP_MAX_SIDE, CROP_MAX_SIDE))
    return image


def face_crop(lib: Library, actor: Actor, face_id: int) -> bytes:
    """A JPEG crop of stored face ``face_id`` around its box, made in memory; audited.

    A blocked face is "not found" for everyone without vault access (a custodian with a
    current attestation), exactly as a missing one; a vault read is audited too.
    """
    lib.authorize(actor, "show")
    with lib.catalog.engine.connect() as conn:
        source = catalog_images.face_image_source(conn, face_id)
    if source is None or (source.blocked and not vault.may_read_vault(lib, actor)):
        raise NotFoundError(f"no face with id {face_id}")
    if source.blocked:
        vault.require_vault_access(lib, actor, [face_id])
    path = lib.photo_file(source.stored_path)
    if path is None or not path.is_file():
        raise NotFoundError(f"face {face_id}'s photo is not stored in the library")
    try:
        rgb, _ = decode_image(path.read_bytes(), "", lib.settings.max_file_bytes,
                              lib.settings.max_pixels, capture_noise=False)  # fmt: skip
    except InputError as exc:
        raise NotFoundError(f"face {face_id}'s stored photo cannot be read: {exc}") from exc
    data = _jpeg(_crop(rgb, source.box))
    with lib.writing() as conn:
        audit.append(conn, actor.name, "image.face",
                     {"faces": [face_id], "photos": [source.photo_id]},
                     {"kind": "crop", "bytes": len(data)})  # fmt: skip
    return data


@dataclass(frozen=True)
class Preview:
    """A probe's downscaled JPEG as a data URI, and the size of the upright image it shows."""

    data_uri: str
    width: int
    height: int


def probe_preview(settings: Settings, data: bytes) -> Preview | None:
    """The probe (upright, as faces were found in it) as a small JPEG data URI; None if unreadable.

    In memory only: the preview goes back to the browser that sent the probe, and nowhere else.
    """
    try:
        rgb, facts = decode_image(data, "", settings.max_file_bytes, settings.max_pixels,
                                  capture_noise=False)  # fmt: skip
    except InputError:
        return None
    image = Image.fromarray(rgb)
    image.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
    encoded = base64.b64encode(_jpeg(image, 80)).decode("ascii")
    return Preview(f"data:image/jpeg;base64,{encoded}", facts.width, facts.height)
