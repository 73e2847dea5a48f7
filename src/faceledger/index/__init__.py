"""Vector indexes behind one interface; they hold face ids and vectors, never metadata.

Every caller gets its index store from :func:`open_store`, which picks the backend named by the
``index`` setting (``FACELEDGER_INDEX``). Each store is fed by the catalog's index change log
(:class:`ChangeFeed`), never by its callers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import faiss
import numpy as np

from faceledger.config import INDEX_BACKENDS, Settings
from faceledger.errors import ConfigError
from faceledger.index.base import ChangeFeed, IndexChanges, IndexStore, MarkedFeed, VectorIndex
from faceledger.index.faiss_index import FaissIndex, IndexPlan, plan_for
from faceledger.index.faiss_store import FaissStore, StoreTuning
from faceledger.index.milvus_store import MilvusStore, MilvusTarget

__all__ = [
    "VectorIndex",
    "IndexStore",
    "ChangeFeed",
    "MarkedFeed",
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
            compressed_min=settings.compressed_index_min,
            snapshot_backlog=settings.index_snapshot_backlog,
            rebuild_backlog=settings.index_rebuild_backlog,
        )
        path = settings.library / "index" / f"{place}.faiss"
        return FaissStore(place, path, feed, tuning, seal, unseal)
    if settings.index == "milvus":
        vault = place == "vault"
        target = MilvusTarget(
            uri=settings.milvus_target,
            collection=f"{settings.milvus_prefix}_{place}",
            # The vault has a credential of its own, so a cluster can grant it to custodians.
            token=(settings.milvus_vault_token or settings.milvus_token)
            if vault else settings.milvus_token,
            index=settings.milvus_index,
            exact_max=settings.exact_index_max,
        )  # fmt: skip
        return MilvusStore(place, target, cast(MarkedFeed, feed))
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
