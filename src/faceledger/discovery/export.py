"""Export of the face vectors themselves: a Parquet file, a README of its format, and a SHA-256
manifest; optionally the Parquet encrypted to an age recipient.

An export is a folder::

    vectors.parquet          one row per face (see FORMAT below); or, encrypted:
    vectors.parquet.age      the same bytes encrypted to the recipient's age public key
    README.md                the format, the scope, and how to check and read the file
    MANIFEST.sha256          ``sha256sum -c`` lines; comments name the audit head and, when
                             encrypted, the SHA-256 of the plaintext Parquet

Nothing in an export names a source URL or website: it holds the vectors, their dates and
their photos' hashes, so a protective order's redactions have nothing to remove here.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from faceledger.audit.anchor import AuditHead
from faceledger.errors import BadOptionError, InputError, ProductionError

__all__ = ["PARQUET_NAME", "SCHEMA", "FORMAT", "ExportRow", "ExportResult", "write_export",
           "read_vectors"]  # fmt: skip

PARQUET_NAME = "vectors.parquet"
MANIFEST_NAME = "MANIFEST.sha256"
README_NAME = "README.md"

#: The Parquet schema: one row per face.
SCHEMA = pa.schema(
    [
        pa.field("face_id", pa.int64(), nullable=False),
        pa.field("photo_id", pa.int64(), nullable=False),
        pa.field("bates", pa.string()),
        pa.field("vector", pa.list_(pa.float32(), 128), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("vector_collected_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("photo_sha256", pa.string(), nullable=False),
        pa.field("photo_md5", pa.string(), nullable=False),
        pa.field("photo_sha1", pa.string(), nullable=False),
        pa.field("blocked", pa.bool_(), nullable=False),
    ]
)

#: What each column holds (the README's table).
FORMAT = {
    "face_id": "the face's id in the library (int64)",
    "photo_id": "the photo's id in the library (int64)",
    "bates": "the Bates number the photo was last produced under in this matter; empty if none",
    "vector": "the face vector: 128 float32 values (dlib ResNet; Euclidean distance)",
    "model": "the model that computed the vector",
    "model_version": "its version",
    "vector_collected_at": "when the vector was computed (timestamp, microseconds, UTC)",
    "photo_sha256": "SHA-256 of the photo file the face was found in",
    "photo_md5": "MD5 of that file (identification only)",
    "photo_sha1": "SHA-1 of that file (identification only)",
    "blocked": "true when the face is blocked (kept only in the vault)",
}


@dataclass(frozen=True)
class ExportRow:
    """One face of the export."""

    face_id: int
    photo_id: int
    bates: str | None
    vector: np.ndarray
    model: str
    model_version: str
    vector_collected_at: datetime
    photo_sha256: str
    photo_md5: str
    photo_sha1: str
    blocked: bool


@dataclass(frozen=True)
class ExportResult:
    """What was written: the folder, the data file, the hashes."""

    out_dir: Path
    data_path: Path
    parquet_sha256: str
    manifest_sha256: str
    faces: int
    encrypted: bool


def _table(rows: Sequence[ExportRow]) -> pa.Table:
    vectors = np.stack([r.vector for r in rows]).astype(np.float32) if rows else np.zeros(
        (0, 128), np.float32)  # fmt: skip
    columns = {
        "face_id": [r.face_id for r in rows],
        "photo_id": [r.photo_id for r in rows],
        "bates": [r.bates for r in rows],
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 128),
        "model": [r.model for r in rows],
        "model_version": [r.model_version for r in rows],
        "vector_collected_at": [r.vector_collected_at for r in rows],
        "photo_sha256": [r.photo_sha256 for r in rows],
        "photo_md5": [r.photo_md5 for r in rows],
        "photo_sha1": [r.photo_sha1 for r in rows],
        "blocked": [r.blocked for r in rows],
    }
    return pa.table(columns, schema=SCHEMA)


def _readme(matter: str, faces: int, scope: str, encrypted: bool, head: AuditHead | None,
            parquet_sha256: str) -> str:  # fmt: skip
    lines = [
        f"# Face vectors exported for {matter}",
        "",
        f"{faces} faces ({scope}). One row per face in `{PARQUET_NAME}` (Apache Parquet, "
        "zstd-compressed). Every time is UTC.",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{f.name}` | {f.type} | {FORMAT[f.name]} |" for f in SCHEMA]
    lines += [
        "",
        "## Checking and reading",
        "",
        "`sha256sum -c MANIFEST.sha256` checks every file. In Python: "
        f"`pyarrow.parquet.read_table('{PARQUET_NAME}')`, or pandas' `read_parquet`.",
        "",
        f"SHA-256 of `{PARQUET_NAME}`: `{parquet_sha256}`.",
    ]
    if encrypted:
        lines += [
            "",
            f"The Parquet file is encrypted to the recipient's age public key: "
            f"`age --decrypt -i key.txt -o {PARQUET_NAME} {PARQUET_NAME}.age`, then check its "
            "SHA-256 against the one above.",
        ]
    lines += [
        "",
        "No source URL, page URL or website is in this export.",
        "",
        ("Made at audit log entry "
         f"{head.id} (SHA-256 {head.hash}, {head.at})." if head else "Made when the audit log "
         "was empty."),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_export(
    out_dir: Path,
    matter: str,
    rows: Sequence[ExportRow],
    *,
    scope: str,
    audit_head: AuditHead | None = None,
    age_recipient: str | None = None,
) -> ExportResult:
    """Write the export folder (built aside and renamed into place, like a production)."""
    out_dir = Path(out_dir)
    if not rows:
        raise InputError("the selection holds no faces; nothing to export")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ProductionError(
            f"{out_dir} exists and is not an empty folder; an export never overwrites earlier "
            "files, choose a new folder"
        )
    recipient = None
    if age_recipient is not None:
        recipient = _age_recipient(age_recipient)
    buffer = io.BytesIO()
    pq.write_table(_table(rows), buffer, compression="zstd")
    parquet = buffer.getvalue()
    parquet_sha256 = hashlib.sha256(parquet).hexdigest()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        if recipient is not None:
            import pyrage

            # Encrypted in memory: the plaintext never reaches the disk.
            data_name = PARQUET_NAME + ".age"
            (staging / data_name).write_bytes(pyrage.encrypt(parquet, [recipient]))
        else:
            data_name = PARQUET_NAME
            (staging / data_name).write_bytes(parquet)
        readme = _readme(matter, len(rows), scope, recipient is not None, audit_head,
                         parquet_sha256)  # fmt: skip
        (staging / README_NAME).write_bytes(readme.encode("utf-8"))
        lines = []
        if audit_head is not None:
            lines.append(f"# faceledger audit head: entry {audit_head.id} sha256 "
                         f"{audit_head.hash} at {audit_head.at}")  # fmt: skip
        if recipient is not None:
            lines.append(f"# plaintext {PARQUET_NAME} sha256 {parquet_sha256}")
        for name in sorted((data_name, README_NAME)):
            lines.append(f"{hashlib.sha256((staging / name).read_bytes()).hexdigest()}  {name}")
        manifest = ("\n".join(lines) + "\n").encode("ascii")
        (staging / MANIFEST_NAME).write_bytes(manifest)
        if out_dir.exists():
            out_dir.rmdir()
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(out_dir, out_dir / data_name, parquet_sha256,
                        hashlib.sha256(manifest).hexdigest(), len(rows),
                        recipient is not None)  # fmt: skip


def _age_recipient(text: str):
    try:
        import pyrage
    except ImportError:
        raise InputError(
            "encrypting an export needs the optional package pyrage: "
            "pip install 'faceledger[age]'"
        ) from None
    try:
        if text.startswith(("ssh-ed25519 ", "ssh-rsa ")):
            return pyrage.ssh.Recipient.from_str(text)
        return pyrage.x25519.Recipient.from_str(text.strip())
    except Exception as error:  # pyrage raises its own error types
        raise BadOptionError(
            f"{text[:20]}… is not an age public key (age1…): {error}"
        ) from None


def read_vectors(path: Path) -> pa.Table:
    """Read an export's (plaintext) Parquet file."""
    return pq.read_table(path)
