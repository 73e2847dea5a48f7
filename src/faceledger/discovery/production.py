"""Bates-numbered productions: natives, DAT and OPT load files, and a SHA-256 manifest.

A production volume is a folder::

    NATIVES/<BATES>.<ext>     one copy of each photo, named by its Bates number
    <volume>.dat              Concordance DAT, one record per photo (see loadfiles)
    <volume>.opt              Opticon file, one single-page document per photo
    MANIFEST.sha256           ``sha256sum -c`` lines for every file above

Each photo is one page, so BEGBATES = ENDBATES. Paths inside the load files are relative to the
folder holding them and use backslashes (``NATIVES\\FL00000001.jpg``), the convention review
platforms expect. The volume is built in a hidden sibling folder and renamed into place at the
end, so an interrupted run leaves no half-written production under ``out_dir``.

Numbering across productions is the caller's: pass ``ProductionResult.next_number`` (or
:func:`next_number_after` on the previous DAT) as the next ``first_number``.

Given the audit log's head at the time, the manifest's first line records it as a comment,
``# faceledger audit head: entry 57 sha256 <hash> at <time>`` (``sha256sum -c`` skips lines
starting with ``#``). A production leaves the library, so it is a witness of the head: its
receiver can later check ``faceledger audit verify --anchor`` against a heads file holding that
head, and the library's ``discovery.produce`` entry holds the manifest's hash in turn.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from faceledger.audit.anchor import AuditHead
from faceledger.discovery.loadfiles import (
    DAT_FIELDS,
    LoadFileError,
    OptRow,
    bates_number,
    parse_bates,
    read_dat,
    write_dat,
    write_opt,
)
from faceledger.errors import ProductionError

__all__ = [
    "MANIFEST_NAME",
    "AUDIT_HEAD_COMMENT",
    "NATIVES_DIR",
    "ProductionError",
    "ProductionItem",
    "ProducedDocument",
    "ProductionResult",
    "write_production",
    "verify_production",
    "next_number_after",
]

MANIFEST_NAME = "MANIFEST.sha256"
#: Start of the manifest's comment line naming the audit head the production was made at.
AUDIT_HEAD_COMMENT = "# faceledger audit head: "
NATIVES_DIR = "NATIVES"
#: DAT fields the production computes itself; callers may not supply them.
COMPUTED_FIELDS = frozenset({"BEGBATES", "ENDBATES", "MD5HASH", "SHA1HASH", "NATIVEPATH"})
_VOLUME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,16}")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ProductionItem:
    """One photo to produce: its native file, its id, and its DAT metadata."""

    source: Path
    photo_id: int
    extension: str
    #: DAT fields other than the computed ones (FILENAME, SOURCE_URL, RETRIEVED_AT, ...).
    metadata: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ProducedDocument:
    """What one photo became in the production."""

    photo_id: int
    bates: str
    native_path: str  # relative to the volume folder, forward slashes
    md5: str
    sha1: str
    sha256: str
    byte_size: int


@dataclass(frozen=True)
class ProductionResult:
    """The numbers used, the files written, and the manifest's own hash."""

    out_dir: Path
    volume: str
    prefix: str
    width: int
    first_number: int
    last_number: int
    documents: tuple[ProducedDocument, ...]
    dat_path: Path
    opt_path: Path
    manifest_path: Path
    manifest_sha256: str
    #: The audit log's head the production was made at (recorded in the manifest), if given.
    audit_head: AuditHead | None = None

    @property
    def next_number(self) -> int:
        """The ``first_number`` of the next production, so numbering stays continuous."""
        return self.last_number + 1

    @property
    def first_bates(self) -> str:
        """The first Bates number used."""
        return self.documents[0].bates

    @property
    def last_bates(self) -> str:
        """The last Bates number used."""
        return self.documents[-1].bates


def _check_arguments(
    out_dir: Path,
    prefix: str,
    first_number: int,
    items: Sequence[ProductionItem],
    volume: str,
    width: int,
) -> None:
    if not items:
        raise ProductionError("nothing to produce: the item list is empty")
    if not _VOLUME.fullmatch(volume):
        raise ProductionError(
            f"volume name {volume!r} must start with a letter or digit and hold only letters, "
            "digits, '_', '-' and '.'"
        )
    try:
        bates_number(prefix, first_number, width)
        bates_number(prefix, first_number + len(items) - 1, width)
    except LoadFileError as error:
        raise ProductionError(str(error)) from error
    seen: set[int] = set()
    for item in items:
        if item.photo_id in seen:
            raise ProductionError(f"photo {item.photo_id} is listed twice")
        seen.add(item.photo_id)
        if not _EXTENSION.fullmatch(item.extension.removeprefix(".")):
            raise ProductionError(
                f"photo {item.photo_id}: extension {item.extension!r} must be 1-16 letters/digits"
            )
        if not Path(item.source).is_file():
            raise ProductionError(f"photo {item.photo_id}: native file {item.source} not found")
        computed = COMPUTED_FIELDS & set(item.metadata)
        if computed:
            raise ProductionError(
                f"photo {item.photo_id}: {sorted(computed)} are computed by the production"
            )
        unknown = set(item.metadata) - set(DAT_FIELDS)
        if unknown:
            raise ProductionError(f"photo {item.photo_id}: unknown DAT fields {sorted(unknown)}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ProductionError(
            f"{out_dir} exists and is not an empty folder; a production never overwrites or "
            "mixes with earlier files, choose a new folder"
        )


def _copy_hashing(source: Path, target: Path) -> tuple[str, str, str, int]:
    # Hash the bytes as they are written, in one pass: the hashes describe what was produced.
    # MD5 and SHA-1 identify files for reviewers (the DAT's fields); they secure nothing.
    md5 = hashlib.md5(usedforsecurity=False)
    sha1 = hashlib.sha1(usedforsecurity=False)
    sha256 = hashlib.sha256()
    size = 0
    with open(source, "rb") as reader, open(target, "xb") as writer:
        while chunk := reader.read(_CHUNK):
            md5.update(chunk)
            sha1.update(chunk)
            sha256.update(chunk)
            writer.write(chunk)
            size += len(chunk)
    return md5.hexdigest(), sha1.hexdigest(), sha256.hexdigest(), size


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as reader:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_production(
    out_dir: Path,
    prefix: str,
    first_number: int,
    items: Sequence[ProductionItem],
    volume: str,
    width: int = 8,
    audit_head: AuditHead | None = None,
) -> ProductionResult:
    """Copy natives under Bates names and write the DAT, OPT and SHA-256 manifest (which names
    ``audit_head``, when given, in a comment line)."""
    out_dir = Path(out_dir)
    _check_arguments(out_dir, prefix, first_number, items, volume, width)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its 0700 mode would stick to the production after the rename;
    # mkdir honours the umask like every other folder the user creates.
    staging = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        (staging / NATIVES_DIR).mkdir()
        documents, dat_rows, opt_rows = [], [], []
        for offset, item in enumerate(items):
            bates = bates_number(prefix, first_number + offset, width)
            name = f"{bates}.{item.extension.removeprefix('.')}"
            try:
                md5, sha1, sha256, size = _copy_hashing(
                    Path(item.source), staging / NATIVES_DIR / name
                )
            except OSError as error:
                raise ProductionError(
                    f"photo {item.photo_id}: cannot copy {item.source}: {error}"
                ) from error
            load_path = f"{NATIVES_DIR}\\{name}"
            documents.append(
                ProducedDocument(
                    item.photo_id, bates, f"{NATIVES_DIR}/{name}", md5, sha1, sha256, size
                )
            )
            dat_rows.append(
                {
                    **item.metadata,
                    "BEGBATES": bates,
                    "ENDBATES": bates,
                    "MD5HASH": md5,
                    "SHA1HASH": sha1,
                    "NATIVEPATH": load_path,
                }
            )
            opt_rows.append(OptRow(bates, volume, load_path, doc_break=True, page_count=1))
        write_dat(staging / f"{volume}.dat", dat_rows)
        write_opt(staging / f"{volume}.opt", opt_rows)
        hashes = {doc.native_path: doc.sha256 for doc in documents}
        for name in (f"{volume}.dat", f"{volume}.opt"):
            hashes[name] = _sha256_file(staging / name)
        # Two spaces, forward slashes, LF: the format `sha256sum -c` reads.
        manifest = "".join(f"{digest}  {path}\n" for path, digest in sorted(hashes.items()))
        if audit_head is not None:
            manifest = (
                f"{AUDIT_HEAD_COMMENT}entry {audit_head.id} sha256 {audit_head.hash} "
                f"at {audit_head.at}\n{manifest}"
            )
        (staging / MANIFEST_NAME).write_bytes(manifest.encode("ascii"))
        try:
            if out_dir.exists():
                out_dir.rmdir()  # checked empty above; the rename needs the name free
            staging.rename(out_dir)
        except OSError as error:
            raise ProductionError(f"cannot move the production into {out_dir}: {error}") from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ProductionResult(
        out_dir=out_dir,
        volume=volume,
        prefix=prefix,
        width=width,
        first_number=first_number,
        last_number=first_number + len(items) - 1,
        documents=tuple(documents),
        dat_path=out_dir / f"{volume}.dat",
        opt_path=out_dir / f"{volume}.opt",
        manifest_path=out_dir / MANIFEST_NAME,
        manifest_sha256=hashlib.sha256(manifest.encode("ascii")).hexdigest(),
        audit_head=audit_head,
    )


def verify_production(out_dir: Path) -> list[str]:
    """Problems found checking a production against its manifest (empty list: all good)."""
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST_NAME
    if not manifest.is_file():
        return [f"{manifest} is missing"]
    problems, listed = [], set()
    for number, line in enumerate(manifest.read_text("ascii").splitlines(), start=1):
        if line.startswith("#"):
            continue  # a comment (the audit head), as sha256sum -c reads it
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            problems.append(f"manifest line {number} is malformed")
            continue
        listed.add(name)
        path = out_dir / name
        if not path.is_file():
            problems.append(f"{name} is listed but missing")
        elif _sha256_file(path) != digest:
            problems.append(f"{name} does not match its SHA-256")
    present = {
        path.relative_to(out_dir).as_posix() for path in out_dir.rglob("*") if path.is_file()
    }
    for name in sorted(present - listed - {MANIFEST_NAME}):
        problems.append(f"{name} is not in the manifest")
    return problems


def next_number_after(dat_path: Path, prefix: str, width: int = 8) -> int:
    """One past the highest ENDBATES with ``prefix`` in an earlier production's DAT."""
    numbers = []
    for row in read_dat(dat_path).rows:
        value = row.get("ENDBATES") or row.get("BEGBATES") or ""
        try:
            found_prefix, number = parse_bates(value, width)
        except LoadFileError:
            continue
        if found_prefix == prefix:
            numbers.append(number)
    if not numbers:
        raise ProductionError(f"{dat_path} holds no Bates numbers with prefix {prefix!r}")
    return max(numbers) + 1
