"""What a source yields: an item to ingest, or a failure naming what could not be read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from faceledger.errors import InputError
from faceledger.ingest.files import read_regular_file
from faceledger.ingest.names import display_text
from faceledger.records import Provenance

__all__ = ["SourceItem", "SourceFailure", "Source"]


@dataclass(frozen=True)
class SourceItem:
    """One photo to ingest: its provenance, and where its bytes are (``path``, or ``data``).

    Items travel to worker processes, which read them themselves: a file by ``path``, a WARC
    record by archive ``path`` and ``warc_offset`` (the byte offset of its record).
    """

    provenance: Provenance
    path: Path | None = None
    data: bytes | None = None
    #: Byte offset of the record inside the WARC file at ``path``; None for a plain file.
    warc_offset: int | None = None
    #: How errors and progress name the item when that is not its locator (a WARC record's URI).
    label: str | None = None
    #: What the source's reader printed or warned while reading this item.
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """How errors name this item: printable text, one line."""
        return self.label or display_text(self.provenance.locator)

    def read(self, max_bytes: int) -> bytes:
        """The item's bytes; only a regular file is opened, and never more than ``max_bytes``."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        if self.warc_offset is not None:
            from faceledger.ingest.warc import read_warc_record  # warcio only where needed

            return read_warc_record(self.path, self.warc_offset, max_bytes)
        return read_regular_file(self.path, max_bytes)


@dataclass(frozen=True)
class SourceFailure:
    """An input item that could not even be turned into a SourceItem."""

    name: str
    error: InputError


Source = Iterator[SourceItem | SourceFailure]
