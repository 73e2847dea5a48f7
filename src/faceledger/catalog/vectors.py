"""Face vectors as database blobs, through a sealer that may encrypt them."""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["VectorSealer", "PlainSealer", "to_blob", "from_blob", "DIM"]

DIM = 128


class VectorSealer(Protocol):
    """Turns vector bytes into what is stored, and back."""

    key_id: str | None

    def seal(self, data: bytes) -> bytes:
        """Bytes to store for ``data``."""
        ...

    def open(self, blob: bytes, key_id: str | None) -> bytes:
        """The original bytes of a stored blob sealed under ``key_id``."""
        ...


class PlainSealer:
    """Stores vectors as they are (libraries created without an encryption key)."""

    key_id: str | None = None

    def seal(self, data: bytes) -> bytes:
        """Return ``data`` unchanged."""
        return data

    def open(self, blob: bytes, key_id: str | None) -> bytes:
        """Return ``blob`` unchanged."""
        return blob


def to_blob(vector: np.ndarray, sealer: VectorSealer) -> bytes:
    """Serialise one vector as little-endian float32 and seal it."""
    return sealer.seal(np.asarray(vector, dtype="<f4").tobytes())


def from_blob(blob: bytes, key_id: str | None, sealer: VectorSealer) -> np.ndarray:
    """The vector stored in ``blob``."""
    return np.frombuffer(sealer.open(blob, key_id), dtype="<f4").astype(np.float32)
