"""Probe images (search, locate, opt-out): decoded and embedded in memory only, never stored.

One path for every probe: decode with the library's limits, find the faces, keep the ones the
operation asks for (all of them, exactly one, or the largest), and return their vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from faceledger.config import Settings
from faceledger.errors import InputError
from faceledger.faces import FaceBackend
from faceledger.ingest import decode_image
from faceledger.records import DetectedFace

__all__ = ["Probe", "ProbeFaces", "Wanted", "read_probe"]


@dataclass(frozen=True)
class Probe:
    """A probe image held in memory: a name for the report, and its bytes."""

    name: str
    data: bytes = field(repr=False)


class Wanted(StrEnum):
    """Which of a probe's faces an operation uses."""

    ALL = "all"  # search: every face, each searched on its own
    ONE = "one"  # opt-out: a selfie must show exactly one face
    LARGEST = "largest"  # locate: a reference photo shows the one person, the largest face


@dataclass(frozen=True)
class ProbeFaces:
    """The faces kept from one probe, and why others were not."""

    name: str
    faces: list[DetectedFace]
    found: int  # faces detected before the selection
    error: str | None = None  # the probe could not be decoded
    note: str | None = None  # e.g. "several faces; the largest was used"


def _area(face: DetectedFace) -> int:
    return face.box.width * face.box.height


def read_probe(
    settings: Settings, engine: FaceBackend, probe: Probe, wanted: Wanted = Wanted.ALL
) -> ProbeFaces:
    """The faces of ``probe`` that ``wanted`` keeps; a bad image is an ``error``, not a raise."""
    try:
        rgb, _ = decode_image(probe.data, "", settings.max_file_bytes, settings.max_pixels)
        faces = engine.faces(rgb)
    except InputError as exc:
        return ProbeFaces(probe.name, [], 0, error=str(exc))
    found = len(faces)
    if wanted is Wanted.LARGEST and found > 1:
        return ProbeFaces(probe.name, [max(faces, key=_area)], found,
                          note="several faces; the largest was used")  # fmt: skip
    if wanted is Wanted.ONE and found != 1:
        return ProbeFaces(probe.name, [], found)
    return ProbeFaces(probe.name, faces, found)
