"""The pipeline's pure stages, run wherever a distributor puts them (a process pool, Ray).

Each stage takes items, which say where their bytes are (a file, a WARC record's offset), and
reads them itself; nothing here knows which engine runs it or touches the catalog:

- :func:`digest_batch`: read and hash items, so the driver can ask the catalog which are new;
- :func:`analyse_item`: read again, check the SHA-256, decode, detect, embed.

Every result carries the seconds it spent per stage, for the run's summary.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from faceledger.errors import InputError
from faceledger.ingest.decode import Digests, decode_for_faces, digests
from faceledger.ingest.items import SourceItem
from faceledger.records import DetectedFace, PhotoFacts

__all__ = ["STAGES", "Analysis", "Limits", "digest_batch", "analyse_item", "changed_error"]

#: The stages a run's summary times: read (+ hash), decode, detect, embed; then write (driver).
STAGES = ("read", "decode", "detect", "embed", "write")


@dataclass(frozen=True)
class Limits:
    """What the stages need of the settings (small, so it travels to workers cheaply)."""

    max_file_bytes: int
    max_pixels: int
    detect_max_side: int


@dataclass
class Analysis:
    """One photo's facts and faces, and the seconds each stage took on it."""

    facts: PhotoFacts
    faces: list[DetectedFace]
    seconds: dict[str, float] = field(default_factory=dict)


def changed_error() -> InputError:
    """The error of a file whose bytes changed between two reads of one run."""
    return InputError(
        "the file changed while it was being ingested (its SHA-256 differs from the first "
        "read); run the ingest again once it is complete"
    )


def digest_batch(
    items: list[SourceItem], max_bytes: int
) -> list[tuple[Digests, float] | BaseException]:
    """Each item's digests and the seconds reading and hashing took, or what went wrong."""
    results: list[tuple[Digests, float] | BaseException] = []
    for item in items:
        started = time.perf_counter()
        try:
            results.append((digests(item.read(max_bytes)), time.perf_counter() - started))
        except Exception as exc:  # one unreadable item is that item's error, not the batch's
            results.append(exc)
    return results


def analyse_item(item: SourceItem, sha256: str, engine, limits: Limits) -> Analysis:
    """Read ``item`` (checking it still has ``sha256``), decode it, find and embed its faces.

    JPEGs far larger than the detection size are decoded in draft mode for detection, and at
    full resolution only when a face was found (see ``decode_for_faces``).
    """
    started = time.perf_counter()
    data = item.read(limits.max_file_bytes)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise changed_error()
    read = time.perf_counter()
    decoded = decode_for_faces(
        data, sha256, limits.max_file_bytes, limits.max_pixels, limits.detect_max_side
    )
    seconds = {"read": read - started, "decode": time.perf_counter() - read}
    faces = engine.faces_in(decoded.small, decoded.size, decoded.full, seconds)
    return Analysis(decoded.facts, faces, seconds)
