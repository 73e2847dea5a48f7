"""A FAISS index kept in a library file, in step with the catalog's index change log.

Why this design (snapshot + log replay), rather than the alternatives considered:

- *Each process saving its whole in-memory copy* (the design before) lets the last writer win:
  a process that never saw an erase could save the erased face back. Here a save happens only
  under an inter-process file lock, after applying the log up to its head, so a save can never
  drop a change it had not seen; and the file's stamp is the log seq, not a counter that a
  stale writer could copy.
- *Writing the index on every change* (or every N photos) rewrites hundreds of MB at 10^6
  faces. Here the file is a snapshot stamped with the seq it reflects; opening it replays the
  log after that seq from the catalog, which holds every vector. A writer re-saves only when it
  removed vectors (their bytes must leave the file: erasure, blocking), or when the replay
  backlog passes a fraction of the index size, so the cost of saves grows with the work done
  since the last one (amortised constant per change) rather than per batch.
- *Segments* (an immutable file per batch plus tombstones) would make an erase rewrite one
  segment instead of the whole file, but tombstones leave a blocked vector's bytes in the
  searchable file until compaction, and FAISS IVF segments need a shared quantizer; one snapshot
  is simpler and an erase rewriting it costs about a second at 10^6 faces (BENCHMARKS.md).
- *Searches never write files*: a reader that finds the file damaged or far behind rebuilds or
  replays in memory and leaves persistence to the next writer.

File layout: a magic line, one JSON header line (place, seq, faces, structure, SHA-256 of the
body), then the body: FAISS's serialisation, sealed with the library key when one is set. A
body whose checksum fails is never searched: the store rebuilds from the catalog.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceledger.errors import VectorIndexError
from faceledger.files import atomic_write, file_lock
from faceledger.index.base import ChangeFeed, counted
from faceledger.index.faiss_index import FaissIndex, plan_for, training_size
from faceledger.records import OnProgress

__all__ = ["FaissStore", "StoreTuning", "read_header", "read_snapshot", "FILE_MAGIC"]

FILE_MAGIC = b"FACELEDGER-FAISS 2\n"
_HEADER_MAX = 4096
#: Below this many log entries behind, a snapshot is never rewritten just for being behind.
SNAPSHOT_MIN_BACKLOG = 10_000
#: Below this many log entries behind, catching up always replays (never rebuilds).
REBUILD_MIN_BACKLOG = 1_000
#: Faces a rebuild reads from the catalog at a time (51 MB of float vectors).
REBUILD_BATCH = 100_000

#: Each index structure's tier, from small collections to large. IVF-Flat files saved before
#: the PQ codes are the same tier as ``ivfpq+flat``: kept until a rebuild, never forced.
_TIER = {"flat": 0, "ivf": 1, "ivfpq+flat": 1, "ivfpq": 2, "ivfpq+sq8": 2}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreTuning:
    """The settings a file-backed store needs (from :class:`faceledger.config.Settings`)."""

    exact_max: int = 50_000
    #: From this many faces the index is the compressed tier (None: never).
    compressed_min: int | None = None
    #: Re-save when the snapshot is behind by more than this fraction of the index's size.
    snapshot_backlog: float = 0.05
    #: Rebuild from the catalog rather than replay when behind by more than this multiple.
    rebuild_backlog: float = 1.0


def read_header(path: Path) -> dict[str, Any] | None:
    """The JSON header of an index file (None if missing, damaged or of an older format)."""
    try:
        with path.open("rb") as handle:
            return _parse_header(handle.read(_HEADER_MAX))
    except FileNotFoundError:
        return None


def _parse_header(head: bytes) -> dict[str, Any] | None:
    """The header at the start of an index file's bytes (None if not one of this format)."""
    if not head.startswith(FILE_MAGIC):
        return None
    line = head[len(FILE_MAGIC) :].split(b"\n", 1)[0]
    try:
        header = json.loads(line)
    except ValueError:
        return None
    return header if isinstance(header, dict) and isinstance(header.get("seq"), int) else None


def read_snapshot(
    path: Path, unseal: Callable[[bytes], bytes] = lambda body: body
) -> tuple[FaissIndex, dict[str, Any]]:
    """The index saved at ``path`` and its header; VectorIndexError if damaged or foreign.

    The file is memory-mapped, not read: its pages are the OS's cache, so loading a 10^8-face
    index holds the index once in memory, not also a copy of the file.
    """
    with path.open("rb") as handle:  # first: a missing file is FileNotFoundError, not damage
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:  # an empty file cannot be mapped
            raise VectorIndexError(f"{path} is empty") from exc
    # The header from the same mapping as the body: a save replacing the file in between must
    # not pair one file's header with the other's body.
    header = _parse_header(mapped[:_HEADER_MAX])
    if header is None:
        raise VectorIndexError(f"{path} is not a faceledger index file of this version")
    start = mapped.find(b"\n", len(FILE_MAGIC)) + 1
    body = memoryview(mapped)[start:]
    if hashlib.sha256(body).hexdigest() != header.get("body_sha256"):
        raise VectorIndexError(f"{path} is damaged (its checksum does not match)")
    # Every part is copied into the index's own memory; the map closes once unreferenced.
    index = FaissIndex.from_bytes(unseal(body))
    if len(index) != header.get("faces"):
        raise VectorIndexError(
            f"{path} holds {len(index)} faces where its header says {header.get('faces')}"
        )
    return index, header


class FaissStore:
    """One place's FAISS index: loaded from its snapshot, caught up from the change log."""

    backend = "faiss"

    def __init__(
        self,
        place: str,
        path: Path,
        feed: ChangeFeed,
        tuning: StoreTuning,
        seal: Callable[[], Callable[[bytes], bytes] | None],
        unseal: Callable[[bytes], bytes],
    ):
        """A store for ``place`` saved at ``path``; ``seal()`` gives the sealing function."""
        self.place = place
        self.path = path
        self._feed = feed
        self._tuning = tuning
        self._seal = seal
        self._unseal = unseal
        self._index: FaissIndex | None = None
        self._applied = 0
        # True when this process removed vectors that the file on disk may still hold.
        self._file_has_removed = False
        # One lock for the in-memory index: catching up never changes it under a search.
        self._lock = threading.Lock()

    # -- reading the snapshot -------------------------------------------------------------
    def _load(self) -> None:
        """Load the snapshot, or rebuild in memory when it is missing or damaged."""
        try:
            index, seq = self._read()
        except FileNotFoundError:
            self._rebuild_in_memory()
            return
        except VectorIndexError as exc:
            log.warning("%s; rebuilding the %s index from the catalog", exc, self.place)
            self._rebuild_in_memory()
            self._file_has_removed = True  # the damaged file must be replaced by a writer
            return
        self._index, self._applied = index, seq

    def _read(self) -> tuple[FaissIndex, int]:
        index, header = read_snapshot(self.path, self._unseal)
        return index, int(header["seq"])

    def _rebuild_in_memory(self, on_progress: OnProgress | None = None) -> None:
        """Build from the catalog without holding every vector: the place's ids first (8 bytes
        a face), a random sample of them to train on, then the vectors in batches."""
        listing = self._feed.place_ids(self.place)
        count = len(listing.ids)
        if on_progress is not None:
            on_progress(0, count)
        plan = plan_for(count, self._tuning.exact_max, self._tuning.compressed_min)
        drawn = np.random.default_rng(0).choice(
            listing.ids, min(training_size(plan), count), replace=False
        )
        _, sample = self._feed.vectors(self.place, np.sort(drawn))
        batches = counted(self._feed.batches(self.place, REBUILD_BATCH), count, on_progress)
        self._index = FaissIndex.build_from(plan, count, sample, batches)
        self._applied = listing.upto

    # -- catching up ------------------------------------------------------------------------
    @property
    def applied(self) -> int:
        """The last log seq applied to the index in memory."""
        return self._applied

    def catch_up(self) -> int:
        """Apply the change log past :attr:`applied` to the index in memory."""
        with self._lock:
            return self._catch_up_locked()

    def _catch_up_locked(self) -> int:
        if self._index is None:
            self._load()
        assert self._index is not None
        head = self._feed.head()
        if head <= self._applied:
            return self._applied
        backlog = head - self._applied
        if backlog > max(REBUILD_MIN_BACKLOG, self._tuning.rebuild_backlog * len(self._index)):
            self._rebuild_in_memory()
            self._file_has_removed = True  # what the rebuild dropped may be in the file
            return self._applied
        changes = self._feed.changes(self.place, self._applied)
        if len(changes.remove_ids) and self._index.remove(changes.remove_ids):
            self._file_has_removed = True
        self._index.add(changes.add_ids, changes.add_vectors)
        self._applied = changes.upto
        return self._applied

    # -- answering -----------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest ids and distances per query row, after catching up."""
        with self._lock:
            self._catch_up_locked()
            assert self._index is not None
            return self._index.search(queries, k, self._exact)

    def within(self, queries: np.ndarray, radius: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every (distances, ids) within ``radius`` per query row, after catching up."""
        with self._lock:
            self._catch_up_locked()
            assert self._index is not None
            return self._index.within(queries, radius, self._exact)

    def _exact(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The catalog's float vectors of those ``ids`` still in this place (the re-rank of
        the compressed tier: exact distances, and nothing the catalog has moved out)."""
        return self._feed.vectors(self.place, ids)

    def count(self) -> int:
        """Vectors held, after catching up."""
        with self._lock:
            self._catch_up_locked()
            assert self._index is not None
            return len(self._index)

    def ids(self) -> np.ndarray:
        """Every face id held, after catching up (for checks and tests)."""
        with self._lock:
            self._catch_up_locked()
            assert self._index is not None
            return self._index.ids()

    # -- writing -------------------------------------------------------------------------------
    def persist(self, force: bool = False) -> bool:
        """Save a snapshot if this process removed vectors, the file is behind, or ``force``."""
        with self._lock, file_lock(self.path.with_name(self.path.name + ".lock")):
            self._catch_up_locked()  # under the file lock: nothing committed is left unseen
            assert self._index is not None
            header = read_header(self.path)
            on_disk = header["seq"] if header else None
            if on_disk is not None and on_disk > self._applied:
                return False  # compare-and-set: a newer snapshot is already there
            behind = self._applied - (on_disk or 0)
            due = behind > max(SNAPSHOT_MIN_BACKLOG,
                               self._tuning.snapshot_backlog * len(self._index))  # fmt: skip
            # A structure outgrown (e.g. past the compressed tier's threshold) is rebuilt and
            # saved at once, so the tier follows the size rather than the next due save.
            outgrown = self._structure_outgrown()
            if not (force or self._file_has_removed or on_disk is None or due or outgrown):
                return False
            if outgrown:
                self._rebuild_in_memory()
            self._write()
            return True

    def rebuild(self, on_progress: OnProgress | None = None) -> None:
        """Rebuild from the catalog and save (``reindex``), telling ``on_progress`` the faces
        read so far (see :meth:`IndexStore.rebuild`)."""
        with self._lock, file_lock(self.path.with_name(self.path.name + ".lock")):
            self._rebuild_in_memory(on_progress)
            self._write()

    def _structure_outgrown(self) -> bool:
        """Whether the index's structure no longer fits its size (flat past the exact limit,
        or IVF lists too few or too many), so a save should rebuild it first."""
        assert self._index is not None
        n, tuning = len(self._index), self._tuning
        want = plan_for(n, tuning.exact_max, tuning.compressed_min)
        have = self._index.plan
        if _TIER[want.kind] != _TIER[have.kind]:
            if _TIER[want.kind] > _TIER[have.kind]:
                return True  # grown into a larger tier
            # Shrunk: move down only well below the threshold, so a size near it never flips.
            if have.compressed:
                return tuning.compressed_min is None or n < tuning.compressed_min // 2
            return n < tuning.exact_max // 2
        return have.kind != "flat" and not (have.nlist // 4 <= want.nlist <= have.nlist * 4)

    def _write(self) -> None:
        assert self._index is not None
        # The body's parts are written one after another, never joined (a sealed body is one
        # part: the seal encrypts it whole), so a save holds no second copy of a plain index.
        parts = self._index.to_parts()
        seal = self._seal()
        if seal is not None:
            parts = [seal(b"".join(parts))]
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part)
        header = {
            "place": self.place,
            "seq": self._applied,
            "faces": len(self._index),
            "structure": self._index.plan.describe(),
            "body_sha256": digest.hexdigest(),
            "sealed": seal is not None,
        }
        data = [FILE_MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n", *parts]
        for stale in self.path.parent.glob(f".{self.path.name}.*"):
            stale.unlink(missing_ok=True)  # a save that crashed: we hold the lock, it is dead
        atomic_write(self.path, data, crash_point_name="during-save")
        self._file_has_removed = False

    def describe(self) -> dict[str, Any]:
        """Backend, structure, size and the log seq applied."""
        with self._lock:
            self._catch_up_locked()
            assert self._index is not None
            header = read_header(self.path)
            return {
                "backend": self.backend,
                "structure": self._index.plan.describe(),
                "faces": len(self._index),
                "applied_seq": self._applied,
                "snapshot_seq": header["seq"] if header else None,
            }

    def close(self) -> None:
        """Drop the index from memory."""
        with self._lock:
            self._index = None
            self._applied = 0
