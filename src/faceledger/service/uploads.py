"""Multipart uploads read into memory only, with byte limits enforced while reading.

Starlette's own form parser spools any file over 1 MB to a temporary file on disk; a probe image
must never touch the disk (invariant 2), so the service parses multipart bodies itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from faceledger.errors import ImageTooLargeError, InputError
from faceledger.service.bounds import RequestTooLargeError

__all__ = ["MemoryUpload", "read_multipart", "FIELD_MAX_BYTES"]

#: Largest plain (non-file) form field accepted, in bytes.
FIELD_MAX_BYTES = 1024


@dataclass
class MemoryUpload:
    """A parsed multipart body: files as (name, bytes) in arrival order, and text fields.

    ``documents``: the other file fields asked for (e.g. an authority file), as field name ->
    (file name, bytes).
    """

    files: list[tuple[str, bytes]] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    documents: dict[str, tuple[str, bytes]] = field(default_factory=dict)


class _Collector:
    """Callbacks for python-multipart that keep every part in memory, within limits."""

    def __init__(
        self, file_field: str, text_fields: Iterable[str], max_file_bytes: int, max_files: int,
        document_fields: Mapping[str, int] | None = None,
    ):  # fmt: skip
        self.file_field = file_field
        self.text_fields = frozenset(text_fields)
        self.document_fields = dict(document_fields or {})
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.upload = MemoryUpload()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._filename: str | None = None
        self._data = bytearray()
        self._limit = 0

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name = bytearray()
        self._header_value = bytearray()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._filename = filename.decode("utf-8", "replace") if filename is not None else None
        if self._name == self.file_field:
            if len(self.upload.files) >= self.max_files:
                raise InputError(f"at most {self.max_files} images can be sent in one request")
            self._limit = self.max_file_bytes
        elif self._name in self.text_fields:
            self._limit = FIELD_MAX_BYTES
        elif self._name in self.document_fields and self._name not in self.upload.documents:
            self._limit = self.document_fields[self._name]
        else:
            known = ", ".join([self.file_field, *sorted(self.document_fields),
                               *sorted(self.text_fields)])  # fmt: skip
            raise InputError(f"unexpected form field {self._name!r}; the fields are: {known}")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if len(self._data) + (end - start) > self._limit:
            if self._name == self.file_field:
                raise ImageTooLargeError(
                    f"{self._filename or 'an image'} is over the limit of {self._limit:,} bytes "
                    "(raise FACELEDGER_MAX_FILE_BYTES to accept it)"
                )
            raise InputError(f"form field {self._name!r} is over {self._limit:,} bytes")
        self._data += data[start:end]

    def on_part_end(self) -> None:
        if self._name == self.file_field:
            name = self._filename or f"image {len(self.upload.files) + 1}"
            self.upload.files.append((name, bytes(self._data)))
        elif self._name in self.document_fields:
            self.upload.documents[self._name] = (self._filename or self._name, bytes(self._data))
        else:
            try:
                self.upload.fields[self._name] = self._data.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"form field {self._name!r} is not UTF-8 text") from None
        self._data = bytearray()


def _body_too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"the request body is over the limit of {limit:,} bytes for all images together "
        "(FACELEDGER_REQUEST_MAX_BYTES); send fewer or smaller images"
    )


async def read_multipart(
    content_type: str | None,
    stream: AsyncIterator[bytes],
    *,
    file_field: str,
    text_fields: Iterable[str],
    max_file_bytes: int,
    max_files: int,
    max_body_bytes: int,
    content_length: str | None = None,
    document_fields: Mapping[str, int] | None = None,
) -> MemoryUpload:
    """Parse a multipart/form-data body into memory, within per-file and whole-body byte limits.

    ``max_file_bytes`` bounds each file and ``max_body_bytes`` the whole body. Both are checked
    as each chunk arrives (and a declared ``Content-Length`` over the body limit before any), so
    an oversized upload is refused without being held whole. ``document_fields`` names other
    file fields (one file each) with their own byte limits.
    """
    declared = (content_length or "").strip()
    if declared.isdigit() and int(declared) > max_body_bytes:
        raise _body_too_large(max_body_bytes)
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InputError(
            f"send multipart/form-data with the images in the field {file_field!r} "
            f"(e.g. curl -F {file_field}=@photo.jpg)"
        )
    collector = _Collector(file_field, text_fields, max_file_bytes, max_files, document_fields)
    parser = MultipartParser(boundary, collector.callbacks())
    received = 0
    try:
        async for chunk in stream:
            # Counted here too: a chunked body declares no length, and a declared one may lie.
            received += len(chunk)
            if received > max_body_bytes:
                raise _body_too_large(max_body_bytes)
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise InputError(f"the multipart body is malformed: {exc}") from None
    return collector.upload
