"""An ingest run: sources → decode + faces (worker processes) → policy → catalog → indexes.

Each photo is committed in one transaction (photo, provenance, faces, vectors, jurisdictions,
audit entry), so a run killed at any moment leaves only whole photos; a rerun skips stored photos
by SHA-256 and adds any provenance rows that are missing, giving the same catalog.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from sqlalchemy import update

from faceledger import audit
from faceledger.app.library import Actor, Library
from faceledger.app.placement import Decider, NewFaces, Place, place_faces
from faceledger.catalog import schema as t
from faceledger.config import Settings
from faceledger.errors import InputError, LibraryError
from faceledger.faces import FaceEngine
from faceledger.files import atomic_write
from faceledger.ingest import (
    Digests,
    SourceFailure,
    SourceItem,
    decode_image,
    digests,
    iter_folder,
    iter_manifest,
    iter_warc,
)
from faceledger.ingest.decode import FORMATS
from faceledger.records import DetectedFace, PhotoFacts

__all__ = ["IngestSummary", "ingest", "analyse_image"]

@dataclass
class IngestSummary:
    """What one run did."""

    run_id: int
    photos_new: int = 0
    photos_already_stored: int = 0
    sources_added: int = 0
    faces: int = 0
    faces_blocked: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready counters and errors."""
        return {
            "run_id": self.run_id,
            "photos_new": self.photos_new,
            "photos_already_stored": self.photos_already_stored,
            "sources_added": self.sources_added,
            "faces": self.faces,
            "faces_searchable": self.faces - self.faces_blocked,
            "faces_blocked": self.faces_blocked,
            "errors": self.errors,
        }


# -- worker side (pure: bytes in, facts and faces out) ---------------------------------------
_ENGINE: FaceEngine | None = None
_LIMITS: tuple[int, int] = (0, 0)


def _init_worker(settings: Settings) -> None:
    global _ENGINE, _LIMITS
    # One BLAS/OpenMP thread per process: the pool already uses every core.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _ENGINE = FaceEngine.from_settings(settings)
    _LIMITS = (settings.max_file_bytes, settings.max_pixels)


def analyse_image(
    data: bytes, sha256: str, engine: FaceEngine, max_bytes: int, max_pixels: int
) -> tuple[PhotoFacts, list[DetectedFace]]:
    """Decode one image and find its faces."""
    rgb, facts = decode_image(data, sha256, max_bytes, max_pixels)
    return facts, engine.faces(rgb)


def _analyse_in_worker(data: bytes, sha256: str) -> tuple[PhotoFacts, list[DetectedFace]]:
    assert _ENGINE is not None
    return analyse_image(data, sha256, _ENGINE, *_LIMITS)


# -- main side -------------------------------------------------------------------------------
@contextmanager
def _run_lock(root: Path) -> Iterator[None]:
    """One ingest at a time per library (a second would race on the index files)."""
    with (root / "ingest.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LibraryError("another ingest is running on this library; wait for it") from exc
        yield


def _items(
    folders: Iterable[Path], manifests: Iterable[Path], warcs: Iterable[Path], max_bytes: int
) -> Iterator[SourceItem | SourceFailure]:
    return chain(
        chain.from_iterable(iter_folder(p) for p in folders),
        chain.from_iterable(iter_manifest(m) for m in manifests),
        chain.from_iterable(iter_warc(w, max_bytes) for w in warcs),
    )


@dataclass
class _Pending:
    digests: Digests
    data: bytes
    items: list[SourceItem]


def ingest(
    lib: Library,
    actor: Actor,
    folders: Iterable[Path] = (),
    manifests: Iterable[Path] = (),
    warcs: Iterable[Path] = (),
    on_item: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Ingest every photo of the given sources into ``lib``; failures are recorded, not raised."""
    lib.authorize(actor, "ingest")
    folders, manifests, warcs = list(folders), list(manifests), list(warcs)
    settings = lib.settings
    with _run_lock(lib.root):
        with lib.writing() as conn:  # an older run still 'running' was killed
            conn.execute(
                update(t.ingest_runs)
                .where(t.ingest_runs.c.status == "running")
                .values(status="interrupted")
            )
        inputs = [str(p) for p in folders] + [f"manifest:{m}" for m in manifests]
        inputs += [f"warc:{w}" for w in warcs]
        run_id = lib.catalog.start_run(inputs, actor.name)
        summary = IngestSummary(run_id)
        writer = _Writer(lib, actor, summary)
        known = lib.catalog.known_sha256()
        pending: dict[str, _Pending] = {}
        futures: dict[Future, str] = {}
        window = 4 * settings.worker_count

        def fail(name: str, error: BaseException) -> None:
            lib.catalog.record_error(run_id, name, error)
            summary.errors.append(
                {"item": name, "error": type(error).__name__, "message": str(error)}
            )

        def finish(future: Future) -> None:
            sha = futures.pop(future)
            job = pending.pop(sha)
            try:
                facts, found = future.result()
            except InputError as exc:
                for item in job.items:
                    fail(item.name, exc)
                return
            except Exception as exc:  # a crash inside a decoder must not end the run
                for item in job.items:
                    fail(item.name, InputError(f"{type(exc).__name__}: {exc}"))
                return
            writer.new_photo(job, facts, found)
            known.add(sha)

        with ProcessPoolExecutor(
            settings.worker_count, initializer=_init_worker, initargs=(settings,)
        ) as pool:
            for item in _items(folders, manifests, warcs, settings.max_file_bytes):
                if on_item:
                    on_item(item.name)
                if isinstance(item, SourceFailure):
                    fail(item.name, item.error)
                    continue
                try:
                    data = item.read(settings.max_file_bytes)
                except InputError as exc:
                    fail(item.name, exc)
                    continue
                d = digests(data)
                if d.sha256 in known:
                    writer.known_photo(d.sha256, item)
                elif d.sha256 in pending:
                    pending[d.sha256].items.append(item)
                else:
                    pending[d.sha256] = _Pending(d, data, [item])
                    futures[pool.submit(_analyse_in_worker, data, d.sha256)] = d.sha256
                while len(futures) >= window:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        finish(future)
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    finish(future)
        lib.sync_indexes()
        counters = {k: v for k, v in summary.as_dict().items() if isinstance(v, int)}
        counters["errors"] = len(summary.errors)
        lib.catalog.finish_run(run_id, counters)
        with lib.writing() as conn:
            audit.append(conn, actor.name, "ingest.run", {"runs": [run_id]}, counters)
    return summary


class _Writer:
    """Commits photos one transaction each; the indexes follow the change log after each."""

    def __init__(self, lib: Library, actor: Actor, summary: IngestSummary):
        self.lib = lib
        self.actor = actor
        self.summary = summary
        self.decider = Decider.for_library(lib)

    def known_photo(self, sha256: str, item: SourceItem) -> None:
        with self.lib.writing() as conn:
            photo_id = self.lib.catalog.photo_id_by_sha256(conn, sha256)
            added = self.lib.catalog.add_source(
                conn, photo_id, item.provenance, self.summary.run_id
            )
            if added:
                # New provenance may tie the photo to a region the policy blocks (or no longer).
                self.decider.reevaluate(conn, self.lib.catalog, [photo_id])
        self.summary.photos_already_stored += 1
        self.summary.sources_added += int(added)

    def _store_file(self, job: _Pending, facts: PhotoFacts) -> str | None:
        if not self.lib.settings.store_photos:
            return None
        sha = job.digests.sha256
        relative = f"photos/{sha[:2]}/{sha}.{FORMATS.get(facts.format, 'bin')}"
        target = self.lib.root / relative
        if not target.exists():  # content-addressed: an orphan from a crash is the same file
            atomic_write(target, job.data)
        return relative

    def new_photo(self, job: _Pending, facts: PhotoFacts, found: list[DetectedFace]) -> None:
        lib, catalog, run_id = self.lib, self.lib.catalog, self.summary.run_id
        stored = self._store_file(job, facts)
        provenances = [item.provenance for item in job.items]
        decision = self.decider.decide(facts, provenances, found)
        with lib.writing() as conn:
            photo_id = catalog.add_photo(
                conn, facts, job.digests.md5, job.digests.sha1, stored, run_id
            )
            for prov in provenances:
                self.summary.sources_added += int(catalog.add_source(conn, photo_id, prov, run_id))
            catalog.add_jurisdictions(conn, photo_id, decision.photo_jurisdictions)
            places = [Place.VAULT if b else Place.SEARCHABLE for b in decision.blocked]
            face_ids = place_faces(
                conn, catalog, new=NewFaces(photo_id, found, lib.settings.detector, places)
            )
            for face_id, subject in zip(face_ids, decision.subject, strict=True):
                for jurisdiction, optout_id, distance in subject:
                    catalog.add_jurisdictions(
                        conn, photo_id, [jurisdiction], face_id=face_id, ref=f"optout:{optout_id}"
                    )
                    self.decider.link_optout(conn, optout_id, face_id, distance)
            audit.append(
                conn,
                self.actor.name,
                "ingest.photo",
                {"photos": [photo_id], "faces": face_ids},
                {"sha256": facts.sha256, "blocked_faces": sum(decision.blocked)},
            )
        self.summary.photos_new += 1
        self.summary.faces += len(found)
        self.summary.faces_blocked += sum(decision.blocked)
