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
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceledger.errors import VectorIndexError
from faceledger.files import atomic_write, file_lock
from faceledger.index.base import ChangeFeed
from faceledger.index.faiss_index import FaissIndex, plan_for

__all__ = ["FaissStore", "StoreTuning", "read_header", "read_snapshot", "FILE_MAGIC"]

FILE_MAGIC = b"FACELEDGER-FAISS 2\n"
_HEADER_MAX = 4096
#: Below this many log entries behind, a snapshot is never rewritten just for being behind.
SNAPSHOT_MIN_BACKLOG = 10_000
#: Below this many log entries behind, catching up always replays (never rebuilds).
REBUILD_MIN_BACKLOG = 1_000

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
            head = handle.read(_HEADER_MAX)
    except FileNotFoundError:
        return None
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
    """The index saved at ``path`` and its header; VectorIndexError if damaged or foreign."""
    data = path.read_bytes()
    header = read_header(path)
    if header is None:
        raise VectorIndexError(f"{path} is not a faceledger index file of this version")
    start = len(FILE_MAGIC) + data[len(FILE_MAGIC) :].index(b"\n") + 1
    body = data[start:]
    if hashlib.sha256(body).hexdigest() != header.get("body_sha256"):
        raise VectorIndexError(f"{path} is damaged (its checksum does not match)")
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

    def _rebuild_in_memory(self) -> None:
        everything = self._feed.everything(self.place)
        self._index = FaissIndex.build(
            everything.add_ids, everything.add_vectors, self._tuning.exact_max,
            self._tuning.compressed_min,
        )  # fmt: skip
        self._applied = everything.upto

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

    def rebuild(self) -> None:
        """Rebuild from the catalog and save (``reindex``)."""
        with self._lock, file_lock(self.path.with_name(self.path.name + ".lock")):
            self._rebuild_in_memory()
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
        body = self._index.to_bytes()
        seal = self._seal()
        if seal is not None:
            body = seal(body)
        header = {
            "place": self.place,
            "seq": self._applied,
            "faces": len(self._index),
            "structure": self._index.plan.describe(),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "sealed": seal is not None,
        }
        data = FILE_MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + body
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
