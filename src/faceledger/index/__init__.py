"""Vector indexes behind one interface; they hold face ids and vectors, never metadata.

Every caller gets its index store from :func:`open_store`, which picks the backend named by the
``index`` setting (``FACELEDGER_INDEX``). Each store is fed by the catalog's index change log
(:class:`ChangeFeed`), never by its callers.
"""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np

from faceledger.config import INDEX_BACKENDS, Settings
from faceledger.errors import ConfigError
from faceledger.index.base import ChangeFeed, IndexChanges, IndexStore, VectorIndex
from faceledger.index.faiss_index import FaissIndex, IndexPlan, plan_for
from faceledger.index.faiss_store import FaissStore, StoreTuning

__all__ = [
    "VectorIndex",
    "IndexStore",
    "ChangeFeed",
    "IndexChanges",
    "FaissIndex",
    "IndexPlan",
    "plan_for",
    "BACKENDS",
    "open_store",
    "in_memory",
    "set_search_threads",
]

#: The index backends a library can use.
BACKENDS = INDEX_BACKENDS


def open_store(
    settings: Settings,
    place: str,
    feed: ChangeFeed,
    seal: Callable[[], Callable[[bytes], bytes] | None],
    unseal: Callable[[bytes], bytes],
) -> IndexStore:
    """The index store for ``place`` (searchable or vault) with the configured backend."""
    if settings.index == "faiss":
        tuning = StoreTuning(
            exact_max=settings.exact_index_max,
            snapshot_backlog=settings.index_snapshot_backlog,
            rebuild_backlog=settings.index_rebuild_backlog,
        )
        path = settings.library / "index" / f"{place}.faiss"
        return FaissStore(place, path, feed, tuning, seal, unseal)
    raise ConfigError(
        f"unknown index backend {settings.index!r}: set FACELEDGER_INDEX to one of "
        + ", ".join(BACKENDS)
    )


def in_memory(ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
    """A transient exact index over a few vectors (e.g. opt-out faces during one decision)."""
    return FaissIndex.build(ids, np.asarray(vectors, np.float32).reshape(-1, 128))


def set_search_threads(threads: int) -> None:
    """Set FAISS's OpenMP threads once for this process (a service: 1 per request thread)."""
    if threads > 0:
        faiss.omp_set_num_threads(threads)
