"""The interfaces of the index package: vector indexes, the change feed, index stores.

A vector index is derived state. The catalog is the truth, and its index change log (one row per
face moved, in commit order) is what feeds every index: an :class:`IndexStore` remembers the last
log entry it applied and catches up before it answers. The catalog implements
:class:`ChangeFeed`; this package never reads the catalog itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from faceledger.records import IndexChanges, OnProgress, PlaceIds

__all__ = [
    "VectorIndex", "ChangeFeed", "MarkedFeed", "IndexStore", "IndexChanges", "PlaceIds",
    "counted",
]  # fmt: skip

Batches = Iterable[tuple[np.ndarray, np.ndarray]]


def counted(batches: Batches, total: int, on_progress: OnProgress | None) -> Batches:
    """``batches`` of (ids, vectors) as they come, with ``on_progress`` told the faces passed
    so far of ``total`` after each; a rebuild's bar (``reindex``)."""
    if on_progress is None:
        return batches

    def told() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        done = 0
        for ids, vectors in batches:
            yield ids, vectors
            done += len(ids)
            on_progress(done, max(total, done))

    return told()


class VectorIndex(Protocol):
    """Face ids and their vectors, searchable by Euclidean distance; holds no other metadata."""

    def __len__(self) -> int:
        """Number of vectors held."""
        ...

    def ids(self) -> np.ndarray:
        """Every id held, sorted (int64)."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under the given ids."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove these ids; returns how many were held."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """For each query row, the k nearest (Euclidean distances, ids); missing ids are -1."""
        ...

    def within(self, queries: np.ndarray, radius: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query row, every (Euclidean distances, ids) no farther than ``radius``."""
        ...


class ChangeFeed(Protocol):
    """The catalog's index change log, as an index reads it."""

    def head(self) -> int:
        """The newest log seq (0 when the log is empty)."""
        ...

    def changes(self, place: str, after: int) -> IndexChanges:
        """What an index of ``place`` that applied the log up to ``after`` must change."""
        ...

    def place_ids(self, place: str) -> PlaceIds:
        """Every face id now in ``place`` and the log head read before them (a rebuild)."""
        ...

    def batches(self, place: str, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every face now in ``place`` as (ids, float32 vectors), ``size`` at a time, in any
        order (a rebuild's fill, after :meth:`place_ids`)."""
        ...

    def vectors(self, place: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float32 vectors) of those ``ids`` now in ``place``, in any order (the exact
        re-rank of a compressed index)."""
        ...


class MarkedFeed(ChangeFeed, Protocol):
    """A change feed that also keeps the applied-up-to mark of an index whose data lives
    outside the library (Milvus), and the lock that serialises its appliers."""

    def read_mark(self, name: str) -> int | None:
        """The seq index ``name`` last applied (None if it never applied any)."""
        ...

    def compare_and_set_mark(self, name: str, expected: int | None, new: int) -> bool:
        """Move the mark of ``name`` from ``expected`` to ``new``; False if it had moved."""
        ...

    def applier_lock(self, name: str) -> AbstractContextManager[None]:
        """A lock held by one applier of index ``name`` at a time, across processes."""
        ...


class IndexStore(Protocol):
    """One place's vector index (``searchable`` or ``vault``), kept in step with the log.

    A backend that keeps its data in files (FAISS) and one that is a database of its own
    (Milvus) both fit: ``applied`` may live in a file header or in the catalog.
    """

    place: str

    @property
    def applied(self) -> int:
        """The last log seq this store has applied."""
        ...

    def catch_up(self) -> int:
        """Apply the log past :attr:`applied`; returns the seq now applied. Never writes files."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Catch up, then the k nearest (Euclidean distances, ids) for each query row."""
        ...

    def within(self, queries: np.ndarray, radius: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Catch up, then every (distances, ids) no farther than ``radius`` for each row."""
        ...

    def count(self) -> int:
        """Catch up, then the number of vectors held."""
        ...

    def persist(self, force: bool = False) -> bool:
        """Catch up and make the change durable where the backend needs it; True if written.

        A file backend writes when it removed vectors since its last save (their bytes must
        leave the file), when its snapshot is too far behind the log, or when ``force``.
        """
        ...

    def rebuild(self, on_progress: OnProgress | None = None) -> None:
        """Rebuild from the catalog's faces in this place, and persist; ``on_progress`` is
        told (0, faces) once they are listed, then the faces read so far after each batch."""
        ...

    def describe(self) -> dict[str, Any]:
        """Backend, structure, size and applied seq, for ``stats``."""
        ...

    def close(self) -> None:
        """Release what the store holds."""
        ...
