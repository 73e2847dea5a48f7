"""Input sources: folders, CSV/JSONL manifests, WARC archives. Each yields items or failures."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from faceledger.errors import ImageTooLargeError, InputError, ManifestError, UnsafePathError
from faceledger.records import Provenance

__all__ = [
    "SourceItem",
    "SourceFailure",
    "iter_folder",
    "iter_manifest",
    "iter_warc",
    "IMAGE_SUFFIXES",
    "MANIFEST_FIELDS",
    "website_of",
]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
MANIFEST_FIELDS = (
    "path",
    "source_url",
    "page_url",
    "website",
    "retrieved_at",
    "uploader_region",
    "caption",
    "subject_ref",
)
_REGION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


@dataclass(frozen=True)
class SourceItem:
    """One photo to ingest: its provenance, and its bytes (read now, or from ``path`` later)."""

    provenance: Provenance
    path: Path | None = None
    data: bytes | None = None

    @property
    def name(self) -> str:
        """How errors name this item."""
        return self.provenance.locator

    def read(self, max_bytes: int) -> bytes:
        """The item's bytes, refusing files over ``max_bytes`` before reading them."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        try:
            size = self.path.stat().st_size
            if size > max_bytes:
                raise ImageTooLargeError(
                    f"{size:,} bytes is over the limit of {max_bytes:,} "
                    "(raise FACELEDGER_MAX_FILE_BYTES to accept it)"
                )
            return self.path.read_bytes()
        except FileNotFoundError as exc:
            raise InputError("the file does not exist") from exc
        except IsADirectoryError as exc:
            raise InputError("this is a directory, not a file") from exc
        except PermissionError as exc:
            raise InputError("permission denied reading the file") from exc


@dataclass(frozen=True)
class SourceFailure:
    """An input item that could not even be turned into a SourceItem."""

    name: str
    error: InputError


Source = Iterator[SourceItem | SourceFailure]


def website_of(url: str | None) -> str | None:
    """The host name of a URL, lower case, without ``www.``."""
    if not url:
        return None
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.") or None


def iter_folder(root: Path) -> Source:
    """Every image file under ``root`` (recursively, sorted); a single file is its own folder."""
    root = root.resolve()
    if root.is_file():
        yield SourceItem(Provenance("folder", str(root)), path=root)
        return
    if not root.is_dir():
        yield SourceFailure(str(root), InputError("no such file or directory"))
        return
    real_root = root.resolve()
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        if not path.resolve().is_relative_to(real_root):
            yield SourceFailure(str(path), UnsafePathError("a link that leaves the folder"))
        elif path.is_file():
            yield SourceItem(Provenance("folder", str(path)), path=path)


def _parse_time(text: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ManifestError(f"{field} {text!r} is not an ISO 8601 date-time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _manifest_rows(manifest: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """(row number, fields, error) for each data row of a CSV or JSONL manifest."""
    with manifest.open(encoding="utf-8-sig", newline="") as handle:
        if manifest.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, None, f"not valid JSON ({exc.msg})"
                    continue
                if not isinstance(row, dict):
                    yield number, None, "a JSONL row must be an object"
                    continue
                yield number, row, None
        else:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise ManifestError(
                    f"{manifest}: a CSV manifest needs a header with a 'path' column; "
                    f"allowed columns: {', '.join(MANIFEST_FIELDS)}"
                )
            for row in reader:
                if None in row:
                    yield reader.line_num, None, "more fields than the header names"
                    continue
                yield reader.line_num, row, None


def manifest_provenance(manifest: Path, number: int, row: dict) -> tuple[Path, Provenance]:
    """Validate one manifest row: the photo's path (inside the manifest's folder) and provenance."""
    base = manifest.parent.resolve()
    raw_path = str(row.get("path") or "").strip()
    if not raw_path:
        raise ManifestError("the row has no path")
    candidate = Path(raw_path)
    if candidate.is_absolute() or ".." in candidate.parts:
        raise UnsafePathError(f"path {raw_path!r} must be relative and stay inside {base}")
    path = (base / candidate).resolve()
    if not path.is_relative_to(base):
        raise UnsafePathError(f"path {raw_path!r} leads outside {base}")
    unknown = set(row) - set(MANIFEST_FIELDS)
    if unknown:
        raise ManifestError(
            f"unknown column(s) {', '.join(sorted(unknown))}; allowed: {', '.join(MANIFEST_FIELDS)}"
        )
    values = {k: (str(v).strip() or None) if v is not None else None for k, v in row.items()}
    region = values.get("uploader_region")
    if region:
        region = region.upper()
        if not _REGION.match(region):
            raise ManifestError(f"uploader_region {region!r} is not an ISO 3166 code like US-IL")
    retrieved = values.get("retrieved_at")
    source_url = values.get("source_url")
    page_url = values.get("page_url")
    return path, Provenance(
        kind="manifest",
        locator=f"{manifest.resolve()}#{number}:{raw_path}",
        source_url=source_url,
        page_url=page_url,
        website=(values.get("website") or "").lower() or website_of(page_url or source_url),
        retrieved_at=_parse_time(retrieved, "retrieved_at") if retrieved else None,
        uploader_region=region,
        caption=values.get("caption"),
        subject_ref=values.get("subject_ref"),
    )


def iter_manifest(manifest: Path) -> Source:
    """One item per manifest row; a bad row becomes a failure naming the file and row."""
    if not manifest.is_file():
        yield SourceFailure(str(manifest), ManifestError("the manifest file does not exist"))
        return
    try:
        for number, row, problem in _manifest_rows(manifest):
            name = f"{manifest}:{number}"
            if problem:
                yield SourceFailure(name, ManifestError(problem))
                continue
            try:
                path, prov = manifest_provenance(manifest, number, row)
            except InputError as exc:
                yield SourceFailure(name, exc)
                continue
            yield SourceItem(prov, path=path)
    except (ManifestError, UnicodeDecodeError, csv.Error) as exc:
        error = exc if isinstance(exc, ManifestError) else ManifestError(f"unreadable: {exc}")
        yield SourceFailure(str(manifest), error)


def iter_warc(warc: Path, max_bytes: int) -> Source:
    """Each image response or resource record of a WARC (or ARC) file."""
    if not warc.is_file():
        yield SourceFailure(str(warc), InputError("the WARC file does not exist"))
        return
    where = str(warc.resolve())
    try:
        with warc.open("rb") as stream:
            records = ArchiveIterator(stream, arc2warc=True)
            for record in records:
                if record.rec_type is None:  # warcio's way of saying the headers made no sense
                    yield SourceFailure(
                        f"{where}#{records.get_record_offset()}",
                        InputError("malformed WARC record: no WARC-Type header"),
                    )
                    continue
                if record.rec_type not in ("response", "resource"):
                    continue
                content_type = _content_type(record)
                if not content_type.startswith("image/"):
                    continue
                status = record.http_headers.get_statuscode() if record.http_headers else "200"
                if status and status != "200":
                    continue  # redirects and errors carry no photo
                body = record.content_stream().read(max_bytes + 1)
                # Only after reading: asking for the offset makes warcio skip the payload.
                name = f"{where}#{records.get_record_offset()}"
                uri = record.rec_headers.get_header("WARC-Target-URI")
                if len(body) > max_bytes:
                    yield SourceFailure(
                        name, ImageTooLargeError(f"record over {max_bytes:,} bytes")
                    )
                    continue
                date = record.rec_headers.get_header("WARC-Date")
                try:
                    retrieved = _parse_time(date, "WARC-Date") if date else None
                except ManifestError:
                    retrieved = None
                prov = Provenance(
                    kind="warc",
                    locator=name,
                    source_url=uri,
                    website=website_of(uri),
                    retrieved_at=retrieved,
                )
                yield SourceItem(prov, data=body)
    except ArchiveLoadFailed as exc:
        # warcio's messages span lines of advice; keep them on one line.
        yield SourceFailure(where, InputError(f"malformed WARC: {' '.join(str(exc).split())}"))
    except (OSError, ValueError, EOFError) as exc:
        yield SourceFailure(where, InputError(f"cannot read the WARC: {exc}"))


def _content_type(record) -> str:
    headers = record.http_headers if record.rec_type == "response" else record.rec_headers
    value = (headers.get_header("Content-Type") if headers else None) or ""
    return value.split(";")[0].strip().lower()
