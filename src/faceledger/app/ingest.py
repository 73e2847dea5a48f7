"""An ingest run: sources → decode + faces (worker processes) → policy → catalog → indexes.

Each photo is committed in one transaction (photo, provenance, faces, vectors, jurisdictions,
audit entry), so a run killed at any moment leaves only whole photos; a rerun skips stored photos
by SHA-256 and adds any provenance rows that are missing, giving the same catalog.

Whatever goes wrong with one item (any exception, a full disk included) becomes an error row
naming it, and the run goes on. Only when the catalog cannot record even that does the run
stop, with a StorageError (a full disk) or LibraryError naming the item. Usage errors (a path
that does not exist, a manifest with no 'path' column) are raised before the run starts, so
they record no run.
"""

from __future__ import annotations

import errno
import fcntl
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from sqlalchemy.exc import OperationalError

from faceledger import audit
from faceledger.app.governance import vault
from faceledger.app.library import Actor, Library
from faceledger.app.placement import Decider, NewFaces, Place, place_faces
from faceledger.config import Settings
from faceledger.errors import FaceledgerError, InputError, LibraryError, StorageError, UsageError
from faceledger.faces import FaceEngine
from faceledger.files import atomic_write
from faceledger.ingest import (
    Digests,
    SourceFailure,
    SourceItem,
    decode_image,
    digests,
    display_text,
    iter_folder,
    iter_manifest,
    iter_warc,
    path_locator,
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
    #: What decoders and readers warned about items that may still have been stored.
    warnings: list[dict[str, str]] = field(default_factory=list)
    #: Whether the user who ran it may read the vault; if not, blocked faces go uncounted.
    vault_visible: bool = True

    def as_dict(self, full: bool = False) -> dict:
        """JSON-ready counters and errors, as the user may see them (``full``: the record's)."""
        if not (full or self.vault_visible):
            # A count shown without vault access never includes blocked faces (DESIGN 1).
            shown = self.as_dict(full=True)
            del shown["faces_blocked"]
            shown["faces"] = shown["faces_searchable"]
            return shown
        return {
            "run_id": self.run_id,
            "photos_new": self.photos_new,
            "photos_already_stored": self.photos_already_stored,
            "sources_added": self.sources_added,
            "faces": self.faces,
            "faces_searchable": self.faces - self.faces_blocked,
            "faces_blocked": self.faces_blocked,
            "errors": self.errors,
            "warnings": self.warnings,
        }


# -- worker side (pure: bytes in, facts and faces out) ---------------------------------------
_ENGINE: FaceEngine | None = None
_LIMITS: tuple[int, int] = (0, 0)


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


def _check_paths(named: Iterable[tuple[str, Path]]) -> None:
    """UsageError for a path given that does not exist (before any run is recorded)."""
    for what, path in named:
        try:
            exists = os.path.lexists(path)
        except (OSError, ValueError):  # ValueError: a NUL byte
            exists = False
        if not exists:
            raise UsageError(f"{what} {display_text(path_locator(path))} does not exist")


def _items(
    folders: Iterable[Path],
    manifests: Iterable[Iterator[SourceItem | SourceFailure]],
    warcs: Iterable[Path],
    max_bytes: int,
) -> Iterator[SourceItem | SourceFailure]:
    return chain(
        chain.from_iterable(iter_folder(p) for p in folders),
        chain.from_iterable(manifests),
        chain.from_iterable(iter_warc(w, max_bytes) for w in warcs),
    )


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def _storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk is full or a file is over the size limit."""
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        return True
    if isinstance(exc, OperationalError):
        orig = exc.orig
        # SQLite: SQLITE_FULL (13, ENOSPC) or SQLITE_IOERR_WRITE (778, e.g. EFBIG over a
        # file-size limit); PostgreSQL: disk_full (53100)
        return getattr(orig, "sqlite_errorcode", None) in (13, 778) or (
            getattr(orig, "sqlstate", None) == "53100"
        )
    return False


def _reason(exc: BaseException) -> str:
    """What went wrong, without a driver's wrapping (``(sqlite3.OperationalError) …``)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(getattr(exc, "orig", None) or exc)


def _item_error(exc: BaseException) -> FaceledgerError:
    """The error row an exception from one item becomes."""
    if isinstance(exc, FaceledgerError):
        return exc
    if _storage_full(exc):
        return StorageError(
            f"cannot store this item: {_reason(exc)} (the disk is full or over a file-size limit); "
            "free space and run the ingest again"
        )
    return InputError(f"{type(exc).__name__}: {exc}")


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
    *,
    encoding: str | None = None,
    root: Path | None = None,
) -> IngestSummary:
    """Ingest every photo of the given sources into ``lib``; failures are recorded, not raised.

    ``encoding``: of manifest rows that are not UTF-8; ``root``: a folder absolute manifest
    paths may also lie in. Raises UsageError (ManifestHeaderError for a manifest unusable as a
    whole) before recording any run, and StorageError if the catalog cannot record a failure.
    """
    lib.authorize(actor, "ingest")
    folders, manifests, warcs = list(folders), list(manifests), list(warcs)
    settings = lib.settings
    _check_paths(
        [("path", p) for p in folders]
        + [("manifest", m) for m in manifests]
        + [("WARC file", w) for w in warcs]
        + ([("root folder", root)] if root is not None else [])
    )
    if root is not None and not root.is_dir():
        raise UsageError(f"the root folder {display_text(path_locator(root))} is not a folder")
    # Header and encoding errors surface now, before a run is recorded; rows are read lazily.
    manifest_items = [iter_manifest(m, encoding=encoding, root=root) for m in manifests]
    with _run_lock(lib.root):
        lib.catalog.interrupt_running_runs()  # an older run still 'running' was killed
        inputs = [str(p) for p in folders] + [f"manifest:{m}" for m in manifests]
        inputs += [f"warc:{w}" for w in warcs]
        run_id = lib.catalog.start_run(inputs, actor.name)
        summary = IngestSummary(run_id, vault_visible=vault.may_read_vault(lib, actor))
        writer = _Writer(lib, actor, summary)
        known = lib.catalog.known_sha256()
        pending: dict[str, _Pending] = {}
        futures: dict[Future, str] = {}
        window = 4 * settings.worker_count

        def warn(name: str, messages: Iterable[str]) -> None:
            messages = list(messages)
            if messages:
                lib.catalog.record_warnings(run_id, name, messages)
                summary.warnings += [{"item": name, "message": m} for m in messages]

        def fail(name: str, exc: BaseException, warnings: Iterable[str] = ()) -> None:
            error = _item_error(exc)
            try:
                lib.catalog.record_error(run_id, name, error)
                warn(name, warnings)
            except Exception as again:  # the catalog itself cannot be written: stop, clearly
                kind = StorageError if _storage_full(again) else LibraryError
                raise kind(
                    f"the run stopped at {name}: {error}; the catalog cannot record that "
                    f"either ({_reason(again)}). Photos stored before it are kept."
                ) from again
            summary.errors.append(
                {"item": name, "error": type(error).__name__, "message": str(error)}
            )

        def finish(future: Future) -> None:
            sha = futures.pop(future)
            job = pending.pop(sha)
            try:
                facts, found = future.result()
            except Exception as exc:  # a crash inside a decoder must not end the run
                for item in job.items:
                    fail(item.name, exc, item.warnings + getattr(exc, "warnings", ()))
                return
            try:
                writer.new_photo(job, facts, found)
            except Exception as exc:  # e.g. a full disk: this photo fails, the run goes on
                for item in job.items:
                    fail(item.name, exc, item.warnings + facts.warnings)
                return
            known.add(sha)
            for item in job.items:
                warn(item.name, item.warnings + facts.warnings)

        def take(item: SourceItem | SourceFailure, pool: ProcessPoolExecutor) -> None:
            if isinstance(item, SourceFailure):
                fail(item.name, item.error)
                return
            try:
                data = item.read(settings.max_file_bytes)
                d = digests(data)
                if d.sha256 in known:
                    writer.known_photo(d.sha256, item)
                    warn(item.name, item.warnings)
                elif d.sha256 in pending:
                    pending[d.sha256].items.append(item)
                else:
                    pending[d.sha256] = _Pending(d, data, [item])
                    futures[pool.submit(_analyse_in_worker, data, d.sha256)] = d.sha256
            except Exception as exc:
                fail(item.name, exc, item.warnings)

        try:
            with ProcessPoolExecutor(
                settings.worker_count, mp_context=_worker_context(),
                initializer=_init_worker, initargs=(settings,),
            ) as pool:  # fmt: skip
                for item in _items(folders, manifest_items, warcs, settings.max_file_bytes):
                    if on_item:
                        on_item(item.name)
                    take(item, pool)
                    while len(futures) >= window:
                        done, _ = wait(futures, return_when=FIRST_COMPLETED)
                        for future in done:
                            finish(future)
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        finish(future)
            lib.sync_indexes()
        except LibraryError:
            _mark_failed(lib, run_id, summary)
            raise
        counters = _counters(summary)
        lib.catalog.finish_run(run_id, counters)
        with lib.writing() as conn:
            audit.append(conn, actor.name, "ingest.run", {"runs": [run_id]}, counters)
    return summary


def _counters(summary: IngestSummary) -> dict[str, int]:
    counters = {k: v for k, v in summary.as_dict(full=True).items() if isinstance(v, int)}
    counters["errors"] = len(summary.errors)
    counters["warnings"] = len(summary.warnings)
    return counters


def _mark_failed(lib: Library, run_id: int, summary: IngestSummary) -> None:
    """Record that a run stopped, if the catalog can still take it (else the next run will)."""
    with suppress(Exception):  # the disk is full: the next run marks it 'interrupted'
        lib.catalog.finish_run(run_id, _counters(summary), status="failed")


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

    def _file_path(self, job: _Pending, facts: PhotoFacts) -> str | None:
        if not self.lib.settings.store_photos:
            return None
        sha = job.digests.sha256
        return f"photos/{sha[:2]}/{sha}.{FORMATS.get(facts.format, 'bin')}"

    def _store_file(self, job: _Pending, relative: str | None) -> None:
        if relative is None:
            return
        target = self.lib.root / relative
        if not target.exists():  # content-addressed: an orphan from a crash is the same file
            atomic_write(target, job.data)

    def _forget_file(self, sha256: str, relative: str) -> None:
        """Remove a file this run wrote when its photo row did not commit."""
        try:
            with self.lib.catalog.engine.connect() as conn:
                if self.lib.catalog.photo_id_by_sha256(conn, sha256) is not None:
                    return  # committed; what failed came after (the index catch-up)
        except Exception:  # the catalog is unreachable: keep the file, a rerun reuses it
            return
        (self.lib.root / relative).unlink(missing_ok=True)

    def new_photo(self, job: _Pending, facts: PhotoFacts, found: list[DetectedFace]) -> None:
        """One transaction for the photo; its file is written last, once the rows are in."""
        lib, catalog, run_id = self.lib, self.lib.catalog, self.summary.run_id
        stored = self._file_path(job, facts)
        provenances = [item.provenance for item in job.items]
        decision = self.decider.decide(facts, provenances, found)
        existed = stored is None or (lib.root / stored).exists()
        added = 0
        try:
            with lib.writing() as conn:
                photo_id = catalog.add_photo(
                    conn, facts, job.digests.md5, job.digests.sha1, stored, run_id
                )
                for prov in provenances:
                    added += int(catalog.add_source(conn, photo_id, prov, run_id))
                catalog.add_jurisdictions(conn, photo_id, decision.photo_jurisdictions)
                places = [Place.VAULT if b else Place.SEARCHABLE for b in decision.blocked]
                face_ids = place_faces(
                    conn, catalog, new=NewFaces(photo_id, found, lib.settings.detector, places)
                )
                for face_id, subject in zip(face_ids, decision.subject, strict=True):
                    for jurisdiction, optout_id, distance in subject:
                        catalog.add_jurisdictions(
                            conn,
                            photo_id,
                            [jurisdiction],
                            face_id=face_id,
                            ref=f"optout:{optout_id}",
                        )
                        self.decider.link_optout(conn, optout_id, face_id, distance)
                audit.append(
                    conn,
                    self.actor.name,
                    "ingest.photo",
                    {"photos": [photo_id], "faces": face_ids},
                    {"sha256": facts.sha256, "blocked_faces": sum(decision.blocked)},
                )
                # Last: rows that cannot be written leave no file behind.
                self._store_file(job, stored)
        except BaseException:
            if not existed and stored is not None:  # the write or the commit failed
                self._forget_file(facts.sha256, stored)
            raise
        self.summary.photos_new += 1
        self.summary.sources_added += added
        self.summary.faces += len(found)
        self.summary.faces_blocked += sum(decision.blocked)
