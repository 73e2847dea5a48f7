"""The one interface every vector index backend offers."""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["VectorIndex"]


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
