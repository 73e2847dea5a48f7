"""Witnessed heads of the audit log: the head record, its signed bytes, the file of heads, and
Ed25519 signatures over them. Pure: no database here (audit/log.py reads the head).

The hash chain alone cannot see its newest entries go, or a chain rewritten from the start; a
head (id and hash of the newest entry) recorded somewhere the attacker cannot write can. A
*heads file* holds one witnessed head a line, appended by ``faceledger audit head --out FILE``::

    {"at":"2026-01-31T12:00:00.123456+00:00","hash":"<64 hex>","id":57,
     "key_id":"<16 hex>","signature":"<base64>"}

``signature`` and ``key_id`` are present when the head was signed. The signature is Ed25519
over :func:`signed_bytes`: the ASCII line ``faceledger audit head v1`` and a newline, then
``{"at":...,"hash":...,"id":...}`` as canonical JSON (sorted keys, no spaces). The prefix keeps
a head signature from ever being valid as a signature of anything else. ``key_id`` is the first
16 hex digits of the SHA-256 of the raw 32-byte public key (what :func:`key_id` returns).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from faceledger.errors import AnchorError

__all__ = [
    "SIGNED_PREFIX",
    "AuditHead",
    "WitnessedHead",
    "signed_bytes",
    "key_id",
    "public_key_path",
    "generate_signing_key",
    "load_signing_key",
    "load_verify_key",
    "sign",
    "signature_problem",
    "open_heads",
    "write_head",
    "read_heads",
]

#: Domain separation for head signatures (versioned with the record's format).
SIGNED_PREFIX = b"faceledger audit head v1\n"
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class AuditHead:
    """The newest entry of an audit log at one moment: its id, hash and time (ISO 8601, UTC)."""

    id: int
    hash: str
    at: str

    def to_json(self) -> dict[str, Any]:
        """The head as a JSON-ready dict."""
        return {"id": self.id, "hash": self.hash, "at": self.at}

    def describe(self) -> str:
        """One line for people: ``entry 57 (sha256 ab12…, 2026-01-31T12:00:00+00:00)``."""
        return f"entry {self.id} (sha256 {self.hash}, {self.at})"


@dataclass(frozen=True)
class WitnessedHead:
    """A head as recorded outside the library, signed or not."""

    head: AuditHead
    #: Base64 Ed25519 signature over ``signed_bytes(head)``; None when unsigned.
    signature: str | None = None
    #: :func:`key_id` of the key that signed it, as the signer wrote it (informative only).
    key_id: str | None = None
    #: Line of the heads file it was read from (None when not read from a file).
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The head file's line for this head, as a dict (unsigned members left out)."""
        data = self.head.to_json()
        if self.signature is not None:
            data["signature"] = self.signature
            data["key_id"] = self.key_id
        return data

    def describe(self) -> str:
        """The head for people, with where it was read from."""
        where = f"witnessed head on line {self.line}" if self.line else "witnessed head"
        return f"{where}: {self.head.describe()}"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def signed_bytes(head: AuditHead) -> bytes:
    """The exact bytes a head signature covers."""
    return SIGNED_PREFIX + _canonical(head.to_json()).encode("ascii")


# -- keys ----------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short public fingerprint of a verify key: 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_path(private_path: Path) -> Path:
    """Where :func:`generate_signing_key` writes the public half: ``PATH.pub``."""
    private_path = Path(private_path)
    return private_path.with_name(private_path.name + ".pub")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        # O_EXCL: never replace a key someone may already sign or verify with.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise AnchorError(f"{path} already exists: refusing to overwrite it; choose another "
                          "path") from exc  # fmt: skip
    except OSError as exc:
        raise AnchorError(f"cannot create {path}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, mode)  # exactly this mode whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def generate_signing_key(path: Path) -> str:
    """Write a new Ed25519 private key to ``path`` (PEM, mode 0600) and its public key to
    ``PATH.pub`` (PEM, 0644), never overwriting either; return the key id."""
    path = Path(path)
    pub_path = public_key_path(path)
    if pub_path.exists():
        raise AnchorError(f"{pub_path} already exists: refusing to overwrite it; choose another "
                          "path")  # fmt: skip
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(path, private_pem, 0o600)
    try:
        _write_new(pub_path, public_pem, 0o644)
    except AnchorError:
        path.unlink()  # a private key without its public half would only confuse
        raise
    return key_id(public)


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise AnchorError(f"cannot read the {what} {path}: {exc.strerror}") from exc


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file (as written by ``key generate --ed25519``)."""
    data = _read_key_file(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise AnchorError(
            f"{path} is not an unencrypted PEM private key ({exc}); make one with "
            "`faceledger key generate --ed25519 --key-file PATH`"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AnchorError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_verify_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM file (``PATH.pub`` of ``key generate --ed25519``)."""
    data = _read_key_file(path, "verify key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise AnchorError(
            f"{path} is not a PEM public key ({exc}); pass the .pub file written by "
            "`faceledger key generate --ed25519`"
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise AnchorError(f"{path} holds a {type(key).__name__}, not an Ed25519 public key")
    return key


# -- signatures ----------------------------------------------------------------------------


def sign(head: AuditHead, private_key: Ed25519PrivateKey) -> WitnessedHead:
    """The head with an Ed25519 signature by ``private_key``."""
    signature = private_key.sign(signed_bytes(head))
    return WitnessedHead(head, base64.b64encode(signature).decode("ascii"),
                         key_id(private_key.public_key()))  # fmt: skip


def signature_problem(witnessed: WitnessedHead, public_key: Ed25519PublicKey) -> str | None:
    """Why ``witnessed`` does not carry a valid signature by ``public_key`` (None: it does)."""
    expected = key_id(public_key)
    if witnessed.signature is None:
        return f"{witnessed.describe()} is not signed, but a verify key ({expected}) was given"
    try:
        signature = base64.b64decode(witnessed.signature, validate=True)
        public_key.verify(signature, signed_bytes(witnessed.head))
    except (binascii.Error, ValueError, InvalidSignature):
        signer = f" (it names key {witnessed.key_id})" if witnessed.key_id != expected else ""
        return (
            f"the signature of the {witnessed.describe()} does not verify with key "
            f"{expected}{signer}: the head was altered, or signed with another key"
        )
    return None


# -- the heads file ------------------------------------------------------------------------


def open_heads(path: Path) -> IO[str]:
    """Open a heads file for appending (created if missing), so a bad path fails early."""
    try:
        return open(path, "a", encoding="ascii")  # noqa: SIM115 (handed to write_head)
    except OSError as exc:
        raise AnchorError(f"cannot open the heads file {path} for appending: "
                          f"{exc.strerror}") from exc  # fmt: skip


def write_head(handle: IO[str], witnessed: WitnessedHead) -> None:
    """Append one witnessed head as a JSON line and flush it to disk."""
    handle.write(_canonical(witnessed.to_json()) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def _parse(line: str, number: int, path: Path) -> WitnessedHead:
    def bad(why: str) -> AnchorError:
        return AnchorError(f"line {number} of the heads file {path} is not a witnessed head: "
                           f"{why}")  # fmt: skip

    try:
        data = json.loads(line)
    except ValueError as exc:
        raise bad(f"invalid JSON ({exc})") from exc
    if not isinstance(data, Mapping):
        raise bad("not a JSON object")
    entry_id, digest, at = data.get("id"), data.get("hash"), data.get("at")
    if not isinstance(entry_id, int) or isinstance(entry_id, bool) or entry_id < 1:
        raise bad("'id' must be a positive integer")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise bad("'hash' must be 64 lowercase hex digits")
    if not isinstance(at, str):
        raise bad("'at' must be a string")
    signature, signer = data.get("signature"), data.get("key_id")
    if signature is not None and not isinstance(signature, str):
        raise bad("'signature' must be base64 text")
    if signer is not None and not isinstance(signer, str):
        raise bad("'key_id' must be a string")
    return WitnessedHead(AuditHead(entry_id, digest, at), signature, signer, number)


def read_heads(path: Path) -> list[WitnessedHead]:
    """Every witnessed head in a heads file, in file order (blank lines skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AnchorError(f"cannot read the heads file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise AnchorError(f"the heads file {path} is not UTF-8 text") from exc
    heads = [
        _parse(line, number, Path(path))
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    if not heads:
        # An empty file anchors nothing: saying "ok" against it would be false comfort.
        raise AnchorError(f"the heads file {path} holds no witnessed heads; add one with "
                          "`faceledger audit head --out FILE`")  # fmt: skip
    return heads
