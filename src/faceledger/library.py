"""A faceledger library: the catalog, its two vector indexes, the policy file, stored photos.

This is the one place that wires the packages together; the CLI and the web service call it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, insert, select

from faceledger import audit
from faceledger.catalog import SEARCHABLE, VAULT, Catalog
from faceledger.catalog import schema as t
from faceledger.clock import iso, utcnow
from faceledger.config import Settings
from faceledger.errors import LibraryError, NotFoundError, PermissionDenied
from faceledger.governance import keys, vault  # governance hooks: encryption, vault access
from faceledger.ids import checked_id
from faceledger.index import FaissIndex
from faceledger.index.faiss_index import atomic_write
from faceledger.policy import Policy, authorize, default_policy_text, load_policy

__all__ = ["Library", "Actor", "INDEX_NAMES"]

#: The two vector indexes and the catalog condition each mirrors.
INDEX_NAMES = {"searchable": SEARCHABLE, "vault": VAULT}
OWNER_KEY = "owner"


@dataclass(frozen=True)
class Actor:
    """The user a command acts as."""

    name: str
    role: str
    customer_type: str | None = None
    region: str | None = None

    @property
    def is_custodian(self) -> bool:
        """Custodians alone may see blocked faces and counts that include them."""
        return self.role == "custodian"


class Library:
    """An opened library directory (use :meth:`create` for a new one, :meth:`open` otherwise)."""

    def __init__(self, settings: Settings):
        """Bind to the library in ``settings.library`` (no checks; see :meth:`open`)."""
        self.settings = settings
        self.root = settings.library
        self.catalog = Catalog(settings.catalog_url)
        # governance hook: encryption at rest (AES-GCM with the configured key, else locked)
        self.catalog.sealer = keys.library_sealer(settings, self.catalog)
        self._indexes: dict[str, FaissIndex] = {}
        self._index_generation: dict[str, str] = {}  # catalog generation each index reflects
        self._policy: tuple[int | None, Policy] | None = None
        # A web service shares one Library between threads: one index load or sync at a time.
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def create(cls, settings: Settings, owner: str = "owner") -> Library:
        """Create (or upgrade) the library: directories, schema, default policy, owner user."""
        settings.library.mkdir(parents=True, exist_ok=True)
        for sub in ("photos", "index"):
            (settings.library / sub).mkdir(exist_ok=True)
        lib = cls(settings)
        lib.catalog.create()
        if not lib.policy_path.exists():
            atomic_write(lib.policy_path, default_policy_text().encode())
        with lib.catalog.begin() as conn:
            if lib.catalog.get_meta(OWNER_KEY, conn) is None:
                conn.execute(insert(t.users).values(name=owner, role="admin", created_at=utcnow()))
                lib.catalog.set_meta(conn, OWNER_KEY, owner)
                lib.record_policy(conn, owner)
                audit.append(conn, owner, "init", details={"library": str(lib.root.resolve())})
        return lib

    @classmethod
    def open(cls, settings: Settings) -> Library:
        """Open an existing library, with a clear error if it is not one."""
        if not settings.database_url and not (settings.library / "catalog.sqlite").exists():
            raise LibraryError(
                f"{settings.library} is not a faceledger library: run "
                f"`faceledger --library {settings.library} init` first"
            )
        lib = cls(settings)
        lib.catalog.check_schema()
        return lib

    def close(self) -> None:
        """Release the database connections."""
        self.catalog.close()

    # -- users -----------------------------------------------------------------------------
    def actor(self, name: str | None) -> Actor:
        """The user named ``name`` (default: the owner), refusing disabled or unknown users."""
        name = name or self.catalog.get_meta(OWNER_KEY)
        with self.catalog.engine.connect() as conn:
            row = conn.execute(select(t.users).where(t.users.c.name == name)).mappings().first()
        if row is None:
            raise PermissionDenied(f"no user named {name!r}; `faceledger users list` shows them")
        if row["disabled"]:
            raise PermissionDenied(f"user {name!r} is disabled")
        return Actor(row["name"], row["role"], row["customer_type"], row["region"])

    def authorize(self, actor: Actor, action: str) -> None:
        """Raise PermissionDenied unless ``actor``'s role allows ``action``."""
        authorize(actor.role, action)

    def require_vault_access(self, actor: Actor) -> None:
        """Refuse unless ``actor`` is a custodian with a current attestation (and audit it)."""
        vault.require_vault_access(self, actor)

    # -- policy ----------------------------------------------------------------------------
    @property
    def policy_path(self) -> Path:
        """The policy file operators edit."""
        return self.root / "policy.yaml"

    @property
    def policy(self) -> Policy:
        """The policy in force: the last version applied (edits to the file wait for
        `policy apply`, so every decision is made under a version the catalog records).

        Re-read when another process applies a new version (one cheap query a call).
        """
        version = self.policy_version()
        if self._policy is None or self._policy[0] != version:
            with self.catalog.engine.connect() as conn:
                body = conn.scalar(
                    select(t.policy_versions.c.body).where(t.policy_versions.c.id == version)
                )
            self._policy = (version, load_policy(body or default_policy_text()))
        return self._policy[1]

    def policy_version(self) -> int | None:
        """Id of the policy version in force."""
        with self.catalog.engine.connect() as conn:
            return conn.scalar(select(func.max(t.policy_versions.c.id)))

    def policy_summary(self) -> dict[str, Any]:
        """The policy in force, its version, and whether the file has unapplied edits."""
        body = self.policy_file_text()
        with self.catalog.engine.connect() as conn:
            row = conn.execute(
                select(t.policy_versions).order_by(t.policy_versions.c.id.desc()).limit(1)
            ).mappings().first()  # fmt: skip
        return self.policy.model_dump(mode="json") | {
            "in_force": {"version_id": row["id"], "applied_by": row["applied_by"],
                         "applied_at": iso(row["applied_at"])} if row else None,
            "file": str(self.policy_path),
            "file_has_unapplied_edits": row is None
            or hashlib.sha256(body.encode()).hexdigest() != row["sha256"],
        }  # fmt: skip

    def policy_file_text(self) -> str:
        """The policy file as operators last edited it (maybe not applied yet)."""
        try:
            return self.policy_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return default_policy_text()

    def record_policy(self, conn: Connection, actor: str) -> tuple[int, Policy]:
        """Validate the policy file and make it the version in force if it changed.

        Returns its id and the parsed policy, in force for ``conn``'s transaction already.
        """
        body = self.policy_file_text()
        policy = load_policy(body)  # a ConfigError here leaves the version in force as it was
        digest = hashlib.sha256(body.encode()).hexdigest()
        last = conn.execute(
            select(t.policy_versions.c.id, t.policy_versions.c.sha256)
            .order_by(t.policy_versions.c.id.desc())
            .limit(1)
        ).first()
        if last is not None and last.sha256 == digest:
            version = last.id
        else:
            version = conn.execute(
                insert(t.policy_versions).values(
                    body=body, sha256=digest, applied_by=actor, applied_at=utcnow()
                )
            ).inserted_primary_key[0]
        self._policy = (version, policy)
        return version, policy

    # -- vector indexes --------------------------------------------------------------------
    def _index_path(self, name: str) -> Path:
        return self.root / "index" / f"{name}.faiss"

    def _generation(self, name: str) -> str:
        """The catalog's current generation for index ``name``."""
        return self.catalog.get_meta(f"generation:{name}") or "0"

    def bump_generation(self, conn: Connection, *names: str) -> None:
        """Note, in the same transaction, that the faces behind these indexes changed."""
        for name in names:
            key = f"generation:{name}"
            value = int(self.catalog.get_meta(key, conn) or 0) + 1
            self.catalog.set_meta(conn, key, str(value))

    def index(self, name: str) -> FaissIndex:
        """The ``searchable`` or ``vault`` index, in step with the catalog.

        The saved file, or the copy in memory, is trusted only if it reflects the catalog's
        current generation for that index; otherwise it is brought in step (after a crash
        between a commit and a save, or a change by another process, e.g. while a service
        runs) so that a face the catalog blocks can never be found.
        """
        with self._lock:
            generation = self._generation(name)
            index = self._indexes.get(name)
            if index is not None:
                if self._index_generation.get(name) != generation:
                    self._sync(name, index)
                return index
            path = self._index_path(name)
            if path.exists():
                # governance hook: a sealed index file is opened with the library's key
                index = FaissIndex.from_bytes(keys.open_index(self.catalog, path.read_bytes()))
                self._index_generation[name] = _read_text(path.with_suffix(".gen")) or ""
                if self._index_generation[name] != generation:
                    self._sync(name, index)
            else:
                ids, vectors = self.catalog.vectors(INDEX_NAMES[name])
                index = FaissIndex.build(ids, vectors, self.settings.exact_index_max)
                self._save(name, index, generation)
            self._indexes[name] = index
            return index

    def _sync(self, name: str, index: FaissIndex) -> tuple[int, int]:
        """Make ``index`` hold exactly the catalog's faces for it; returns (added, removed)."""
        generation = self._generation(name)
        want = self.catalog.face_ids(INDEX_NAMES[name])
        have = index.ids()
        extra = np.setdiff1d(have, want, assume_unique=True)
        missing = np.setdiff1d(want, have, assume_unique=True)
        removed = index.remove(extra)
        if len(missing):
            ids, vectors = self.catalog.vectors(t.faces.c.id.in_(missing.tolist()))
            index.add(ids, vectors)
        self._save(name, index, generation)
        return len(missing), removed

    def _save(self, name: str, index: FaissIndex, generation: str) -> None:
        path = self._index_path(name)
        index.save(path, seal=keys.seal_index(self.catalog))  # governance hook: sealed file
        atomic_write(path.with_suffix(".gen"), generation.encode())
        self._index_generation[name] = generation

    def save_indexes(self) -> None:
        """Save the loaded indexes, stamped with the catalog's generations.

        Only for a caller that has applied every committed change to the indexes in memory.
        """
        with self._lock:
            for name, index in self._indexes.items():
                self._save(name, index, self._generation(name))

    def refresh_indexes(self) -> None:
        """Bring both indexes in step with the catalog after this process committed a change.

        One pass per index that is behind: remove what the catalog no longer has there (blocked,
        destroyed), add what it gained, save once.
        """
        for name in INDEX_NAMES:
            self.index(name)

    def reindex(self, actor: Actor) -> dict[str, Any]:
        """Rebuild both vector indexes from the catalog (the source of truth)."""
        self.authorize(actor, "reindex")
        out = {}
        for name, where in INDEX_NAMES.items():
            generation = self._generation(name)
            ids, vectors = self.catalog.vectors(where)
            index = FaissIndex.build(ids, vectors, self.settings.exact_index_max)
            self._save(name, index, generation)
            self._indexes[name] = index
            out[name] = {"faces": len(index), "structure": index.plan.describe()}
        with self.catalog.begin() as conn:
            audit.append(conn, actor.name, "reindex", details=out)
        return out

    # -- reads -----------------------------------------------------------------------------
    def show_photo(self, actor: Actor, photo_id: int) -> dict[str, Any]:
        """A photo, its provenance and faces; blocked faces only for custodians."""
        self.authorize(actor, "show")
        photo = self.catalog.photo(checked_id("photo", photo_id))
        if actor.is_custodian and any(f["blocked"] for f in photo["faces"]):
            vault.require_vault_access(
                self, actor, [f["face_id"] for f in photo["faces"] if f["blocked"]]
            )  # governance hook
        if not actor.is_custodian:
            photo["faces"] = [f for f in photo["faces"] if not f["blocked"]]
            if not photo["faces"] and self._has_blocked_faces(photo_id):
                # Saying "this photo has hidden faces" would itself disclose a blocked face.
                raise NotFoundError(f"no photo with id {photo_id}")
        with self.catalog.begin() as conn:
            audit.append(
                conn,
                actor.name,
                "show.photo",
                {"photos": [photo_id], "faces": [f["face_id"] for f in photo["faces"]]},
            )
        return photo

    def _has_blocked_faces(self, photo_id: int) -> bool:
        with self.catalog.engine.connect() as conn:
            return bool(
                conn.scalar(
                    select(func.count())
                    .select_from(t.faces)
                    .where(t.faces.c.photo_id == photo_id, VAULT)
                )
            )

    def show_face(self, actor: Actor, face_id: int) -> dict[str, Any]:
        """One face (not its vector); a blocked face is 'not found' for all but custodians."""
        self.authorize(actor, "show")
        face = self.catalog.face(checked_id("face", face_id))
        if face["blocked"] and not actor.is_custodian:
            raise NotFoundError(f"no face with id {face_id}")
        if face["blocked"]:
            vault.require_vault_access(self, actor, [face_id])  # governance hook
        with self.catalog.begin() as conn:
            audit.append(conn, actor.name, "show.face", {"faces": [face_id]})
        return face

    def stats(self, actor: Actor) -> dict[str, Any]:
        """Counts; blocked faces are counted only for custodians."""
        self.authorize(actor, "stats")
        out = self.catalog.stats(include_blocked=actor.is_custodian)
        out["index"] = {"searchable": self.index("searchable").plan.describe()}
        return out

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction on the catalog."""
        with self.catalog.begin() as conn:
            yield conn

    def photo_file(self, stored_path: str | None) -> Path | None:
        """Absolute path of a stored photo file."""
        return self.root / stored_path if stored_path else None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None
