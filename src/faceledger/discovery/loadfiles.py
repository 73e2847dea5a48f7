"""Load files for review platforms: Concordance DAT, Opticon OPT, and Bates numbers.

Two profiles (:data:`PROFILES`) say how a DAT is delimited:

* ``relativity`` (the default): Relativity's import defaults, columns split by ASCII 020 (DC4,
  U+0014), quoted by ``þ`` (254), line breaks inside values written as ``®`` (174), so each
  record is one physical line;
* ``concordance-unicode``: columns split by ``¶`` (U+00B6), quoted by ``þ``, line breaks kept
  inside the qualifier.

DAT as written here (and what :func:`parse_dat` reads):

* UTF-8 with a byte-order mark (what Relativity and most current platforms expect of a
  Unicode DAT; the parser also accepts a file without one);
* a header row of field names, then one record per document, each ended by CRLF;
* every value wrapped in the text qualifier ``þ`` (U+00FE), values separated by the profile's
  delimiter; the parser finds the delimiter (DC4 or ``¶``) in the header row;
* a ``þ`` inside a value is doubled (``þþ``), as CSV doubles its quote; because every value is
  qualified, a ``¶`` inside a value is plain text;
* a CR or LF inside a value is written as is, inside the qualifier, so every string round-trips
  exactly. Platforms that want one physical line per record use the Concordance newline
  placeholder ``®`` (U+00AE) instead: pass ``newline_marker=NEWLINE_MARKER`` to write and to
  parse. That mode refuses a value that already contains ``®``, since a reader could not tell it
  from a line break, and line breaks come back as LF whatever they were.

Values are text. :func:`dat_value` turns Python values into that text (None -> empty,
bool -> Y/N, datetime -> ``YYYY-MM-DD HH:MM:SS`` in UTC, which date fields of review platforms
map; list -> ``;`` joined, no space); parsing gives strings back.

OPT (Opticon image load file): no header, comma separated, no quoting, CRLF, one line per page:
``ImageID,Volume,ImagePath,DocBreak,FolderBreak,BoxBreak,PageCount``. It has no escaping, so
values with commas or line breaks are refused rather than written ambiguously.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from faceledger.errors import BadOptionError, LoadFileError

__all__ = [
    "DAT_FIELDS",
    "DATE_FORMAT",
    "PROFILES",
    "DEFAULT_PROFILE",
    "LoadFileProfile",
    "profile",
    "dat_date",
    "QUALIFIER",
    "DELIMITER",
    "NEWLINE_MARKER",
    "LoadFileError",
    "DatFile",
    "OptRow",
    "bates_number",
    "parse_bates",
    "dat_value",
    "dat_text",
    "write_dat",
    "parse_dat",
    "read_dat",
    "read_dat_as_written",
    "opt_text",
    "write_opt",
    "parse_opt",
    "read_opt",
]

DAT_FIELDS: tuple[str, ...] = (
    "BEGBATES",
    "ENDBATES",
    "FILENAME",
    "FILEEXT",
    "FILESIZE",
    "CUSTODIAN",
    "PRODVOL",
    "MD5HASH",
    "SHA1HASH",
    "SHA256HASH",
    "NATIVEPATH",
    "DATETAKEN",
    "GPS_LAT",
    "GPS_LON",
    "SOURCE_URL",
    "PAGE_URL",
    "WEBSITE",
    "RETRIEVED_AT",
    "VECTOR_COLLECTED_AT",
    "JURISDICTIONS",
    "BLOCKED",
    "REDACTIONS",
)
QUALIFIER = "\u00fe"  # þ
DELIMITER = "\u00b6"  # ¶
OLD_DELIMITER = "\x14"  # DC4 (ASCII 020), the byte Concordance itself writes for ¶
NEWLINE_MARKER = "\u00ae"  # ®
#: How every date in a load file is written: UTC, to the second (no offset, no fraction).
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
_BOM = "\ufeff"
_BATES_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class LoadFileProfile:
    """How a DAT is delimited: its column delimiter and its newline marker (None: kept)."""

    name: str
    delimiter: str
    newline_marker: str | None
    description: str


#: The DAT profiles by name; ``relativity`` is Relativity's import defaults.
PROFILES: dict[str, LoadFileProfile] = {
    "relativity": LoadFileProfile(
        "relativity", OLD_DELIMITER, NEWLINE_MARKER,
        "columns split by ASCII 020, quoted by þ (254), line breaks in values as ® (174)",
    ),
    "concordance-unicode": LoadFileProfile(
        "concordance-unicode", DELIMITER, None,
        "columns split by ¶ (U+00B6), quoted by þ, line breaks kept inside the quotes",
    ),
}  # fmt: skip
DEFAULT_PROFILE = "relativity"


def profile(name: str) -> LoadFileProfile:
    """The profile called ``name``; LoadFileError naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise BadOptionError(
            f"unknown load-file profile {name!r}: choose one of {', '.join(PROFILES)}"
        ) from None


@dataclass(frozen=True)
class DatFile:
    """A parsed DAT: its field names in file order and one dict per record."""

    fields: tuple[str, ...]
    rows: list[dict[str, str]]


@dataclass(frozen=True)
class OptRow:
    """One page line of an Opticon file."""

    image_id: str
    volume: str
    image_path: str
    doc_break: bool
    folder_break: bool = False
    box_break: bool = False
    page_count: int | None = None


def bates_number(prefix: str, n: int, width: int = 8) -> str:
    """The Bates number ``prefix`` + ``n`` zero-padded to ``width`` digits, e.g. FL00000001."""
    if not _BATES_PREFIX.fullmatch(prefix):
        raise LoadFileError(
            f"Bates prefix {prefix!r} must start with a letter or digit and hold only letters, "
            "digits, '_', '-' and '.'"
        )
    if width < 1:
        raise LoadFileError(f"Bates width must be at least 1, got {width}")
    # A number wider than the padding would break the sort order reviewers rely on.
    if not 0 <= n < 10**width:
        raise LoadFileError(f"Bates number {n} does not fit in {width} digits")
    return f"{prefix}{n:0{width}d}"


def parse_bates(value: str, width: int = 8) -> tuple[str, int]:
    """Split a Bates number made by :func:`bates_number` into (prefix, number)."""
    # The width, not a digit run, finds the split: a prefix may itself end in digits.
    prefix, digits = value[:-width], value[-width:]
    if len(value) <= width or not digits.isascii() or not digits.isdigit():
        raise LoadFileError(f"{value!r} is not a prefix followed by {width} digits")
    if not _BATES_PREFIX.fullmatch(prefix):
        raise LoadFileError(f"{value!r} has an invalid Bates prefix {prefix!r}")
    return prefix, int(digits)


def dat_date(value: datetime | str | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC for a datetime or ISO 8601 text (naive means UTC)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime(DATE_FORMAT)


def dat_value(value: object) -> str:
    """The DAT text for a Python value (None, str, bool, int, date/datetime, list...)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, datetime):
        return dat_date(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        # ";" with no space: what multi-choice fields of review platforms split on; sets get a
        # fixed order.
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return ";".join(dat_value(item) for item in items)
    return str(value)


def _dialect(delimiter: str) -> dict:
    return {
        "delimiter": delimiter,
        "quotechar": QUALIFIER,
        "doublequote": True,
        "quoting": csv.QUOTE_ALL,
        "lineterminator": "\r\n",
        "strict": True,
    }


def dat_text(
    rows: Iterable[Mapping[str, object]],
    fields: Sequence[str] = DAT_FIELDS,
    newline_marker: str | None = None,
    delimiter: str = DELIMITER,
) -> str:
    """The DAT as text (no BOM): header row and one qualified record per row, CRLF ended."""
    fields = tuple(fields)
    if not fields or len(set(fields)) != len(fields):
        raise LoadFileError(f"DAT fields must be non-empty and unique, got {fields}")
    if delimiter not in (DELIMITER, OLD_DELIMITER):
        raise LoadFileError(f"DAT delimiter must be ¶ or ASCII 020, got {delimiter!r}")
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, **_dialect(delimiter))
    writer.writerow(fields)
    known = set(fields)
    for number, row in enumerate(rows, start=1):
        unknown = set(row) - known
        if unknown:
            raise LoadFileError(f"DAT row {number} has fields not in the header: {sorted(unknown)}")
        values = [dat_value(row.get(name)) for name in fields]
        if newline_marker is not None:
            values = [
                _mark_newlines(value, newline_marker, number, name)
                for value, name in zip(values, fields, strict=True)
            ]
        writer.writerow(values)
    return buffer.getvalue()


def _mark_newlines(value: str, marker: str, number: int, name: str) -> str:
    if marker in value:
        raise LoadFileError(
            f"DAT row {number}, field {name}: the value contains the newline marker {marker!r}, "
            "which a reader would turn into a line break; write without a newline marker"
        )
    return value.replace("\r\n", marker).replace("\r", marker).replace("\n", marker)


def write_dat(
    path: Path,
    rows: Iterable[Mapping[str, object]],
    fields: Sequence[str] = DAT_FIELDS,
    newline_marker: str | None = None,
    delimiter: str = DELIMITER,
) -> None:
    """Write a UTF-8 (with BOM) Concordance DAT file."""
    # Bytes, not text mode: text mode would translate the CRLFs on some platforms.
    text = dat_text(rows, fields, newline_marker, delimiter)
    Path(path).write_bytes(text.encode("utf-8-sig"))


def parse_dat(text: str, newline_marker: str | None = None) -> DatFile:
    """Parse DAT text (BOM optional) into its header fields and one dict per record."""
    text = text.removeprefix(_BOM)
    header_end = text.find("\n")
    header = text if header_end < 0 else text[:header_end]
    delimiter = OLD_DELIMITER if OLD_DELIMITER in header and DELIMITER not in header else DELIMITER
    reader = csv.reader(io.StringIO(text, newline=""), **_dialect(delimiter))
    try:
        records = [record for record in reader if record]
    except csv.Error as error:
        raise LoadFileError(f"malformed DAT near line {reader.line_num}: {error}") from error
    if not records:
        raise LoadFileError("the DAT is empty: no header row")
    fields = tuple(records[0])
    if len(set(fields)) != len(fields):
        raise LoadFileError(f"the DAT header repeats a field: {fields}")
    rows = []
    for number, record in enumerate(records[1:], start=1):
        if len(record) != len(fields):
            raise LoadFileError(
                f"DAT record {number} has {len(record)} values, the header has {len(fields)}"
            )
        if newline_marker is not None:
            record = [value.replace(newline_marker, "\n") for value in record]
        rows.append(dict(zip(fields, record, strict=True)))
    return DatFile(fields=fields, rows=rows)


def read_dat(path: Path, newline_marker: str | None = None) -> DatFile:
    """Read and parse a DAT file (UTF-8, with or without BOM)."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LoadFileError(f"{path} is not UTF-8: {error}") from error
    return parse_dat(text, newline_marker)


def read_dat_as_written(path: Path) -> tuple[DatFile, LoadFileProfile]:
    """Read a DAT written by this module under either profile, found from its header row."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LoadFileError(f"{path} is not UTF-8: {error}") from error
    header = text.split("\n", 1)[0]
    found = PROFILES["relativity" if OLD_DELIMITER in header else "concordance-unicode"]
    return parse_dat(text, found.newline_marker), found


def _flag(value: bool) -> str:
    return "Y" if value else ""


def opt_text(rows: Iterable[OptRow]) -> str:
    """Opticon text: one comma-separated, CRLF-ended line per page, no header."""
    lines = []
    for number, row in enumerate(rows, start=1):
        count = "" if row.page_count is None else str(row.page_count)
        values = [
            row.image_id,
            row.volume,
            row.image_path,
            _flag(row.doc_break),
            _flag(row.folder_break),
            _flag(row.box_break),
            count,
        ]
        if not row.image_id or not row.image_path:
            raise LoadFileError(f"OPT row {number}: image id and image path are required")
        for value in values[:3]:
            if not value.isprintable() or "," in value:
                raise LoadFileError(
                    f"OPT row {number}: {value!r} has a comma or a control character, which "
                    "Opticon files cannot escape"
                )
        if row.page_count is not None and row.page_count < 1:
            raise LoadFileError(f"OPT row {number}: page count must be positive")
        lines.append(",".join(values) + "\r\n")
    return "".join(lines)


def write_opt(path: Path, rows: Iterable[OptRow]) -> None:
    """Write an Opticon file (UTF-8 without BOM; plain ASCII when the paths are ASCII)."""
    Path(path).write_bytes(opt_text(rows).encode("utf-8"))


def parse_opt(text: str) -> list[OptRow]:
    """Parse Opticon text into rows (blank lines ignored; missing trailing fields are blank)."""
    rows = []
    # Split on LF only: str.splitlines would also split on characters such as U+0085 or U+2028.
    for number, line in enumerate(text.removeprefix(_BOM).split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        values = line.split(",")
        if not 3 <= len(values) <= 7:
            raise LoadFileError(f"OPT line {number} has {len(values)} fields, expected 7")
        values += [""] * (7 - len(values))
        image_id, volume, image_path, doc, folder, box, count = values
        flags = []
        for name, flag in (("DocBreak", doc), ("FolderBreak", folder), ("BoxBreak", box)):
            if flag.strip().upper() not in ("", "Y"):
                raise LoadFileError(f"OPT line {number}: {name} must be Y or blank, got {flag!r}")
            flags.append(flag.strip().upper() == "Y")
        count = count.strip()
        if count and not (count.isascii() and count.isdigit()):
            raise LoadFileError(f"OPT line {number}: page count {count!r} is not a number")
        rows.append(
            OptRow(
                image_id,
                volume,
                image_path,
                flags[0],
                flags[1],
                flags[2],
                int(count) if count else None,
            )
        )
    return rows


def read_opt(path: Path) -> list[OptRow]:
    """Read and parse an Opticon file."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LoadFileError(f"{path} is not UTF-8: {error}") from error
    return parse_opt(text)
