"""Distributors: where the pure stages of ``ingest.work`` run. One option picks one.

A distributor has three calls, and the driver (``faceledger.app.ingest``) knows no other:

- ``digests(items)``: each item's digests (or its error), in order;
- ``analyse(jobs)``: (index, Analysis or error) for each (item, sha256) job, as they finish;
- ``close()``.

``local`` is a process pool on this machine (no Ray needed, nor imported); ``ray`` runs the same
stages on Ray Data (``faceledger.ingest.ray_engine``, the ``ray`` extra).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING, Protocol

from faceledger.config import INGEST_ENGINES
from faceledger.errors import UsageError
from faceledger.ingest.decode import Digests
from faceledger.ingest.items import SourceItem
from faceledger.ingest.work import Analysis, Limits, analyse_item, digest_batch

if TYPE_CHECKING:
    from faceledger.config import Settings

__all__ = ["ENGINES", "Distributor", "ProcessPool", "open_distributor", "limits_of"]

#: The engines ``ingest --engine`` accepts.
ENGINES = INGEST_ENGINES

DigestResult = tuple[Digests, float] | BaseException
Job = tuple[SourceItem, str]


class Distributor(Protocol):
    """Runs the pipeline's stages somewhere; see the module docstring."""

    #: How many source items the driver hands over at a time (bounds its memory).
    chunk_size: int

    def digests(self, items: list[SourceItem]) -> list[DigestResult]:
        """Digests and read seconds of each item, or its error, in order."""
        ...

    def analyse(self, jobs: list[Job]) -> Iterator[tuple[int, Analysis | BaseException]]:
        """(index into ``jobs``, its Analysis or error), in the order they finish."""
        ...

    def close(self) -> None:
        """Stop the workers this distributor started."""
        ...


def limits_of(settings: Settings) -> Limits:
    """The part of the settings the stages need."""
    return Limits(settings.max_file_bytes, settings.max_pixels, settings.detect_max_side)


def open_distributor(engine: str, settings: Settings, ray_address: str | None) -> Distributor:
    """The distributor ``engine`` names (``local`` or ``ray``)."""
    if engine == "local":
        return ProcessPool(settings)
    if engine == "ray":
        from faceledger.ingest.ray_engine import RayDistributor  # Ray only when asked for

        return RayDistributor(settings, ray_address)
    raise UsageError(f"unknown ingest engine {engine!r}: use one of {', '.join(ENGINES)}")


# -- the local process pool ------------------------------------------------------------------
_ENGINE = None
_LIMITS: Limits | None = None


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers started fresh with one BLAS/OpenMP thread each: the pool already uses every core.

    OpenBLAS sizes its thread pool when the library loads, and this process loaded it already, so
    a forked worker would keep this process's threads whatever its environment says; a worker
    from the fork server imports dlib anew, under the environment set here first.
    """
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    return multiprocessing.get_context("forkserver")


def _init_worker(settings: Settings) -> None:
    global _ENGINE, _LIMITS
    from faceledger.faces import FaceEngine  # dlib loads here, after the environment is set

    _ENGINE = FaceEngine.from_settings(settings)
    _LIMITS = limits_of(settings)


def _analyse_in_worker(item: SourceItem, sha256: str) -> Analysis:
    assert _ENGINE is not None and _LIMITS is not None
    return analyse_item(item, sha256, _ENGINE, _LIMITS)


class ProcessPool:
    """The default engine: one process per worker on this machine, from the fork server."""

    def __init__(self, settings: Settings):
        """Start ``settings.worker_count`` workers, each loading the face models once."""
        self.workers = settings.worker_count
        self.max_bytes = settings.max_file_bytes
        self.chunk_size = max(256, 64 * self.workers)
        self.pool = ProcessPoolExecutor(
            self.workers, mp_context=_worker_context(),
            initializer=_init_worker, initargs=(settings,),
        )  # fmt: skip

    def digests(self, items: list[SourceItem]) -> list[DigestResult]:
        """Hash items in small batches spread over the workers."""
        size = max(1, min(32, len(items) // (4 * self.workers) or 1))
        batches = [items[i : i + size] for i in range(0, len(items), size)]
        futures = [self.pool.submit(digest_batch, batch, self.max_bytes) for batch in batches]
        results: list[DigestResult] = []
        for batch, future in zip(batches, futures, strict=True):
            try:
                results += future.result()
            except Exception as exc:  # the worker itself died: each item of its batch failed
                results += [exc] * len(batch)
        return results

    def analyse(self, jobs: list[Job]) -> Iterator[tuple[int, Analysis | BaseException]]:
        """One task per photo (the cost per photo varies too much to batch them)."""
        futures = {self.pool.submit(_analyse_in_worker, item, sha): i for i, (item, sha) in
                   enumerate(jobs)}  # fmt: skip
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                index = futures.pop(future)
                try:
                    yield index, future.result()
                except Exception as exc:  # a crash inside a decoder must not end the run
                    yield index, exc

    def close(self) -> None:
        """Stop the workers."""
        self.pool.shutdown(wait=True, cancel_futures=True)
