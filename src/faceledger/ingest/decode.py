"""Decode image bytes safely: size and pixel limits, EXIF orientation, first frame only."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceledger.errors import DecodeError, ImageTooLargeError
from faceledger.ingest.exif import read_gps, read_taken_at
from faceledger.records import PhotoFacts

__all__ = ["Digests", "digests", "decode_image", "FORMATS"]

#: Pillow format names accepted, and the file extension each is stored under.
FORMATS = {
    "JPEG": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "BMP": "bmp",
    "TIFF": "tif",
    "MPO": "jpg",
}


@dataclass(frozen=True)
class Digests:
    """Content hashes of one file (SHA-256 identifies a photo; MD5/SHA-1 are for load files)."""

    sha256: str
    md5: str
    sha1: str


def digests(data: bytes) -> Digests:
    """SHA-256, MD5 and SHA-1 of ``data``."""
    return Digests(
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data).hexdigest(),
        hashlib.sha1(data).hexdigest(),
    )


def decode_image(
    data: bytes, sha256: str, max_bytes: int, max_pixels: int
) -> tuple[np.ndarray, PhotoFacts]:
    """Decode ``data`` into an upright RGB array and the facts the file states about itself.

    Raises ImageTooLargeError over the limits (checked from the header, before pixels are
    decoded, so a decompression bomb never allocates) and DecodeError for anything unreadable.
    """
    if not data:
        raise DecodeError("the file is empty")
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"{len(data):,} bytes is over the limit of {max_bytes:,} "
            "(raise FACELEDGER_MAX_FILE_BYTES to accept it)"
        )
    # Pillow refuses at twice this; our own check below refuses at the limit itself.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check warns at half its limit; ours is explicit below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width <= 0 or height <= 0:
                raise DecodeError(f"the image claims a size of {width}x{height}")
            if width * height > max_pixels:
                raise ImageTooLargeError(
                    f"{width}x{height} = {width * height:,} pixels is over the limit of "
                    f"{max_pixels:,} (raise FACELEDGER_MAX_PIXELS to accept it)"
                )
            if image.format not in FORMATS:
                raise DecodeError(f"{image.format} images are not supported")
            image.seek(0)  # GIF/TIFF/MPO: the first frame is the photo
            exif = image.getexif()
            upright = ImageOps.exif_transpose(image) or image
            rgb = np.asarray(upright.convert("RGB"))
    except (ImageTooLargeError, DecodeError):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"over the limit of {max_pixels:,} pixels (raise FACELEDGER_MAX_PIXELS to accept "
            f"it); Pillow says: {exc}"
        ) from exc
    except UnidentifiedImageError as exc:
        raise DecodeError("not a recognised image format (wrong file type?)") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise DecodeError(f"cannot decode the image: {exc}") from exc
    facts = PhotoFacts(
        sha256=sha256,
        byte_size=len(data),
        width=int(rgb.shape[1]),
        height=int(rgb.shape[0]),
        format=str(image.format),
        taken_at=read_taken_at(exif),
        gps=read_gps(exif),
    )
    return rgb, facts
