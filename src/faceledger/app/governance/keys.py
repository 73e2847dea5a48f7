"""Encryption at rest: the library's vector sealer, sealed index files, key files, rotation;
and the Ed25519 key pairs that sign witnessed audit heads.

The catalog records the id (never the key) of the key that seals the library's vectors in
``library_meta`` under :data:`KEY_META`; the key itself stays outside the library directory, in
a key file (``FACELEDGER_KEY_FILE``) or ``$FACELEDGER_KEY``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceledger import audit
from faceledger.app.governance.common import checkpoint, inside, secure_delete
from faceledger.audit import anchor
from faceledger.catalog import Catalog
from faceledger.catalog import faces as catalog_faces
from faceledger.catalog.crypto import KEY_ENV, AesGcmSealer, generate_key_file, load_key
from faceledger.catalog.vectors import VectorSealer
from faceledger.config import Settings
from faceledger.errors import AnchorError, BadOptionError, KeyMissingError

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = [
    "KEY_META",
    "LockedSealer",
    "library_sealer",
    "expected_key_id",
    "seal_index",
    "open_index",
    "new_key_file",
    "generate",
    "generate_signing_key",
    "key_file_for_init",
    "record_library_key",
    "rotate",
]

#: library_meta key holding the id of the key the library's vectors are sealed with.
KEY_META = "vector_key_id"
#: A sealed index file starts with this, then the 16-character key id, then nonce+ciphertext.
INDEX_MAGIC = b"FLSEALED1\n"
_KID_LEN = 16
_BATCH = 1000


def _missing(kid: str) -> str:
    return (
        f"the face vectors of this library are encrypted with key {kid} and that key is not "
        f"loaded: set FACELEDGER_KEY_FILE to its key file (or {KEY_ENV} to its base64 text)"
    )


class LockedSealer:
    """The sealer of a library opened without a key: plain vectors only, sealed ones refused."""

    key_id: str | None = None

    def __init__(self, expected_key_id: Callable[[], str | None]):
        """``expected_key_id`` says (lazily) which key the library's vectors need, if any."""
        self._expected = expected_key_id

    def seal(self, data: bytes) -> bytes:
        """Plain bytes, unless the library is encrypted: then refuse rather than leak."""
        kid = self._expected()
        if kid:
            raise KeyMissingError(_missing(kid))
        return data

    def open(self, blob: bytes, key_id: str | None) -> bytes:
        """A plain blob as is; a sealed one cannot be opened without its key."""
        if key_id is None:
            return blob
        raise KeyMissingError(_missing(key_id))


def library_sealer(settings: Settings, catalog: Catalog) -> VectorSealer:
    """The sealer for a library: AES-GCM with the configured key, else a locked one."""
    key = load_key(settings.key_file or None)
    if key is None:
        return LockedSealer(lambda: expected_key_id(catalog))
    return AesGcmSealer.from_keys(key)


def expected_key_id(catalog: Catalog) -> str | None:
    """The key id the library's vectors are sealed with (None: the library is plain)."""
    recorded = catalog.get_meta(KEY_META)
    if recorded:
        return recorded
    # A library given a key from the start never rotated: its sealed rows say which key.
    with catalog.engine.connect() as conn:
        return catalog_faces.sealed_key_id(conn)


def seal_index(catalog: Catalog) -> Callable[[bytes], bytes] | None:
    """The ``seal`` callable for saving an index file, or None where the library is plain."""
    sealer = catalog.sealer
    if sealer.key_id is None:
        sealer.seal(b"")  # a locked sealer raises KeyMissingError if the library is encrypted
        return None
    kid = sealer.key_id
    return lambda data: INDEX_MAGIC + kid.encode("ascii") + sealer.seal(data)


def open_index(catalog: Catalog, data: bytes | memoryview) -> bytes | memoryview:
    """The FAISS bytes of a saved index file, opening it if it was sealed (a plain file's
    bytes come back as given, e.g. a view of the mapped file: no copy)."""
    view = memoryview(data)
    if bytes(view[: len(INDEX_MAGIC)]) != INDEX_MAGIC:
        return data
    start = len(INDEX_MAGIC)
    kid = bytes(view[start : start + _KID_LEN]).decode("ascii", "replace")
    try:
        return catalog.sealer.open(bytes(view[start + _KID_LEN :]), kid)
    except KeyMissingError as exc:
        raise KeyMissingError(
            f"{exc}; if the catalog's key was rotated since this index file was saved, "
            "`faceledger reindex` rebuilds it with the current key"
        ) from exc


def new_key_file(library_root: Path, path: Path) -> str:
    """Write a new key to ``path``, which must lie outside the library; return its key id."""
    if inside(path, library_root):
        raise BadOptionError(
            f"{path} is inside the library directory {library_root}: keep the key elsewhere, "
            "or anyone who copies the library can read its vectors"
        )
    return generate_key_file(path)


def key_file_for_init(settings: Settings, path: Path) -> Settings:
    """For `init --key-file PATH`: create the key file if missing (outside the library) and
    return settings that use it."""
    from dataclasses import replace

    if not Path(path).exists():
        new_key_file(settings.library, path)
    elif inside(path, settings.library):
        new_key_file(settings.library, path)  # raises the inside-the-library error
    return replace(settings, key_file=str(path))


def record_library_key(lib: Library, actor_name: str) -> str | None:
    """Record (once) the id of the key this library is opened with, so that opening it later
    without that key refuses to write plain vectors even before any face is stored."""
    kid = lib.catalog.sealer.key_id
    if kid is None:
        return None
    with lib.writing() as conn:
        if lib.catalog.get_meta(KEY_META, conn) != kid:
            lib.catalog.set_meta(conn, KEY_META, kid)
            audit.append(conn, actor_name, "key.set", {}, {"key_id": kid})
    return kid


def generate(lib: Library, actor: Actor, path: Path) -> dict[str, Any]:
    """Write a new key file for this library's admin (outside the library); audit it."""
    lib.authorize(actor, "key.rotate")
    kid = new_key_file(lib.root, path)
    with lib.writing() as conn:
        audit.append(conn, actor.name, "key.generate", {}, {"key_id": kid})
    return {"key_file": str(path), "key_id": kid,
            "next": f"faceledger key rotate --new-key-file {path}"}  # fmt: skip


def generate_signing_key(lib: Library, actor: Actor, path: Path) -> dict[str, Any]:
    """Write an Ed25519 key pair for signing audit heads (``path``, 0600, and ``path.pub``),
    outside the library; audit its public key id.

    Whoever may witness the audit head (``audit.verify``) may make one: the key is the
    witness's own, and the admin need not hold it.
    """
    lib.authorize(actor, "audit.verify")
    pub_path = anchor.public_key_path(path)
    for target in (path, pub_path):
        if inside(target, lib.root):
            raise AnchorError(
                f"{target} is inside the library directory {lib.root}: keep the signing key "
                "elsewhere, or whoever can rewrite the log can also sign its heads"
            )
    kid = anchor.generate_signing_key(path)
    with lib.writing() as conn:
        audit.append(conn, actor.name, "key.generate", {}, {"kind": "ed25519", "key_id": kid})
    return {"key_file": str(path), "public_key_file": str(pub_path), "key_id": kid,
            "next": f"faceledger audit head --out HEADS.jsonl --sign-key {path}"}  # fmt: skip


def rotate(lib: Library, actor: Actor, new_key_path: Path) -> dict[str, Any]:
    """Re-seal every vector blob and both index files with the key in ``new_key_path``.

    The key file is created when it does not exist. Vectors stored in plain (a library that had
    no key) are sealed too, so this also turns encryption on.
    """
    lib.authorize(actor, "key.rotate")
    created = None
    if not Path(new_key_path).exists():
        created = new_key_file(lib.root, new_key_path)
    elif inside(new_key_path, lib.root):
        new_key_file(lib.root, new_key_path)  # raises the inside-the-library error
    new_key = load_key(new_key_path)
    assert new_key is not None
    new_sealer = AesGcmSealer.from_keys(new_key)
    old_sealer = lib.catalog.sealer
    # Load both indexes with the old key now: after the commit only the new key will open them.
    lib.load_indexes()
    old_ids: set[str | None] = set()
    count = 0
    with lib.writing() as conn:
        secure_delete(conn)  # the old blobs (maybe plain) must not survive in free pages
        rows = catalog_faces.stored_vectors(conn)
        batch = []
        for face_id, blob, kid in rows:
            old_ids.add(kid)
            plain = old_sealer.open(blob, kid)
            batch.append({"fid": face_id, "blob": new_sealer.seal(plain), "kid": new_sealer.key_id})
            if len(batch) >= _BATCH:
                catalog_faces.reseal(conn, batch)
                count += len(batch)
                batch = []
        if batch:
            catalog_faces.reseal(conn, batch)
            count += len(batch)
        previous = lib.catalog.get_meta(KEY_META, conn)
        lib.catalog.set_meta(conn, KEY_META, new_sealer.key_id or "")
        details = {
            "new_key_id": new_sealer.key_id,
            "previous_key_id": previous,
            "resealed_from": sorted(k or "plain" for k in old_ids),
            "faces": count,
        }
        audit.append(conn, actor.name, "key.rotate", {}, details)
    lib.catalog.sealer = new_sealer
    lib.sync_indexes(force=True)  # the indexes loaded above, now sealed with the new key
    checkpoint(lib.catalog.engine)
    return {
        **details,
        "key_file": str(new_key_path),
        "key_file_created": created is not None,
        "next": f"set FACELEDGER_KEY_FILE={new_key_path} from now on",
    }
