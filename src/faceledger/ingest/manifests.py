"""CSV and JSONL manifests, read row by row: a bad row is a failure of that row alone.

Each physical line is decoded on its own, so one undecodable byte costs one row: a row is read
as UTF-8, else in the manifest's declared ``encoding`` (which must be ASCII-compatible, e.g.
``cp1252`` or ``latin-1``), else it is a failure naming its line. A line longer than
MAX_LINE_BYTES, a field over the csv module's field size limit, a NUL byte or an over-long name
in a path: each is a failure of its row, and every row after it is still read.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from faceledger.errors import ManifestError, ManifestHeaderError, UnsafePathError
from faceledger.ingest.names import path_locator
from faceledger.records import Provenance

__all__ = [
    "MANIFEST_FIELDS",
    "MAX_LINE_BYTES",
    "ManifestHeaderError",
    "manifest_rows",
    "manifest_provenance",
    "website_of",
    "parse_time",
]

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
#: A manifest line longer than this is one failed row (and is never held in memory whole).
MAX_LINE_BYTES = 1 << 20
_REGION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


Row = tuple[int, dict | None, str | None]


def website_of(url: str | None) -> str | None:
    """The host name of a URL, lower case, without ``www.``."""
    if not url:
        return None
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # e.g. an unbalanced '[' in the host
        return None
    return host.removeprefix("www.") or None


def parse_time(text: str, field: str) -> datetime:
    """An ISO 8601 date-time (``Z`` allowed); one without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ManifestError(f"{field} {text!r} is not an ISO 8601 date-time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_encoding(encoding: str | None) -> None:
    """Raise ManifestHeaderError unless ``encoding`` is None or a codec Python knows."""
    if encoding is None:
        return
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise ManifestHeaderError(f"unknown manifest encoding {encoding!r}") from exc


def _lines(handle) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of each physical line; None for a line over MAX_LINE_BYTES."""
    number = 0
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # skip the rest of the line without holding it
                rest = handle.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, None
        else:
            yield number, line


def _decode(raw: bytes, encoding: str | None) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if encoding:
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, ValueError):
            return None
    return None


def _not_decodable(encoding: str | None, what: str = "row") -> str:
    if encoding:
        return f"the {what} is neither UTF-8 nor {encoding}; fix the bytes or the encoding"
    return f"the {what} is not UTF-8; declare the manifest's encoding (e.g. encoding='cp1252')"


def _has_surrogates(text: str) -> bool:
    return any(0xDC80 <= ord(c) <= 0xDCFF for c in text)


def _csv_rows(handle, manifest: Path, encoding: str | None, header_only: bool) -> Iterator[Row]:
    overlong: list[int] = []

    def text_lines() -> Iterator[str]:
        for number, raw in _lines(handle):
            if raw is None:
                overlong.append(number)
                yield "\n"  # an empty line: csv reports nothing, we report the row below
            else:
                # Undecodable bytes survive as surrogates until the row is known.
                yield raw.decode("utf-8", "surrogateescape")

    reader = csv.reader(text_lines())
    header: list[str] | None = None
    last = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if header is None:  # else the next row would be taken for the header
                raise ManifestHeaderError(
                    f"{path_locator(manifest)}: unreadable CSV header: {exc}"
                ) from exc
            last = reader.line_num
            yield last, None, f"unreadable CSV row: {exc}"
            continue
        first, last = last + 1, reader.line_num
        too_long = [n for n in overlong if first <= n <= last]
        if header is None:
            header = _header(manifest, fields, encoding, too_long)
            if header_only:
                return
            continue
        if too_long:
            yield last, None, f"line {too_long[0]} is over {MAX_LINE_BYTES:,} bytes"
            continue
        if not fields:
            continue
        if any(_has_surrogates(f) for f in fields):
            decoded = [_decode(f.encode("utf-8", "surrogateescape"), encoding) for f in fields]
            if any(f is None for f in decoded):
                yield last, None, _not_decodable(encoding)
                continue
            fields = decoded  # type: ignore[assignment]
        if len(fields) > len(header):
            yield last, None, "more fields than the header names"
            continue
        padded = fields + [None] * (len(header) - len(fields))
        yield last, dict(zip(header, padded, strict=True)), None
    if header is None:
        _header(manifest, [], encoding, [])


def _header(manifest: Path, fields: list[str], encoding: str | None, too_long: list[int]):
    where = path_locator(manifest)
    if too_long:
        raise ManifestHeaderError(f"{where}: the header line is over {MAX_LINE_BYTES:,} bytes")
    if any(_has_surrogates(f) for f in fields):
        decoded = [_decode(f.encode("utf-8", "surrogateescape"), encoding) for f in fields]
        if any(f is None for f in decoded):
            raise ManifestHeaderError(f"{where}: {_not_decodable(encoding, 'header')}")
        fields = decoded  # type: ignore[assignment]
    if "path" not in fields:
        raise ManifestHeaderError(
            f"{where}: a CSV manifest needs a header with a 'path' column; "
            f"allowed columns: {', '.join(MANIFEST_FIELDS)}"
        )
    return fields


def _jsonl_rows(handle, encoding: str | None) -> Iterator[Row]:
    for number, raw in _lines(handle):
        if raw is None:
            yield number, None, f"the line is over {MAX_LINE_BYTES:,} bytes"
            continue
        line = _decode(raw, encoding)
        if line is None:
            yield number, None, _not_decodable(encoding)
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, None, f"not valid JSON ({exc.msg})"
            continue
        except RecursionError:
            yield number, None, "not valid JSON (nested too deeply)"
            continue
        if not isinstance(row, dict):
            yield number, None, "a JSONL row must be an object"
            continue
        yield number, row, None


def is_jsonl(manifest: Path) -> bool:
    """Whether ``manifest`` is read as JSON Lines (by its suffix) rather than CSV."""
    return manifest.suffix.lower() in _JSONL_SUFFIXES


def manifest_rows(
    manifest: Path, encoding: str | None = None, header_only: bool = False
) -> Iterator[Row]:
    """(line number, fields, problem) for each data row of a CSV or JSONL manifest.

    Raises ManifestHeaderError for a CSV header without a 'path' column; ``header_only`` stops
    after checking it.
    """
    with manifest.open("rb") as handle:
        if is_jsonl(manifest):
            if not header_only:
                yield from _jsonl_rows(handle, encoding)
        else:
            yield from _csv_rows(handle, manifest, encoding, header_only)


def _name_max(base: Path) -> int:
    try:
        return os.pathconf(base, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _check_text(values: dict) -> None:
    for key, value in values.items():
        for text, what in ((key, "column name"), (value, f"column {key!r}")):
            if isinstance(text, str) and "\x00" in text:
                raise ManifestError(f"the {what} contains a NUL character; remove it")
            if isinstance(text, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in text):
                raise ManifestError(f"the {what} is not valid Unicode (a lone surrogate)")


def manifest_provenance(
    manifest: Path, number: int, row: dict, root: Path | None = None
) -> tuple[Path, Provenance]:
    """Validate one manifest row: the photo's path and its provenance.

    The path may be relative (to the manifest's folder) or absolute; either way it must resolve,
    links followed, inside the manifest's folder or inside ``root``.
    """
    base = manifest.parent.resolve()
    allowed = [base] + ([root.resolve()] if root is not None else [])
    values = {str(k): (None if v is None else str(v)) for k, v in row.items()}
    _check_text(values)
    raw_path = (values.get("path") or "").strip()
    if not raw_path:
        raise ManifestError("the row has no path")
    candidate = Path(raw_path)
    longest = max((len(os.fsencode(part)) for part in candidate.parts), default=0)
    if longest > _name_max(base):
        raise ManifestError(
            f"path {raw_path[:80]!r}... has a name of {longest} bytes; "
            f"file systems allow {_name_max(base)}"
        )
    try:
        path = (base / candidate).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a symlink loop
        raise UnsafePathError(f"path {raw_path!r} cannot be resolved: {exc}") from exc
    if not any(path.is_relative_to(folder) for folder in allowed):
        places = " or ".join(str(folder) for folder in allowed)
        hint = "" if root is not None else " (name another allowed folder with root=)"
        raise UnsafePathError(f"path {raw_path!r} leads outside {places}{hint}")
    unknown = set(values) - set(MANIFEST_FIELDS)
    if unknown:
        raise ManifestError(
            f"unknown column(s) {', '.join(repr(k) for k in sorted(unknown))}; "
            f"allowed: {', '.join(MANIFEST_FIELDS)}"
        )
    values = {k: (v.strip() or None) if v is not None else None for k, v in values.items()}
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
        locator=f"{path_locator(manifest.resolve())}#{number}:{raw_path}",
        source_url=source_url,
        page_url=page_url,
        website=(values.get("website") or "").lower() or website_of(page_url or source_url),
        retrieved_at=parse_time(retrieved, "retrieved_at") if retrieved else None,
        uploader_region=region,
        caption=values.get("caption"),
        subject_ref=values.get("subject_ref"),
    )
