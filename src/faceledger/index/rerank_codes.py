"""The compressed tier's re-rank data: each face's vector as 8-bit scalar-quantized (SQ8) codes,
one byte a dimension, held in memory beside the 4-bit PQ codes that find the candidates.

The PQ codes (32 bytes a face) are too coarse to order the candidates; the exact float vectors
live in the catalog, and reading 40 of them per query from a 10^7-face PostgreSQL catalog took
1.3 ms when cached and 10-11 ms when not (BENCHMARKS.md, "Scale"). The SQ8 codes (128 bytes a
face) order the candidates in memory, and each face's reconstruction error (how far its decoded
code lies from the float vector) bounds how wrong that order can be. Only the candidates the
bounds cannot rule out of the top k are read from the catalog, so the answer and its distances
are those of an exact re-rank of every candidate, at the cost of a few reads.

Rows are kept sorted by face id, so a lookup is a binary search (no per-face hash table: at
10^8 faces that alone would take ~5 GB). Rows are appended as they come (face ids mostly arrive
in increasing order) and sorted once, at the next lookup, if some did not (a rebuild streams the
catalog in its physical order; a face moved back keeps its old id). A removed face's codes are
zeroed at once and its row dropped at the next compaction, so neither memory nor a saved file
keeps them.
"""

from __future__ import annotations

import faiss
import numpy as np

from faceledger.errors import VectorIndexError

__all__ = ["RerankCodes"]

#: Compact (drop the zeroed rows of removed faces) once they are this share of the rows.
COMPACT_SHARE = 0.25


class RerankCodes:
    """SQ8 codes and reconstruction errors of a set of face ids, sorted by id."""

    def __init__(self, quantizer: faiss.IndexScalarQuantizer, ids: np.ndarray,
                 codes: np.ndarray, errors: np.ndarray):  # fmt: skip
        """Wrap a trained quantizer and its sorted rows (``ids`` ascending, unique)."""
        self._quantizer = quantizer
        # Decoding in numpy (code + 0.5 steps above each dimension's minimum, as FAISS does)
        # skips a SWIG call per query; the error bounds are computed with the same decode.
        trained = faiss.vector_to_array(quantizer.sq.trained).astype(np.float32)
        dim = quantizer.d
        self._low, self._step = trained[:dim], trained[dim : 2 * dim] / np.float32(255)
        self._ids, self._codes, self._errors = ids, codes, errors
        self._alive = np.ones(len(ids), bool)
        self._rows = len(ids)  # rows in use; the arrays may hold spare capacity beyond
        self._dead = 0
        self._sorted = True  # whether the rows in use are in id order

    @classmethod
    def trained(cls, sample: np.ndarray) -> RerankCodes:
        """Empty codes whose per-dimension ranges are learnt from ``sample``."""
        dim = sample.shape[1]
        quantizer = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit)
        quantizer.train(np.ascontiguousarray(sample, np.float32))
        return cls(quantizer, np.empty(0, np.int64), np.empty((0, quantizer.sa_code_size()),
                   np.uint8), np.empty(0, np.float32))  # fmt: skip

    def __len__(self) -> int:
        """Faces held."""
        return self._rows - self._dead

    # -- changes -----------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Hold these faces (ids not held now)."""
        if len(ids) == 0:
            return
        order = np.argsort(ids, kind="stable")
        ids = np.ascontiguousarray(ids, np.int64)[order]
        vectors = np.ascontiguousarray(vectors, np.float32)[order]
        codes = self._quantizer.sa_encode(vectors)
        decoded = self._decode(codes)
        # The error bound of this face: |d(q, decoded) - d(q, exact)| <= ||decoded - exact||.
        errors = np.sqrt(np.einsum("ij,ij->i", decoded - vectors, decoded - vectors))
        if self._rows and ids[0] <= self._ids[self._rows - 1]:
            self._sorted = False  # sorted at the next lookup, once for any number of adds
        self._append(ids, codes, errors.astype(np.float32))

    def _append(self, ids: np.ndarray, codes: np.ndarray, errors: np.ndarray) -> None:
        """Append rows after the last, growing the arrays by doubling (amortised O(1))."""
        need = self._rows + len(ids)
        if need > len(self._ids):
            capacity = max(need, 2 * len(self._ids))
            self._ids = _grown(self._ids, capacity, self._rows)
            self._codes = _grown(self._codes, capacity, self._rows)
            self._errors = _grown(self._errors, capacity, self._rows)
            self._alive = _grown(self._alive, capacity, self._rows)
        rows = slice(self._rows, need)
        self._ids[rows], self._codes[rows], self._errors[rows] = ids, codes, errors
        self._alive[rows] = True
        self._rows = need

    def remove(self, ids: np.ndarray) -> int:
        """Drop these faces' codes (zeroed now, their rows compacted later); returns how many
        were held."""
        rows = self._rows_of(np.unique(np.asarray(ids, np.int64)))
        self._codes[rows] = 0
        self._errors[rows] = 0
        self._alive[rows] = False
        self._dead += len(rows)
        if self._dead > COMPACT_SHARE * self._rows:
            self._compact()
        return len(rows)

    def _compact(self) -> None:
        """Drop the rows of removed faces and any spare capacity, and sort the rows by id
        (with nothing to drop or sort, the rows in use become views: no copy)."""
        if self._dead == 0 and self._sorted:  # nothing to drop: views, not copies
            rows = slice(0, self._rows)
            self._ids, self._codes = self._ids[rows], self._codes[rows]
            self._errors, self._alive = self._errors[rows], self._alive[rows]
            return
        keep = np.flatnonzero(self._alive[: self._rows])
        if not self._sorted:
            keep = keep[np.argsort(self._ids[keep], kind="stable")]
            self._sorted = True
        self._ids, self._codes = self._ids[keep], self._codes[keep]
        self._errors, self._alive = self._errors[keep], np.ones(len(keep), bool)
        self._rows, self._dead = len(keep), 0

    # -- answering ---------------------------------------------------------------------------
    def approximate(
        self, query: np.ndarray, ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids held, their distances to ``query`` by their codes, each one's error bound)."""
        rows = self._rows_of(ids)
        diff = self._decode(self._codes[rows]) - query
        return self._ids[rows], np.sqrt(np.einsum("ij,ij->i", diff, diff)), self._errors[rows]

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        """Float vectors of SQ8 codes."""
        return self._low + (codes.astype(np.float32) + np.float32(0.5)) * self._step

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Rows of those ``ids`` that are held, in the order given."""
        if self._rows == 0:
            return np.empty(0, np.intp)
        if not self._sorted:
            self._compact()
        held = self._ids[: self._rows]
        rows = np.minimum(np.searchsorted(held, ids), self._rows - 1)
        return rows[(held[rows] == ids) & self._alive[rows]]

    # -- persistence -------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The quantizer, then the live rows (ids, errors, codes), each framed by its length."""
        return b"".join(self.to_parts())

    def to_parts(self) -> list[bytes | memoryview]:
        """:meth:`to_bytes` as buffers to write in turn (views of the arrays: no copies)."""
        self._compact()  # a removed face's row never reaches a file; the rows go sorted
        quantizer = faiss.serialize_index(self._quantizer).tobytes()
        rows = slice(0, self._rows)
        return [
            len(quantizer).to_bytes(8, "little"), quantizer, self._rows.to_bytes(8, "little"),
            _raw(self._ids[rows].astype("<i8", copy=False)),
            _raw(self._errors[rows].astype("<f4", copy=False)), _raw(self._codes[rows]),
        ]

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> RerankCodes:
        """Codes from :meth:`to_bytes` output."""
        data = memoryview(data)
        size = int.from_bytes(data[:8], "little")
        # Not downcast: the proxy deserialize_index returns owns the C++ object.
        quantizer = faiss.deserialize_index(np.frombuffer(data[8 : 8 + size], np.uint8))
        at = 8 + size
        rows = int.from_bytes(data[at : at + 8], "little")
        at += 8
        width = quantizer.sa_code_size()
        if len(data) != at + rows * (8 + 4 + width):
            raise VectorIndexError(
                "the index's re-rank codes are truncated; run `faceledger reindex`"
            )
        ids = np.frombuffer(data[at : at + 8 * rows], "<i8").astype(np.int64)
        at += 8 * rows
        errors = np.frombuffer(data[at : at + 4 * rows], "<f4").astype(np.float32)
        at += 4 * rows
        codes = np.frombuffer(data[at:], np.uint8).reshape(rows, width).copy()
        return cls(quantizer, ids, codes, errors)


def _raw(array: np.ndarray) -> memoryview:
    """The bytes of a C-ordered array, as a view (an empty array gives an empty view)."""
    return memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _grown(array: np.ndarray, capacity: int, used: int) -> np.ndarray:
    """``array``'s first ``used`` rows in a new array of ``capacity`` rows."""
    bigger = np.zeros((capacity, *array.shape[1:]), array.dtype)
    bigger[:used] = array[:used]
    return bigger
