"""An ingest run: sources → read, hash, decode, detect, embed (workers) → policy → catalog.

The driver hands workers *where* each item is (a path, or a WARC file and record offset), never
its bytes: a distributor (``faceledger.ingest.distribute``: the local process pool, or Ray with
``engine="ray"``) runs the pure stages of ``faceledger.ingest.work`` on them. Items go in chunks:
the workers hash a chunk, the driver asks the catalog which of those hashes it holds (one query
per chunk, so no set of every hash is kept), and the new ones are analysed; results come back to
the one writer here, which commits each photo in one transaction (photo, provenance, faces,
vectors, jurisdictions, audit entry) and, once its rows are written, makes the library's copy
of the photo from the source after checking its SHA-256 again. So a run killed at any moment
leaves only whole photos; a rerun skips stored photos by SHA-256 and adds any provenance rows
that are missing, giving the same catalog.

Whatever goes wrong with one item (any exception, a full disk included) becomes an error row
naming it, and the run goes on. Only when the catalog cannot record even that does the run
stop, with a StorageError (a full disk) or LibraryError naming the item. Usage errors (a path
that does not exist, a manifest with no 'path' column) are raised before the run starts, so
they record no run.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import importlib.util
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path

from sqlalchemy.exc import OperationalError

from faceledger import audit
from faceledger.app.governance import vault
from faceledger.app.library import Actor, Library
from faceledger.app.placement import Decider, NewFaces, Place, place_faces
from faceledger.catalog import vault_counts
from faceledger.errors import (
    ConfigError,
    FaceledgerError,
    InputError,
    LibraryError,
    StorageError,
    UsageError,
)
from faceledger.files import atomic_write
from faceledger.ingest import (
    Digests,
    SourceFailure,
    SourceItem,
    count_items,
    display_text,
    iter_folder,
    iter_manifest,
    iter_warc,
    path_locator,
)
from faceledger.ingest.decode import FORMATS
from faceledger.ingest.distribute import ENGINES, Distributor, open_distributor
from faceledger.ingest.work import STAGES, Analysis, changed_error
from faceledger.records import DetectedFace, PhotoFacts

__all__ = ["ENGINES", "IngestSummary", "ingest"]


@dataclass
class IngestSummary:
    """What one run did, and how long each stage took."""

    run_id: int
    photos_new: int = 0
    photos_already_stored: int = 0
    sources_added: int = 0
    faces: int = 0
    faces_blocked: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    #: What decoders and readers warned about items that may still have been stored.
    warnings: list[dict[str, str]] = field(default_factory=list)
    engine: str = "local"
    #: Whether the user who ran it may read the vault; if not, blocked faces go uncounted.
    vault_visible: bool = True
    #: Items the sources held, where cheap to count (None: a WARC, not counted ahead).
    total: int | None = None
    #: Items handled so far (stored, already stored or failed).
    items_done: int = 0
    #: Seconds per stage, summed over workers (read includes hashing; write is the driver's).
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    started: float = field(default_factory=time.monotonic, repr=False)
    wall_s: float = 0.0

    @property
    def photos(self) -> int:
        """Photos handled: new and already stored."""
        return self.photos_new + self.photos_already_stored

    def elapsed(self) -> float:
        """Seconds since the run started (its wall time once it finished)."""
        return self.wall_s or (time.monotonic() - self.started)

    def as_dict(self, full: bool = False) -> dict:
        """JSON-ready counters, errors, rates and time per stage, as the user may see them
        (``full``: the record's)."""
        if not (full or self.vault_visible):
            # A count shown without vault access never includes blocked faces (DESIGN 1).
            shown = self.as_dict(full=True)
            del shown["faces_blocked"]
            shown["faces"] = shown["faces_searchable"]
            return shown
        wall = self.elapsed()
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
            "engine": self.engine,
            "wall_s": round(wall, 3),
            "photos_per_s": round(self.photos / wall, 3) if wall else None,
            "faces_per_s": round(self.faces / wall, 3) if wall else None,
            "stage_seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


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
    items: list[SourceItem]


ItemCallback = Callable[[str, IngestSummary], None]


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(items, size)):
        yield chunk


def ingest(
    lib: Library,
    actor: Actor,
    folders: Iterable[Path] = (),
    manifests: Iterable[Path] = (),
    warcs: Iterable[Path] = (),
    on_item: ItemCallback | None = None,
    *,
    encoding: str | None = None,
    root: Path | None = None,
    engine: str | None = None,
    ray_address: str | None = None,
    on_total: Callable[[int | None], None] | None = None,
) -> IngestSummary:
    """Ingest every photo of the given sources into ``lib``; failures are recorded, not raised.

    ``encoding``: of manifest rows that are not UTF-8; ``root``: a folder absolute manifest
    paths may also lie in. ``engine``: ``local`` (a process pool) or ``ray`` (Ray Data; a local
    Ray, or the cluster at ``ray_address``); None: the settings' ``ingest_engine`` and
    ``ray_address``. ``on_total`` is told how many items there are
    (None: not cheap to count) before the first; ``on_item`` is called as each item is done,
    with the summary so far. Raises UsageError (ManifestHeaderError for a manifest unusable as
    a whole) before recording any run, and StorageError if the catalog cannot record a failure.
    """
    lib.authorize(actor, "ingest")
    engine = engine or lib.settings.ingest_engine
    ray_address = ray_address or lib.settings.ray_address or None
    if engine not in ENGINES:
        raise UsageError(f"unknown ingest engine {engine!r}: use one of {', '.join(ENGINES)}")
    if engine == "ray" and importlib.util.find_spec("ray") is None:  # before a run is recorded
        raise ConfigError(
            "the ray engine needs Ray: install faceledger's 'ray' extra "
            "(pip install 'faceledger[ray]'), or use the local engine"
        )
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
        summary = IngestSummary(
            run_id, engine=engine, vault_visible=vault.may_read_vault(lib, actor)
        )
        summary.total = count_items(folders, manifests, warcs)
        if on_total:
            on_total(summary.total)
        writer = _Writer(lib, actor, summary)

        def done(name: str) -> None:
            summary.items_done += 1
            if on_item:
                on_item(name, summary)

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

        def finish(job: _Pending, result: Analysis | BaseException) -> None:
            if isinstance(result, BaseException):
                for item in job.items:
                    fail(item.name, result, item.warnings + getattr(result, "warnings", ()))
                    done(item.name)
                return
            for stage, seconds in result.seconds.items():
                summary.seconds[stage] += seconds
            try:
                writer.new_photo(job, result.facts, result.faces)
            except Exception as exc:  # e.g. a full disk: this photo fails, the run goes on
                for item in job.items:
                    fail(item.name, exc, item.warnings + result.facts.warnings)
                    done(item.name)
                return
            for item in job.items:
                warn(item.name, item.warnings + result.facts.warnings)
                done(item.name)

        def run_chunk(chunk: list[SourceItem | SourceFailure], workers: Distributor) -> None:
            items: list[SourceItem] = []
            for entry in chunk:
                if isinstance(entry, SourceFailure):
                    fail(entry.name, entry.error)
                    done(entry.name)
                else:
                    items.append(entry)
            hashed = workers.digests(items)
            known = lib.catalog.known_sha256_among(
                r[0].sha256 for r in hashed if not isinstance(r, BaseException)
            )
            pending: dict[str, _Pending] = {}
            for item, result in zip(items, hashed, strict=True):
                if isinstance(result, BaseException):
                    fail(item.name, result, item.warnings + getattr(result, "warnings", ()))
                    done(item.name)
                    continue
                d, seconds = result
                summary.seconds["read"] += seconds
                if d.sha256 in pending:  # the same photo twice in one chunk: analysed once
                    pending[d.sha256].items.append(item)
                    continue
                if d.sha256 not in known:
                    pending[d.sha256] = _Pending(d, [item])
                    continue
                try:
                    writer.known_photo(d.sha256, item)
                    warn(item.name, item.warnings)
                except Exception as exc:
                    fail(item.name, exc, item.warnings)
                done(item.name)
            jobs = list(pending.values())
            for index, outcome in workers.analyse([(j.items[0], j.digests.sha256) for j in jobs]):
                finish(jobs[index], outcome)

        try:
            workers = open_distributor(engine, settings, ray_address)
            try:
                sources = _items(folders, manifest_items, warcs, settings.max_file_bytes)
                for chunk in _chunks(sources, workers.chunk_size):
                    run_chunk(chunk, workers)
            finally:
                workers.close()
            lib.sync_indexes()
            vault_counts.catch_up(lib.catalog.engine)  # so the next count need not
        except LibraryError:
            _mark_failed(lib, run_id, summary)
            raise
        summary.wall_s = time.monotonic() - summary.started
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
        """Add ``item``'s provenance to the stored photo with ``sha256``."""
        started = time.perf_counter()
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
        self.summary.seconds["write"] += time.perf_counter() - started

    def _file_path(self, job: _Pending, facts: PhotoFacts) -> str | None:
        if not self.lib.settings.store_photos:
            return None
        sha = job.digests.sha256
        return f"photos/{sha[:2]}/{sha}.{FORMATS.get(facts.format, 'bin')}"

    def _store_file(self, job: _Pending, relative: str | None) -> None:
        """The library's copy, made from the source once its SHA-256 is checked again."""
        if relative is None:
            return
        target = self.lib.root / relative
        if target.exists():  # content-addressed: an orphan from a crash is the same file
            return
        for item in job.items:  # any source naming these bytes will do
            try:
                data = item.read(self.lib.settings.max_file_bytes)
            except InputError:
                continue
            if hashlib.sha256(data).hexdigest() == job.digests.sha256:
                atomic_write(target, data)
                return
        raise changed_error()

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
        started = time.perf_counter()
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
        self.summary.seconds["write"] += time.perf_counter() - started
