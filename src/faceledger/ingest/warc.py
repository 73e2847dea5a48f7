"""Image records of WARC and ARC archives, read with warcio; a damaged archive is a failure.

warcio is lenient: a ``.warc.gz`` cut inside a gzip member reads as if it simply ended, corrupt
gzip data in mid-archive is printed to stderr and skipped, and a record shorter than its
Content-Length is a stderr warning. Here each of these ends the archive with a SourceFailure
that names the archive and the byte offset of the record it reached; the records before it are
kept.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import DecompressingBufferedReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeadersParserException

from faceledger.errors import ImageTooLargeError, InputError, ManifestError
from faceledger.ingest.files import check_regular
from faceledger.ingest.items import SourceFailure, SourceItem
from faceledger.ingest.manifests import parse_time, website_of
from faceledger.ingest.names import display_text, path_locator, storable_text
from faceledger.ingest.noise import captured_noise
from faceledger.records import Provenance

__all__ = ["iter_warc_records", "read_warc_record", "DamagedArchive"]

# What warcio raises on malformed bytes: it is a lenient parser with no exception root of its own.
_WARCIO_ERRORS = (
    ArchiveLoadFailed,
    StatusAndHeadersParserException,
    OSError,
    ValueError,
    EOFError,
    zlib.error,
    IndexError,
    KeyError,
    TypeError,
    AttributeError,
)


class DamagedArchive(Exception):
    """Raised inside the iterator: the archive is truncated or corrupt at ``offset``."""

    def __init__(self, offset: int, problem: str):
        super().__init__(problem)
        self.offset = offset
        self.problem = problem


class _StrictReader(DecompressingBufferedReader):
    def _decompress(self, data):
        if self.decompressor and data and self.num_block_read:
            try:
                return self.decompressor.decompress(data)
            except zlib.error as exc:
                # warcio would print this and carry on as if the member had ended.
                raise DamagedArchive(-1, f"corrupt compressed data ({exc})") from exc
        return super()._decompress(data)


class _StrictIterator(ArchiveIterator):
    """warcio's iterator, raising DamagedArchive where warcio would warn or stop quietly."""

    def __init__(self, fileobj, **kwargs):
        super().__init__(fileobj, **kwargs)
        self.reader = _StrictReader(self.fh, block_size=self.reader.block_size)
        #: Offset of the record last found followed by stray bytes instead of a blank line.
        self.misaligned: int | None = None

    def read_to_end(self, record=None):
        if self.record and not self.member_info:
            start = self.offset
            try:
                super().read_to_end(record)
            except DamagedArchive as exc:
                raise DamagedArchive(start, exc.problem) from exc
            missing = getattr(self.record.raw_stream, "limit", 0)
            if missing > 0:
                raise DamagedArchive(
                    start, f"the archive ends inside a record ({missing:,} bytes missing)"
                )
        else:
            super().read_to_end(record)

    def _consume_blanklines(self):
        # warcio's own version, less its stderr warning: note the record instead.
        empty = 0
        first = True
        while True:
            line = self.reader.readline()
            if not line:
                return None, empty
            if not line.rstrip() or first:
                empty += len(line)
                if line.rstrip():
                    self.misaligned = self.offset
                first = False
                continue
            return line, empty

    def close(self):
        decompressor = self.reader.decompressor if self.reader else None
        started = self.fh.tell() > 0  # an empty file is no archive, but not a cut one
        if decompressor is not None and started and not getattr(decompressor, "eof", True):
            offset = self.offset
            super().close()
            raise DamagedArchive(offset, "the archive ends inside a gzip member (truncated?)")
        super().close()


def _content_type(record) -> str:
    headers = record.http_headers if record.rec_type == "response" else record.rec_headers
    value = (headers.get_header("Content-Type") if headers else None) or ""
    return value.split(";")[0].strip().lower()


def _failure(name: str, error: InputError, noise: list[str]):
    if noise:
        error.args = (f"{error} (warcio said: {'; '.join(noise)[:300]})",)
    return SourceFailure(name, error)


def iter_warc_records(warc: Path, max_bytes: int) -> Iterator:
    """SourceItem/SourceFailure for each image response or resource record of ``warc``."""
    archive = warc.resolve()
    where = path_locator(archive)
    try:
        with warc.open("rb") as stream:
            check_regular(os.fstat(stream.fileno()).st_mode)
            records = _StrictIterator(stream, arc2warc=True)
            iterator = iter(records)
            seen = misaligned = 0
            while True:
                with captured_noise() as noise:
                    result = _next_item(records, iterator, archive, where, max_bytes)
                if result is None:
                    if not seen:  # not even a warcinfo record: this is no archive
                        yield SourceFailure(
                            where, InputError("no WARC or ARC record found (is it a WARC file?)")
                        )
                    return
                seen += 1
                if records.misaligned is not None and misaligned >= _MAX_MISALIGNED:
                    yield SourceFailure(
                        where,
                        InputError(
                            f"damaged archive at byte {records.misaligned:,}: "
                            f"{misaligned + 1} records not followed by a blank line "
                            "(is it a WARC file?); the records before it were read"
                        ),
                    )
                    return
                if records.misaligned is not None:  # a record before this one, not an image
                    misaligned += 1
                    yield SourceFailure(
                        f"{where}#{records.misaligned}",
                        InputError(
                            "the record is not followed by a blank line: its Content-Length is "
                            "probably wrong (the records after it are still read)"
                        ),
                    )
                    records.misaligned = None
                if isinstance(result, SourceFailure):
                    yield _failure(result.name, result.error, noise)
                    if result.name == where:
                        return  # the archive itself is damaged: nothing after it can be trusted
                    continue
                if result is _SKIP:
                    continue
                yield SourceItem(
                    result.provenance,
                    path=result.path,
                    warc_offset=result.warc_offset,
                    label=result.label,
                    warnings=tuple(noise),
                )
    except InputError as exc:
        yield SourceFailure(where, exc)
    except OSError as exc:
        yield SourceFailure(where, InputError(f"cannot read the WARC: {exc.strerror or exc}"))


_SKIP = object()
#: After this many records with a wrong Content-Length the rest of the archive is not read.
_MAX_MISALIGNED = 3


def _next_item(records: _StrictIterator, iterator, archive: Path, where: str, max_bytes: int):
    """The next record as an item, a failure, _SKIP (not an image), or None at the end."""
    try:
        try:
            record = next(iterator)
        except StopIteration:
            return None
        offset = records.offset
        if record.rec_type is None:  # warcio's way of saying the headers made no sense
            return SourceFailure(
                f"{where}#{offset}", InputError("malformed WARC record: no WARC-Type header")
            )
        if record.rec_type not in ("response", "resource"):
            return _SKIP
        if not _content_type(record).startswith("image/"):
            return _SKIP
        status = record.http_headers.get_statuscode() if record.http_headers else "200"
        if status and status != "200":
            return _SKIP  # redirects and errors carry no photo
        # Read here only to check the record whole and its size; a worker reads it again by offset.
        size = len(record.content_stream().read(max_bytes + 1))
        # Only after reading: asking for the offset makes warcio skip the payload.
        earlier, records.misaligned = records.misaligned, None  # the loop reports that one
        record_offset = records.get_record_offset()
        locator = f"{where}#{record_offset}"
        misaligned, records.misaligned = records.misaligned, earlier
    except DamagedArchive as exc:
        at = exc.offset if exc.offset >= 0 else max(records.offset, 0)
        return SourceFailure(
            where,
            InputError(
                f"damaged archive at byte {at:,}: {exc.problem}; the records before it were read"
            ),
        )
    except _WARCIO_ERRORS as exc:
        text = " ".join(str(exc).split())[:300]  # warcio's messages span lines of advice
        at = max(records.offset, 0)
        return SourceFailure(
            where,
            InputError(
                f"malformed WARC at byte {at:,}: {type(exc).__name__}: {text}; "
                "the records before it were read"
            ),
        )
    uri = record.rec_headers.get_header("WARC-Target-URI")
    uri = storable_text(uri) if uri else None
    label = display_text(uri) if uri else None
    if misaligned is not None:
        return SourceFailure(
            label or locator,
            InputError(
                f"the record at {locator} is not followed by a blank line: its Content-Length "
                "is probably wrong, so its bytes may be cut short or padded"
            ),
        )
    if size > max_bytes:
        return SourceFailure(
            label or locator,
            ImageTooLargeError(
                f"the record at {locator} is over {max_bytes:,} bytes "
                "(raise FACELEDGER_MAX_FILE_BYTES to accept it)"
            ),
        )
    date = record.rec_headers.get_header("WARC-Date")
    try:
        retrieved = parse_time(date, "WARC-Date") if date else None
    except ManifestError:
        retrieved = None
    prov = Provenance(
        kind="warc",
        locator=locator,
        source_url=uri,
        website=website_of(uri),
        retrieved_at=retrieved,
    )
    return SourceItem(prov, path=archive, warc_offset=record_offset, label=label)


def read_warc_record(warc: Path, offset: int, max_bytes: int) -> bytes:
    """The payload of the image record starting at byte ``offset`` of ``warc``.

    This is how a worker reads a record the driver found: by seeking, not by being handed bytes.
    Raises InputError when the record cannot be read there (the archive changed since?) and
    ImageTooLargeError over ``max_bytes``.
    """
    try:
        with warc.open("rb") as stream:
            check_regular(os.fstat(stream.fileno()).st_mode)
            stream.seek(offset)
            record = next(iter(ArchiveIterator(stream, arc2warc=True)))
            if record.rec_type not in ("response", "resource"):
                raise InputError(
                    f"no image record at byte {offset:,} of the WARC (was it changed?)"
                )
            body = record.content_stream().read(max_bytes + 1)
    except StopIteration as exc:
        raise InputError(f"no record at byte {offset:,} of the WARC (was it changed?)") from exc
    except InputError:
        raise
    except _WARCIO_ERRORS as exc:
        raise InputError(
            f"cannot read the WARC record at byte {offset:,}: {type(exc).__name__}: {exc}"
        ) from exc
    if len(body) > max_bytes:
        raise ImageTooLargeError(
            f"the record at byte {offset:,} is over {max_bytes:,} bytes "
            "(raise FACELEDGER_MAX_FILE_BYTES to accept it)"
        )
    return body
