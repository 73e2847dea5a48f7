"""Face vectors sealed with AES-256-GCM, and the key files that hold the keys.

A sealed blob is ``nonce (12 bytes) || ciphertext+tag``; the face row stores the id of the key
that sealed it (:func:`key_id`), so a library can hold blobs from several keys while one is being
rotated out, and a missing key is named rather than guessed at.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceledger.errors import ConfigError, DecryptionError, KeyMissingError

__all__ = [
    "AesGcmSealer",
    "DecryptionError",
    "KEY_ENV",
    "generate_key_file",
    "key_id",
    "load_key",
]

#: Environment variable holding the base64 key when no key file is given.
KEY_ENV = "FACELEDGER_KEY"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# Binds every blob to this format: a blob from another use of the same key will not open.
ASSOCIATED_DATA = b"faceledger-vector-v1"


def key_id(key: bytes) -> str:
    """The public id of a key: the first 16 hex characters of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]


def _check_key(key: bytes, where: str) -> bytes:
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where}: the key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def _decode_key(encoded: str, where: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where}: not base64 text ({exc})") from exc
    return _check_key(key, where)


def load_key(
    key_file: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> bytes | None:
    """The 32-byte key from ``key_file`` (base64 text), else from $FACELEDGER_KEY, else None."""
    if key_file is not None:
        path = Path(key_file)
        try:
            encoded = path.read_text(encoding="ascii")
        except FileNotFoundError as exc:
            raise KeyMissingError(
                f"key file {path} does not exist: give the right --key-file, or create one with "
                "`faceledger key generate`"
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"key file {path} cannot be read: {exc}") from exc
        return _decode_key(encoded, f"key file {path}")
    encoded = (os.environ if environ is None else environ).get(KEY_ENV)
    if encoded:
        return _decode_key(encoded, f"${KEY_ENV}")
    return None


def generate_key_file(path: str | os.PathLike[str]) -> str:
    """Write a new random key to ``path`` (mode 0600, never overwriting); return its id."""
    path = Path(path)
    key = os.urandom(KEY_BYTES)
    try:
        # O_EXCL: refuse to overwrite, atomically; losing a key loses every vector it sealed.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(
            f"key file {path} already exists: refusing to overwrite it (vectors sealed with it "
            "could never be opened again); choose another path"
        ) from exc
    try:
        os.fchmod(fd, 0o600)  # exactly 0600 whatever the umask
        os.write(fd, base64.b64encode(key) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key_id(key)


class AesGcmSealer:
    """Seals vectors with the current key; opens blobs sealed with any key it holds."""

    def __init__(self, keys: Mapping[str, bytes], current: str):
        """Hold ``keys`` (key id to 32-byte key) and seal new vectors with ``keys[current]``."""
        self._aead: dict[str, AESGCM] = {}
        for kid, key in keys.items():
            _check_key(key, f"key {kid}")
            if key_id(key) != kid:
                raise ConfigError(f"key listed as {kid} has id {key_id(key)}")
            self._aead[kid] = AESGCM(key)
        if current not in self._aead:
            raise ConfigError(f"the current key {current} is not among the keys given")
        self._current = current
        self.key_id: str | None = current

    @classmethod
    def from_keys(cls, current: bytes, *previous: bytes) -> AesGcmSealer:
        """A sealer that seals with ``current`` and still opens blobs of ``previous`` keys."""
        keys = {key_id(k): k for k in previous}
        keys[key_id(current)] = current
        return cls(keys, key_id(current))

    @property
    def key_ids(self) -> frozenset[str]:
        """Ids of every key this sealer can open."""
        return frozenset(self._aead)

    def seal(self, data: bytes) -> bytes:
        """Encrypt ``data`` with the current key: a fresh random nonce, then the ciphertext."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead[self._current].encrypt(nonce, data, ASSOCIATED_DATA)

    def open(self, blob: bytes, key_id: str | None) -> bytes:
        """Decrypt a blob sealed under ``key_id``; a blob with no key id was stored in plain."""
        if key_id is None:
            # Vectors stored before the library had a key: read them, re-seal on rotation.
            return blob
        aead = self._aead.get(key_id)
        if aead is None:
            raise KeyMissingError(
                f"this vector was sealed with key {key_id}, which is not loaded (loaded: "
                f"{', '.join(sorted(self._aead))}): set {KEY_ENV} or --key-file to that key"
            )
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError(f"sealed vector is {len(blob)} bytes, too short to be one")
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], ASSOCIATED_DATA)
        except InvalidTag as exc:
            raise DecryptionError(
                f"cannot open a vector sealed with key {key_id}: the key does not match or the "
                "stored blob was altered"
            ) from exc
