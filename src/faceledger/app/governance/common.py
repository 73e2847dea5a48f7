"""Small helpers the governance modules share: reading signed texts, scrubbing freed storage."""

from __future__ import annotations

import hashlib
from pathlib import Path

from faceledger.catalog.maintenance import checkpoint, secure_delete
from faceledger.errors import BadOptionError

__all__ = ["read_document", "secure_delete", "checkpoint", "inside"]


def read_document(path: Path, what: str) -> tuple[str, str]:
    """The UTF-8 text of a statement or release file and the SHA-256 of its bytes."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadOptionError(f"cannot read the {what} file {path}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadOptionError(f"the {what} file {path} is not UTF-8 text") from exc
    if not text.strip():
        raise BadOptionError(f"the {what} file {path} is empty")
    return text, hashlib.sha256(data).hexdigest()


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or lies under it (symlinks resolved)."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True
