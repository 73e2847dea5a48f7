"""Decode image bytes safely: size and pixel limits, EXIF orientation, first frame only."""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import struct
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceledger.errors import DecodeError, ImageTooLargeError, InputError
from faceledger.ingest.exif import read_gps_with_note, read_taken_at
from faceledger.ingest.noise import captured_noise
from faceledger.records import PhotoFacts

__all__ = ["Digests", "digests", "decode_image", "decode_for_faces", "DecodedPhoto", "FORMATS"]

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
    data: bytes, sha256: str, max_bytes: int, max_pixels: int, *, capture_noise: bool = True
) -> tuple[np.ndarray, PhotoFacts]:
    """Decode ``data`` into an upright RGB array and the facts the file states about itself.

    Raises ImageTooLargeError over the limits (checked from the header, before pixels are
    decoded, so a decompression bomb never allocates) and DecodeError for anything unreadable.
    What the decoder prints or warns (libtiff on file descriptor 2, Pillow's warnings) is
    captured, not shown: it comes back in ``PhotoFacts.warnings``, or, when decoding fails, at
    the end of the error's message and in its ``warnings`` attribute. ``capture_noise=False``
    skips the capture (and its process-wide lock).
    """
    if not data:
        raise DecodeError("the file is empty")
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"{len(data):,} bytes is over the limit of {max_bytes:,} "
            "(raise FACELEDGER_MAX_FILE_BYTES to accept it)"
        )
    rgb, facts, _ = _decode_noting(data, sha256, max_pixels, None, capture_noise)
    return rgb, facts


def _decode_noting(
    data: bytes, sha256: str, max_pixels: int, draft_side: int | None, capture_noise: bool = True
) -> tuple[np.ndarray, PhotoFacts, bool]:
    """_decode with the decoder's noise captured into the facts or the error."""
    noise: list[str] = []
    try:
        with captured_noise() if capture_noise else contextlib.nullcontext(noise) as noise:
            rgb, facts, reduced = _decode(data, sha256, max_pixels, draft_side)
    except InputError as exc:
        exc.warnings = tuple(noise)  # type: ignore[attr-defined]
        if noise and exc.args:
            exc.args = (f"{exc.args[0]} (the decoder said: {'; '.join(noise)[:300]})",)
        raise
    return rgb, replace(facts, warnings=tuple(noise)), reduced


@dataclass
class DecodedPhoto:
    """A photo decoded for face finding: a copy to detect on, the full pixels when needed."""

    facts: PhotoFacts
    #: Upright RGB to detect on: the full photo, or a DCT-downscaled copy (JPEG draft mode).
    small: np.ndarray
    data: bytes = field(repr=False)
    max_pixels: int = 0
    _full: np.ndarray | None = field(default=None, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the upright photo at full resolution."""
        return self.facts.height, self.facts.width

    def full(self) -> np.ndarray:
        """The upright RGB photo at full resolution (decoded now if only a copy was)."""
        if self._full is None:
            rgb, facts, _ = _decode_noting(self.data, self.facts.sha256, self.max_pixels, None)
            if rgb.shape[:2] != self.size:
                raise DecodeError("the image decodes to another size at full resolution")
            said = self.facts.warnings  # what the first decode said is not said twice
            extra = tuple(w for w in facts.warnings if w not in said)
            self.facts = replace(self.facts, warnings=said + extra)
            self._full = rgb
        return self._full


def decode_for_faces(
    data: bytes, sha256: str, max_bytes: int, max_pixels: int, detect_max_side: int
) -> DecodedPhoto:
    """Decode ``data`` for face detection at ``detect_max_side`` px, limits as decode_image's.

    A JPEG much larger than that is decoded in draft mode (libjpeg's DCT-domain downscale by
    1/2, 1/4 or 1/8), which costs a fraction of a full decode; the full pixels are decoded only
    if :meth:`DecodedPhoto.full` is called (when faces were found). Anything else is decoded
    once, and that copy serves both.
    """
    if not data:
        raise DecodeError("the file is empty")
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"{len(data):,} bytes is over the limit of {max_bytes:,} "
            "(raise FACELEDGER_MAX_FILE_BYTES to accept it)"
        )
    rgb, facts, reduced = _decode_noting(data, sha256, max_pixels, detect_max_side)
    return DecodedPhoto(facts, rgb, data, max_pixels, None if reduced else rgb)


#: EXIF orientations that turn the photo a quarter (width and height swap).
_QUARTER_TURNS = {5, 6, 7, 8}


def _decode(
    data: bytes, sha256: str, max_pixels: int, draft_side: int | None = None
) -> tuple[np.ndarray, PhotoFacts, bool]:
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
            quarter = exif.get(0x0112) in _QUARTER_TURNS
            full_w, full_h = (height, width) if quarter else (width, height)
            reduced = False
            if draft_side and image.format in ("JPEG", "MPO") and max(width, height) > draft_side:
                factor = draft_side / max(width, height)
                # Pillow picks the smallest DCT scale still at least this size (rounded down, so
                # that a 2048x1507 photo halves: its long side stays at the detection size).
                request = (max(1, math.floor(width * factor)), max(1, math.floor(height * factor)))
                image.draft("RGB", request)
                reduced = image.size != (width, height)
            upright = ImageOps.exif_transpose(image) or image
            rgb = np.asarray(upright.convert("RGB"))
            if not reduced and rgb.shape[:2] != (full_h, full_w):  # an orientation Pillow ignored
                full_w, full_h = int(rgb.shape[1]), int(rgb.shape[0])
            taken_at = read_taken_at(exif)
            gps, gps_note = read_gps_with_note(exif)
    except (ImageTooLargeError, DecodeError):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"over the limit of {max_pixels:,} pixels (raise FACELEDGER_MAX_PIXELS to accept "
            f"it); Pillow says: {exc}"
        ) from exc
    except UnidentifiedImageError as exc:
        raise DecodeError("not a recognised image format (wrong file type?)") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, struct.error) as exc:
        # struct.error: Pillow's TIFF/EXIF reader on a cut IFD (found by tests/test_fuzz.py)
        raise DecodeError(f"cannot decode the image: {exc}") from exc
    facts = PhotoFacts(
        sha256=sha256,
        byte_size=len(data),
        width=full_w,
        height=full_h,
        format=str(image.format),
        taken_at=taken_at,
        gps=gps,
        gps_note=gps_note,
    )
    return rgb, facts, reduced
