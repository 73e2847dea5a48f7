"""Input sources: folders, CSV/JSONL manifests, WARC archives. Each yields items or failures.

An item is *named* (``SourceItem.name``: error messages, progress) and *located*
(``provenance.locator``: stored, and how a rerun recognises its provenance rows). Both are
text that any catalog column accepts: file paths go through
:func:`faceledger.ingest.names.path_locator` (undecodable bytes as ``\\xNN``, lossless; turn a
locator back into path bytes with :func:`faceledger.ingest.names.locator_bytes`); a WARC record
is named by its WARC-Target-URI and located by archive path and byte offset.
"""

from __future__ import annotations

import stat
from pathlib import Path

from faceledger.errors import InputError, ManifestError, UnsafePathError
from faceledger.ingest.files import check_regular, file_kind
from faceledger.ingest.items import Source, SourceFailure, SourceItem
from faceledger.ingest.manifests import (
    MANIFEST_FIELDS,
    ManifestHeaderError,
    check_encoding,
    manifest_provenance,
    manifest_rows,
    website_of,
)
from faceledger.ingest.names import display_text, path_locator
from faceledger.ingest.warc import iter_warc_records
from faceledger.records import Provenance

__all__ = [
    "SourceItem",
    "SourceFailure",
    "iter_folder",
    "iter_manifest",
    "iter_warc",
    "count_items",
    "IMAGE_SUFFIXES",
    "MANIFEST_FIELDS",
    "ManifestHeaderError",
    "manifest_provenance",
    "website_of",
]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def _name(path: Path) -> str:
    return display_text(path_locator(path))


def iter_folder(root: Path) -> Source:
    """Every image file under ``root`` (recursively, sorted); a single file is its own folder.

    Files that are not regular (FIFOs, devices, sockets), dangling links and links that leave
    the folder become failures naming the file; none of them is opened.
    """
    try:
        root = root.resolve()
        status = root.stat()
    except (OSError, RuntimeError, ValueError):
        yield SourceFailure(_name(root), InputError("no such file or directory"))
        return
    if stat.S_ISREG(status.st_mode):
        yield SourceItem(Provenance("folder", path_locator(root)), path=root)
        return
    if not stat.S_ISDIR(status.st_mode):
        yield SourceFailure(
            _name(root),
            InputError(f"this is a {file_kind(status.st_mode)}, not a folder or a regular file"),
        )
        return
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            inside = path.resolve().is_relative_to(root)
            mode = path.stat().st_mode
        except FileNotFoundError:
            yield SourceFailure(_name(path), InputError("a link to a file that does not exist"))
            continue
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            yield SourceFailure(_name(path), InputError(f"cannot read the file: {exc}"))
            continue
        if not inside:
            yield SourceFailure(_name(path), UnsafePathError("a link that leaves the folder"))
        elif stat.S_ISDIR(mode):
            continue  # a folder named like a photo; rglob walks into it anyway
        elif not stat.S_ISREG(mode):
            try:
                check_regular(mode)
            except InputError as exc:
                yield SourceFailure(_name(path), exc)
        else:
            yield SourceItem(Provenance("folder", path_locator(path)), path=path)


def iter_manifest(
    manifest: Path, *, encoding: str | None = None, root: Path | None = None
) -> Source:
    """One item per manifest row; a bad row becomes a failure naming the file and row.

    Raises ManifestHeaderError (an InputError, ``exit_code`` 2) at once, before any row is
    read, when a CSV manifest has no 'path' column or ``encoding`` is unknown. Rows are UTF-8,
    else ``encoding``. Paths may be absolute if they resolve inside the manifest's folder or
    inside ``root``.
    """
    if not manifest.is_file():
        return iter([SourceFailure(_name(manifest), _missing(manifest))])
    check_encoding(encoding)
    try:
        for _ in manifest_rows(manifest, encoding, header_only=True):
            pass
    except OSError as exc:
        return iter([SourceFailure(_name(manifest), ManifestError(f"unreadable: {exc}"))])
    return _manifest_items(manifest, encoding, root)


def _missing(manifest: Path) -> ManifestError:
    try:
        mode = manifest.stat().st_mode
    except (OSError, ValueError):
        return ManifestError("the manifest file does not exist")
    return ManifestError(f"the manifest is a {file_kind(mode)}, not a regular file")


def _manifest_items(manifest: Path, encoding: str | None, root: Path | None) -> Source:
    where = _name(manifest)
    try:
        for number, row, problem in manifest_rows(manifest, encoding):
            name = f"{where}:{number}"
            if problem:
                yield SourceFailure(name, ManifestError(problem))
                continue
            try:
                path, prov = manifest_provenance(manifest, number, row, root=root)
            except InputError as exc:
                yield SourceFailure(name, exc)
                continue
            yield SourceItem(prov, path=path)
    except OSError as exc:
        yield SourceFailure(where, ManifestError(f"unreadable: {exc}"))


def iter_warc(warc: Path, max_bytes: int) -> Source:
    """Each image response or resource record of a WARC (or ARC) file.

    Items are named by their WARC-Target-URI; a truncated or corrupt archive ends with a
    failure naming the archive and the byte offset reached.
    """
    if not warc.is_file():
        yield SourceFailure(_name(warc), InputError("the WARC file does not exist"))
        return
    yield from iter_warc_records(warc, max_bytes)


def count_items(folders: list[Path], manifests: list[Path], warcs: list[Path]) -> int | None:
    """How many items the sources will yield, where that is cheap to know; else None.

    Folders are listed and manifests' lines counted (a row spanning lines makes this an
    estimate); a WARC would have to be decompressed whole, so any WARC makes it None.
    """
    if warcs:
        return None
    total = 0
    try:
        for root in folders:
            root = root.resolve()
            if not root.is_dir():
                total += 1
                continue
            total += sum(
                1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()
            )
        for manifest in manifests:
            with manifest.open("rb") as handle:
                lines = sum(1 for line in handle if line.strip())
            jsonl = manifest.suffix.lower() in (".jsonl", ".ndjson", ".json")
            total += lines if jsonl else max(0, lines - 1)
    except (OSError, RuntimeError, ValueError):
        return None
    return total
