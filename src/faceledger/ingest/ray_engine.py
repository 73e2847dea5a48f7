"""``ingest --engine ray``: the pipeline's stages on Ray Data (install the ``ray`` extra).

Per chunk of items the driver hands over, two datasets run: ``map_batches`` of
:func:`faceledger.ingest.work.digest_batch` (tasks), then, for the items the catalog does not
hold yet, ``map_batches`` of :class:`_Analyser` actors, each holding the face models, doing
read → decode → detect → embed. Results stream back to the driver, whose one writer commits
them through the same code as the local engine.

With no address a local Ray is started on 127.0.0.1 only (no dashboard) and stopped at the
end; with ``address`` (``--ray-address`` or ``RAY_ADDRESS``) the run joins that cluster, whose
nodes need faceledger installed, and leaves it running.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from faceledger.errors import ConfigError
from faceledger.ingest.distribute import DigestResult, Job, limits_of
from faceledger.ingest.items import SourceItem
from faceledger.ingest.work import Analysis, analyse_item, digest_batch

if TYPE_CHECKING:
    from faceledger.config import Settings

__all__ = ["RayDistributor", "start_local_ray"]

#: Each worker process of the run: one BLAS/OpenMP thread, set before dlib is imported there.
_WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _import_ray(local: bool):
    if local:
        # Ray binds a node's services to the machine's address unless told it is no cluster.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline: no usage report
    try:
        import ray
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "the ray engine needs Ray: install faceledger's 'ray' extra "
            "(pip install 'faceledger[ray]'), or use the local engine"
        ) from exc
    return ray


def _init_options() -> dict:
    return {"runtime_env": {"env_vars": _WORKER_ENV}, "log_to_driver": False,
            "logging_level": "WARNING"}  # fmt: skip


def start_local_ray(num_cpus: int):
    """Start a Ray on this machine for this process: 127.0.0.1 only, no dashboard.

    Returns the ``ray`` module; ``ray.shutdown()`` stops that Ray and nothing else.
    """
    ray = _import_ray(local=True)
    ray.init(num_cpus=num_cpus, include_dashboard=False, **_init_options())
    return ray


def _digest_rows(batch: dict[str, np.ndarray], max_bytes: int) -> dict[str, np.ndarray]:
    items = [pickle.loads(blob) for blob in batch["item"]]
    out = [pickle.dumps(result) for result in digest_batch(items, max_bytes)]
    return {"i": batch["i"], "out": np.array(out, dtype=object)}


class _Analyser:
    """A Ray actor: loads the face models once, then analyses the photos it is given."""

    def __init__(self, settings: Settings):
        from faceledger.faces import FaceEngine

        self.engine = FaceEngine.from_settings(settings)
        self.limits = limits_of(settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = []
        for blob, sha in zip(batch["item"], batch["sha"], strict=True):
            item: SourceItem = pickle.loads(blob)
            try:
                result: Analysis | BaseException = analyse_item(
                    item, str(sha), self.engine, self.limits
                )
            except Exception as exc:  # the item's error travels back as its result
                result = exc
            out.append(pickle.dumps(result))
        return {"i": batch["i"], "out": np.array(out, dtype=object)}


class RayDistributor:
    """The ``ray`` engine: see the module docstring."""

    def __init__(self, settings: Settings, address: str | None = None):
        """Join the cluster at ``address`` (or ``RAY_ADDRESS``), else start a local Ray."""
        address = address or os.environ.get("RAY_ADDRESS") or None
        ray = _import_ray(local=address is None)
        self.ray = ray
        self.settings = settings
        self.workers = settings.worker_count
        self.max_bytes = settings.max_file_bytes
        # Each chunk starts its actors afresh, so chunks are larger than the local pool's.
        self.chunk_size = max(1024, 256 * self.workers)
        self.started = not ray.is_initialized()  # else: a Ray this process started already
        if self.started and address:
            ray.init(address=address, **_init_options())
        elif self.started:
            start_local_ray(self.workers)
        from ray.data import DataContext

        context = DataContext.get_current()
        context.enable_progress_bars = False  # the CLI shows its own
        context.print_on_execution_start = False
        if address:  # the cluster's size, not this machine's, sets the actors
            self.workers = max(1, int(ray.cluster_resources().get("CPU", self.workers)))

    def _dataset(self, rows: list[dict]):
        return self.ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 64)))

    def digests(self, items: list[SourceItem]) -> list[DigestResult]:
        """Hash items in Ray tasks; results back in the items' order."""
        if not items:
            return []
        rows = [{"i": i, "item": pickle.dumps(item)} for i, item in enumerate(items)]
        size = max(1, min(32, len(items) // (4 * self.workers) or 1))
        ds = self._dataset(rows).map_batches(
            _digest_rows, fn_kwargs={"max_bytes": self.max_bytes}, batch_size=size,
            batch_format="numpy",
        )  # fmt: skip
        results: list[DigestResult] = [None] * len(items)  # type: ignore[list-item]
        for row in ds.iter_rows():
            results[int(row["i"])] = pickle.loads(row["out"])
        return results

    def analyse(self, jobs: list[Job]) -> Iterator[tuple[int, Analysis | BaseException]]:
        """Analyse on a pool of actors; results stream back as they finish."""
        if not jobs:
            return
        rows = [{"i": i, "item": pickle.dumps(item), "sha": sha}
                for i, (item, sha) in enumerate(jobs)]  # fmt: skip
        pool = self.ray.data.ActorPoolStrategy(size=min(self.workers, len(jobs)))
        ds = self._dataset(rows).map_batches(
            _Analyser, fn_constructor_args=(self.settings,), batch_size=1,
            batch_format="numpy", compute=pool, num_cpus=1,
        )  # fmt: skip
        for row in ds.iter_rows():
            yield int(row["i"]), pickle.loads(row["out"])

    def close(self) -> None:
        """Stop the local Ray this run started; a joined cluster keeps running."""
        if self.started:
            self.ray.shutdown()
