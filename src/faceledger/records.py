"""Typed records that cross package lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

__all__ = [
    "Box",
    "DetectedFace",
    "Provenance",
    "GeoPoint",
    "PhotoFacts",
    "Jurisdiction",
    "IndexChanges",
    "AuditFilter",
    "EVERY_AUDIT_ENTRY",
    "OnProgress",
]

#: What a long operation tells as it goes: (items done so far, items in all). The CLI's bars
#: take it (``cli.common.progress_bars``); the library's folds and rebuilds call it.
OnProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Box:
    """A face rectangle in original-image pixels (dlib order: top, right, bottom, left)."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self.right - self.left

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self.bottom - self.top


@dataclass(frozen=True)
class DetectedFace:
    """One face found in an image: where, how sure, and its 128-d vector."""

    box: Box
    landmarks: tuple[tuple[int, int], ...]
    score: float
    vector: np.ndarray
    model: str
    model_version: str


@dataclass(frozen=True)
class GeoPoint:
    """A GPS position in decimal degrees (WGS 84)."""

    lat: float
    lon: float


@dataclass(frozen=True)
class Provenance:
    """Where one copy of a photo came from."""

    kind: str  # folder | manifest | warc
    locator: str  # path, or WARC file + record offset
    source_url: str | None = None
    page_url: str | None = None
    website: str | None = None
    retrieved_at: datetime | None = None
    uploader_region: str | None = None
    caption: str | None = None
    subject_ref: str | None = None  # the consent subject this copy is collected under


@dataclass(frozen=True)
class PhotoFacts:
    """What the file itself says: hash, size, format, EXIF time and GPS."""

    sha256: str
    byte_size: int
    width: int
    height: int
    format: str
    taken_at: datetime | None = None
    gps: GeoPoint | None = None
    #: Why the file's GPS tags gave no position (e.g. no hemisphere reference); None if none.
    gps_note: str | None = None
    #: What the decoder printed or warned while reading this file, one message each.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Jurisdiction:
    """A region a photo is tied to, and the signal that tied it."""

    region: str  # ISO 3166-1 alpha-2 or ISO 3166-2, e.g. "US-IL"
    signal: str  # gps | uploader | publisher | subject


@dataclass(frozen=True)
class AuditFilter:
    """Which audit entries a read takes: at or after ``since``, at or before ``until``, by
    ``actor``, of ``action``; each None means no limit (the CLI, the console and the API
    build one from their options; the catalog turns it into SQL)."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None

    def as_details(self) -> dict[str, str | None]:
        """The filter as an audit entry's details record it (times in ISO 8601)."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "actor": self.actor,
            "action": self.action,
        }


#: The filter with no limit: every audit entry.
EVERY_AUDIT_ENTRY = AuditFilter()


@dataclass(frozen=True)
class IndexChanges:
    """What a vector index must do to reflect the index change log up to ``upto``."""

    upto: int  # the log seq these changes bring the index to
    add_ids: np.ndarray  # int64: faces now in the index's place (added or replaced)
    add_vectors: np.ndarray  # float32, len(add_ids) x 128
    remove_ids: np.ndarray  # int64: faces that left the index's place


@dataclass(frozen=True)
class PlaceIds:
    """Every face id now in a place, and the log seq that state reflects (a rebuild's start)."""

    upto: int  # the log head read before the ids: later changes are replayed after it
    ids: np.ndarray  # int64, ascending
