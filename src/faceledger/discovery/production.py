"""Bates-numbered productions: natives, JPEG page images, DAT/OPT/face load files, a cover
sheet, a redaction log and a SHA-256 manifest.

A production volume is a folder::

    NATIVES/<BATES>.<ext>     one copy of each photo, named by its Bates number (a
                              metadata-stripped rendition where a protective order asks)
    IMAGES/<BATES>.jpg        a JPEG rendition of each photo, the page image the OPT names
                              (colour photos are JPEG, since Group IV TIFF is black and white)
    <volume>.dat              DAT, one record per photo, in the chosen profile (see loadfiles)
    <volume>.opt              Opticon file, one single-page document per photo
    <volume>_FACES.csv        one row per face: Bates number, face id, box, vector date, model
    REDACTIONS.csv            the redaction log: what was redacted in which document, and why
    COVER.txt                 the cover sheet: matter, custodian, profile, the time zone of
                              every date (UTC), Bates range, counts, audit head
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

:func:`inspect_production` checks a volume on its own: every hash, Bates continuity, that every
load-file path exists, and that the DAT, OPT, natives and images agree in number.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageOps

from faceledger.audit.anchor import AuditHead
from faceledger.discovery.loadfiles import (
    DAT_FIELDS,
    DEFAULT_PROFILE,
    LoadFileError,
    OptRow,
    bates_number,
    dat_date,
    parse_bates,
    profile,
    read_dat,
    read_dat_as_written,
    read_opt,
    write_dat,
    write_opt,
)
from faceledger.errors import ProductionError

__all__ = [
    "MANIFEST_NAME",
    "AUDIT_HEAD_COMMENT",
    "NATIVES_DIR",
    "IMAGES_DIR",
    "COVER_NAME",
    "REDACTION_LOG_NAME",
    "FACE_FIELDS",
    "ProductionError",
    "FaceRecord",
    "Redaction",
    "ProductionItem",
    "ProducedDocument",
    "ProductionResult",
    "ProductionCheck",
    "write_production",
    "inspect_production",
    "verify_production",
    "next_number_after",
]

MANIFEST_NAME = "MANIFEST.sha256"
#: Start of the manifest's comment line naming the audit head the production was made at.
AUDIT_HEAD_COMMENT = "# faceledger audit head: "
NATIVES_DIR = "NATIVES"
IMAGES_DIR = "IMAGES"
COVER_NAME = "COVER.txt"
REDACTION_LOG_NAME = "REDACTIONS.csv"
#: Columns of the face-level CSV.
FACE_FIELDS = ("BATES", "FACE_ID", "BOX_TOP", "BOX_RIGHT", "BOX_BOTTOM", "BOX_LEFT",
               "VECTOR_COLLECTED_AT", "MODEL", "MODEL_VERSION")  # fmt: skip
REDACTION_FIELDS = ("BATES", "FIELD", "CATEGORY", "ACTION")
#: DAT fields the production computes itself; callers may not supply them.
COMPUTED_FIELDS = frozenset(
    {"BEGBATES", "ENDBATES", "MD5HASH", "SHA1HASH", "SHA256HASH", "NATIVEPATH", "FILEEXT",
     "FILESIZE", "PRODVOL", "CUSTODIAN"}
)  # fmt: skip
_VOLUME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,16}")
_HEAD_LINE = re.compile(r"entry (\d+) sha256 ([0-9a-f]{64}) at (\S+)")
_CHUNK = 1 << 20
#: Page images load as JPEG or TIFF: their first bytes.
_PAGE_MAGIC = (b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")


@dataclass(frozen=True)
class FaceRecord:
    """One face of a produced photo, for the face-level CSV."""

    face_id: int
    box: tuple[int, int, int, int]  # top, right, bottom, left (pixels of the native)
    vector_collected_at: datetime | str | None
    model: str
    model_version: str


@dataclass(frozen=True)
class Redaction:
    """One entry of the redaction log: what was withheld from which field of a document."""

    field: str  # a DAT field (SOURCE_URL, WEBSITE...) or NATIVE for the file's own metadata
    category: str  # the protective order's category (dating, health...)
    action: str  # what was done, in words


@dataclass(frozen=True)
class ProductionItem:
    """One photo to produce: its native file, its id, its DAT metadata and its faces."""

    source: Path
    photo_id: int
    extension: str
    #: DAT fields other than the computed ones (FILENAME, SOURCE_URL, RETRIEVED_AT, ...).
    metadata: Mapping[str, object] = field(default_factory=dict)
    faces: Sequence[FaceRecord] = ()
    #: Produce the native as a rendition without its metadata (EXIF, XMP, IPTC, PNG text).
    strip_metadata: bool = False
    redactions: Sequence[Redaction] = ()


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
    image_path: str = ""  # the JPEG page image, relative, forward slashes
    stripped: bool = False


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
    profile: str = DEFAULT_PROFILE
    faces_path: Path | None = None
    redactions: int = 0

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


class _Hashes:
    # MD5 and SHA-1 identify files for reviewers (the DAT's fields); they secure nothing.
    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha1 = hashlib.sha1(usedforsecurity=False)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        self.sha1.update(chunk)
        self.sha256.update(chunk)
        self.size += len(chunk)

    def result(self) -> tuple[str, str, str, int]:
        return self.md5.hexdigest(), self.sha1.hexdigest(), self.sha256.hexdigest(), self.size


def _copy_hashing(source: Path, target: Path) -> tuple[str, str, str, int]:
    # Hash the bytes as they are written, in one pass: the hashes describe what was produced.
    hashes = _Hashes()
    with open(source, "rb") as reader, open(target, "xb") as writer:
        while chunk := reader.read(_CHUNK):
            hashes.update(chunk)
            writer.write(chunk)
    return hashes.result()


def _write_hashing(data: bytes, target: Path) -> tuple[str, str, str, int]:
    hashes = _Hashes()
    hashes.update(data)
    with open(target, "xb") as writer:
        writer.write(data)
    return hashes.result()


def _pixels_only(image: Image.Image) -> Image.Image:
    """A new image holding only the pixels: no EXIF, XMP, IPTC, ICC, comments or text."""
    image = ImageOps.exif_transpose(image)  # the orientation tag goes, so apply it first
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "transparency" in image.info or "A" in image.mode
                              else "RGB")  # fmt: skip
    return Image.frombytes(image.mode, image.size, image.tobytes())


def _stripped_native(source: Path) -> bytes:
    """The native re-encoded in its own format from its pixels alone."""
    with Image.open(source) as image:
        image.seek(0)  # an animation's first frame: a still, like the page image
        fmt = "JPEG" if image.format in ("JPEG", "MPO") else image.format or "PNG"
        clean = _pixels_only(image)
    if fmt == "JPEG" and clean.mode not in ("RGB", "L"):
        clean = clean.convert("RGB")
    buffer = io.BytesIO()
    clean.save(buffer, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    return buffer.getvalue()


def _page_image(source: Path) -> bytes:
    """The JPEG page image of a photo: upright, RGB, no metadata (review platforms load it)."""
    with Image.open(source) as image:
        image.seek(0)
        clean = _pixels_only(image)
    if clean.mode in ("RGBA", "LA"):
        # Transparent areas on white, as a viewer shows them.
        background = Image.new("RGB", clean.size, "white")
        background.paste(clean, mask=clean.getchannel("A"))
        clean = background
    buffer = io.BytesIO()
    clean.convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as reader:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _csv_bytes(fields: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def _cover_sheet(facts: Mapping[str, object]) -> bytes:
    lines = ["faceledger production cover sheet", ""]
    lines += [f"{key}: {'' if value is None else value}" for key, value in facts.items()]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def write_production(
    out_dir: Path,
    prefix: str,
    first_number: int,
    items: Sequence[ProductionItem],
    volume: str,
    width: int = 8,
    audit_head: AuditHead | None = None,
    *,
    load_profile: str = DEFAULT_PROFILE,
    custodian: str | None = None,
    matter: str | None = None,
    produced_at: datetime | None = None,
) -> ProductionResult:
    """Copy natives under Bates names, render page images, and write the DAT, OPT, face CSV,
    redaction log, cover sheet and SHA-256 manifest (which names ``audit_head``, when given)."""
    out_dir = Path(out_dir)
    chosen = profile(load_profile)
    _check_arguments(out_dir, prefix, first_number, items, volume, width)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its 0700 mode would stick to the production after the rename;
    # mkdir honours the umask like every other folder the user creates.
    staging = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        (staging / NATIVES_DIR).mkdir()
        (staging / IMAGES_DIR).mkdir()
        documents, dat_rows, opt_rows, face_rows, log_rows = [], [], [], [], []
        for offset, item in enumerate(items):
            bates = bates_number(prefix, first_number + offset, width)
            ext = item.extension.removeprefix(".")
            name = f"{bates}.{ext}"
            try:
                if item.strip_metadata:
                    digests = _write_hashing(
                        _stripped_native(Path(item.source)), staging / NATIVES_DIR / name
                    )
                else:
                    digests = _copy_hashing(Path(item.source), staging / NATIVES_DIR / name)
                (staging / IMAGES_DIR / f"{bates}.jpg").write_bytes(_page_image(item.source))
            except OSError as error:
                raise ProductionError(
                    f"photo {item.photo_id}: cannot produce {item.source}: {error}"
                ) from error
            md5, sha1, sha256, size = digests
            load_path = f"{NATIVES_DIR}\\{name}"
            image_path = f"{IMAGES_DIR}\\{bates}.jpg"
            documents.append(
                ProducedDocument(item.photo_id, bates, f"{NATIVES_DIR}/{name}", md5, sha1,
                                 sha256, size, f"{IMAGES_DIR}/{bates}.jpg", item.strip_metadata)
            )  # fmt: skip
            redactions = list(item.redactions)
            if item.strip_metadata:
                redactions.append(Redaction("NATIVE", "", "native produced as a "
                                            "metadata-stripped rendition"))  # fmt: skip
            dat_rows.append(
                {
                    **item.metadata,
                    "BEGBATES": bates,
                    "ENDBATES": bates,
                    "FILEEXT": ext.lower(),
                    "FILESIZE": size,
                    "CUSTODIAN": custodian,
                    "PRODVOL": volume,
                    "MD5HASH": md5,
                    "SHA1HASH": sha1,
                    "SHA256HASH": sha256,
                    "NATIVEPATH": load_path,
                    "REDACTIONS": item.metadata.get("REDACTIONS")
                    or sorted({f"{r.field}:{r.category}" if r.category else r.field
                               for r in redactions}),
                }
            )  # fmt: skip
            opt_rows.append(OptRow(bates, volume, image_path, doc_break=True, page_count=1))
            face_rows += [
                (bates, face.face_id, *face.box, dat_date(face.vector_collected_at),
                 face.model, face.model_version)
                for face in item.faces
            ]  # fmt: skip
            log_rows += [(bates, r.field, r.category, r.action) for r in redactions]
        try:
            write_dat(staging / f"{volume}.dat", dat_rows, DAT_FIELDS, chosen.newline_marker,
                      chosen.delimiter)  # fmt: skip
        except LoadFileError as error:
            raise ProductionError(
                f"{error}; the concordance-unicode profile keeps line breaks and takes any text"
            ) from error
        write_opt(staging / f"{volume}.opt", opt_rows)
        faces_name = f"{volume}_FACES.csv"
        (staging / faces_name).write_bytes(_csv_bytes(FACE_FIELDS, face_rows))
        (staging / REDACTION_LOG_NAME).write_bytes(_csv_bytes(REDACTION_FIELDS, log_rows))
        last_number = first_number + len(items) - 1
        cover = {
            "Matter": matter,
            "Volume": volume,
            "Custodian": custodian,
            "Produced at": dat_date(produced_at) if produced_at else "",
            "Time zone": "UTC: every date and time in this production is UTC, written "
            "YYYY-MM-DD HH:MM:SS",
            "Load-file profile": f"{chosen.name} ({chosen.description})",
            "DAT": f"{volume}.dat, UTF-8 with BOM, CRLF",
            "OPT": f"{volume}.opt, page images are JPEG renditions in {IMAGES_DIR}",
            "Face-level file": faces_name,
            "Redaction log": f"{REDACTION_LOG_NAME} ({len(log_rows)} entries)",
            "Bates prefix": prefix,
            "Bates width": width,
            "Bates range": f"{documents[0].bates}-{documents[-1].bates}",
            "Documents": len(documents),
            "Faces": len(face_rows),
            "Audit head": (f"entry {audit_head.id} sha256 {audit_head.hash} at {audit_head.at}"
                           if audit_head else "none"),
        }  # fmt: skip
        (staging / COVER_NAME).write_bytes(_cover_sheet(cover))
        hashes = {doc.native_path: doc.sha256 for doc in documents}
        for path in sorted(staging.rglob("*")):
            relative = path.relative_to(staging).as_posix()
            if path.is_file() and relative not in hashes:
                hashes[relative] = _sha256_file(path)
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
        last_number=last_number,
        documents=tuple(documents),
        dat_path=out_dir / f"{volume}.dat",
        opt_path=out_dir / f"{volume}.opt",
        manifest_path=out_dir / MANIFEST_NAME,
        manifest_sha256=hashlib.sha256(manifest.encode("ascii")).hexdigest(),
        audit_head=audit_head,
        profile=chosen.name,
        faces_path=out_dir / faces_name,
        redactions=len(log_rows),
    )


@dataclass
class ProductionCheck:
    """What checking a production folder found: its facts and every problem (none: good)."""

    out_dir: Path
    problems: list[str] = field(default_factory=list)
    volume: str | None = None
    profile: str | None = None
    prefix: str | None = None
    first_bates: str | None = None
    last_bates: str | None = None
    documents: int = 0
    manifest_sha256: str | None = None
    audit_head: AuditHead | None = None


def _check_manifest(check: ProductionCheck) -> None:
    out_dir = check.out_dir
    manifest = out_dir / MANIFEST_NAME
    raw = manifest.read_bytes()
    check.manifest_sha256 = hashlib.sha256(raw).hexdigest()
    listed = set()
    for number, line in enumerate(raw.decode("ascii", "replace").splitlines(), start=1):
        if line.startswith(AUDIT_HEAD_COMMENT):
            found = _HEAD_LINE.fullmatch(line.removeprefix(AUDIT_HEAD_COMMENT))
            if found:
                check.audit_head = AuditHead(int(found[1]), found[2], found[3])
            continue
        if line.startswith("#"):
            continue  # a comment, as sha256sum -c reads it
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            check.problems.append(f"manifest line {number} is malformed")
            continue
        listed.add(name)
        path = out_dir / name
        if not path.is_file():
            check.problems.append(f"{name} is listed but missing")
        elif _sha256_file(path) != digest:
            check.problems.append(f"{name} does not match its SHA-256")
    present = {
        path.relative_to(out_dir).as_posix() for path in out_dir.rglob("*") if path.is_file()
    }
    for name in sorted(present - listed - {MANIFEST_NAME}):
        check.problems.append(f"{name} is not in the manifest")


def _cover_facts(out_dir: Path) -> dict[str, str]:
    path = out_dir / COVER_NAME
    if not path.is_file():
        return {}
    facts = {}
    for line in path.read_text("utf-8", "replace").splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            facts[key] = value
    return facts


def _local(out_dir: Path, load_path: str) -> Path:
    return out_dir / load_path.replace("\\", "/")


def _check_load_files(check: ProductionCheck) -> None:
    out_dir, problems = check.out_dir, check.problems
    cover = _cover_facts(out_dir)
    dats = sorted(out_dir.glob("*.dat"))
    if len(dats) != 1:
        problems.append(f"expected one DAT in {out_dir}, found {len(dats)}")
        return
    check.volume = dats[0].stem
    try:
        dat, found = read_dat_as_written(dats[0])
        opt = read_opt(out_dir / f"{check.volume}.opt")
    except (LoadFileError, OSError) as error:
        problems.append(f"the load files cannot be read: {error}")
        return
    check.profile = found.name
    prefix = cover.get("Bates prefix")
    width = int(cover["Bates width"]) if cover.get("Bates width", "").isdigit() else 8
    check.prefix = prefix
    bates = [row.get("BEGBATES", "") for row in dat.rows]
    check.documents = len(bates)
    if bates:
        check.first_bates, check.last_bates = bates[0], bates[-1]
    previous = None
    for value in bates:
        try:
            found_prefix, number = parse_bates(value, width)
        except LoadFileError as error:
            problems.append(f"DAT: {error}")
            continue
        if prefix is not None and found_prefix != prefix:
            problems.append(f"DAT: {value} does not carry the prefix {prefix}")
        if previous is not None and number != previous[1] + 1:
            kind = "Bates gap" if number > previous[1] + 1 else "Bates numbers out of order"
            problems.append(f"{kind}: {value} follows {previous[0]}")
        previous = (value, number)
    for row in dat.rows:
        if row.get("ENDBATES") != row.get("BEGBATES"):
            problems.append(f"DAT: {row.get('BEGBATES')} ends at another number")
        native = row.get("NATIVEPATH", "")
        if not native or not _local(out_dir, native).is_file():
            problems.append(f"DAT: the native of {row.get('BEGBATES')} ({native}) is missing")
    if [page.image_id for page in opt] != bates:
        problems.append("the OPT's image ids are not the DAT's Bates numbers, in order")
    for page in opt:
        image = _local(out_dir, page.image_path)
        if not image.is_file():
            problems.append(f"OPT: the image of {page.image_id} ({page.image_path}) is missing")
        elif not image.read_bytes()[:4].startswith(_PAGE_MAGIC):
            problems.append(f"OPT: {page.image_path} is neither JPEG nor TIFF")
    counts = {
        "DAT records": len(dat.rows),
        "OPT pages": len(opt),
        "natives": sum(1 for p in (out_dir / NATIVES_DIR).glob("*") if p.is_file()),
    }
    if (out_dir / IMAGES_DIR).is_dir():  # productions made before page images have none
        counts["page images"] = sum(1 for p in (out_dir / IMAGES_DIR).glob("*") if p.is_file())
    if cover.get("Documents", "").isdigit():
        counts["documents on the cover sheet"] = int(cover["Documents"])
    if len(set(counts.values())) > 1:
        problems.append("counts disagree: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def inspect_production(out_dir: Path) -> ProductionCheck:
    """Check a production folder: its manifest hashes, Bates continuity, load-file paths and
    counts; the facts it states (volume, Bates range, audit head) come back too."""
    check = ProductionCheck(Path(out_dir))
    if not (check.out_dir / MANIFEST_NAME).is_file():
        check.problems.append(f"{check.out_dir / MANIFEST_NAME} is missing")
        return check
    _check_manifest(check)
    _check_load_files(check)
    return check


def verify_production(out_dir: Path) -> list[str]:
    """Problems found checking a production (empty list: all good); see inspect_production."""
    return inspect_production(out_dir).problems


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
