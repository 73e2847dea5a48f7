"""Bounds on what one request, and all requests together, may make the service hold or do.

A search decodes every probe into memory and runs the face model over it, so its cost follows
the pixels it decodes and the bytes it is sent, not the number of requests. Three bounds keep the
service's memory at about ``service_max_concurrent x (request_max_bytes + 3 x request_max_pixels)``
bytes whatever clients send:

- :class:`HeavySlots`: at most ``service_max_concurrent`` searches/uploads at once; one more is
  answered 503 with ``Retry-After`` at once (waiting would tie up a worker thread per waiter);
- ``request_max_bytes``: the whole body, checked as it arrives (see ``uploads.read_multipart``);
- :func:`check_pixel_budget`: the pixels every probe's header declares, summed before any probe
  is decoded (a 300 KB PNG can declare 10000 x 10000 pixels and take seconds and gigabytes).
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterable

from fastapi import HTTPException
from PIL import Image, UnidentifiedImageError

from faceledger.errors import ImageTooLargeError

__all__ = [
    "RequestTooLargeError",
    "HeavySlots",
    "BUSY_RETRY_AFTER_S",
    "declared_pixels",
    "check_pixel_budget",
]

#: Seconds a client is told to wait when every heavy slot is taken (a search takes about this).
BUSY_RETRY_AFTER_S = 2


class RequestTooLargeError(ImageTooLargeError):
    """A request as a whole is over a configured limit (bytes, or pixels of all its probes)."""


class HeavySlots:
    """A bounded count of requests doing heavy work; a request over the cap is refused, not queued.

    ``threading.BoundedSemaphore`` because slots are taken in the event loop and may be given
    back from a worker thread; ``acquire(blocking=False)`` never blocks either.
    """

    def __init__(self, size: int):
        self.size = size
        self._semaphore = threading.BoundedSemaphore(size)

    def take(self) -> None:
        """Take a slot, or raise a 503 that says when to retry."""
        if not self._semaphore.acquire(blocking=False):
            raise HTTPException(
                status_code=503,
                detail=f"the service is busy: {self.size} searches are running, the most it "
                f"runs at once (FACELEDGER_SERVICE_MAX_CONCURRENT); retry in "
                f"{BUSY_RETRY_AFTER_S} s",
                headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
            )

    def give_back(self) -> None:
        """Return a slot taken with :meth:`take`."""
        self._semaphore.release()


def declared_pixels(data: bytes) -> int | None:
    """The pixels (width x height) an image's header declares, read without decoding any pixel.

    None when Pillow cannot read a header: the search itself then reports the probe as not an
    image, and refusing it costs nothing. Over twice ``PIL.Image.MAX_IMAGE_PIXELS`` Pillow will
    not even say the size: that counts as one pixel over the limit.
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns on large sizes in open(); the budget decides here, not a warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                return width * height
    except Image.DecompressionBombError:
        return 2 * (Image.MAX_IMAGE_PIXELS or 0) + 1
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        # What Pillow's format plugins raise on a malformed header.
        return None


def check_pixel_budget(probes: Iterable[tuple[str, bytes]], budget: int) -> int:
    """The decoded pixels of all ``probes`` together; RequestTooLargeError over ``budget``.

    Checked before any probe is decoded; the message names the probe that takes the total over.
    """
    total = 0
    for name, data in probes:
        pixels = declared_pixels(data) or 0
        total += pixels
        if total > budget:
            raise RequestTooLargeError(
                f"{name} declares {pixels:,} pixels, which takes this request to {total:,}: over "
                f"the budget of {budget:,} decoded pixels for all probes of one request "
                "(FACELEDGER_REQUEST_MAX_PIXELS); send fewer or smaller probes"
            )
    return total
