"""A faceledger library: the catalog, its two vector indexes, the policy file, stored photos.

This is the one place that wires the packages together; the CLI and the web service call it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from faceledger import audit
from faceledger.app.governance import keys, vault  # governance hooks: encryption, vault access
from faceledger.catalog import Catalog, vault_counts
from faceledger.catalog import policy_versions as catalog_policy
from faceledger.catalog import users as catalog_users
from faceledger.catalog.placement import PLACED, CatalogFeed, Place
from faceledger.clock import iso, utcnow
from faceledger.config import Settings
from faceledger.errors import LibraryError, NotFoundError, PermissionDenied
from faceledger.faces import FaceEngine
from faceledger.faults import crash_point
from faceledger.files import atomic_write
from faceledger.ids import checked_id, missing
from faceledger.index import IndexStore, open_store
from faceledger.policy import Policy, authorize, default_policy_text, load_policy
from faceledger.records import OnProgress

__all__ = ["Library", "Actor", "INDEX_NAMES"]

#: The two vector indexes: one per place a face can be found in.
INDEX_NAMES = (Place.SEARCHABLE.value, Place.VAULT.value)

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


def _thousandths(on_progress: OnProgress | None) -> OnProgress | None:
    """``on_progress`` told (thousandths done, 1000) instead of counts it may not show."""
    if on_progress is None:
        return None
    return lambda done, total: on_progress(1000 * done // total if total else 1000, 1000)


class Library:
    """An opened library directory (use :meth:`create` for a new one, :meth:`open` otherwise)."""

    def __init__(self, settings: Settings):
        """Bind to the library in ``settings.library`` (no checks; see :meth:`open`)."""
        self.settings = settings
        self.root = settings.library
        self.catalog = Catalog(settings.catalog_url)
        # governance hook: encryption at rest (AES-GCM with the configured key, else locked)
        self.catalog.sealer = keys.library_sealer(settings, self.catalog)
        self._feed = CatalogFeed(self.catalog)
        self._stores: dict[str, IndexStore] = {}
        self._stores_lock = threading.Lock()  # a service's threads open each store once
        self._policy: tuple[int | None, Policy] | None = None
        self._engine: FaceEngine | None = None
        self._engine_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def create(
        cls, settings: Settings, owner: str = "owner",
        on_progress: OnProgress | None = None,
    ) -> Library:  # fmt: skip
        """Create (or upgrade) the library: directories, schema, default policy, owner user.

        An upgrade that starts the vault's kept counts (migration 0012) folds the vault into
        them here (minutes at 10^7 faces) rather than in the first ``discovery count`` after
        it. ``on_progress`` is told how far in thousandths, (done, 1000): the photos folded
        are vault photos, a count the admin running ``init`` may not see (invariant 1)."""
        settings.library.mkdir(parents=True, exist_ok=True)
        for sub in ("photos", "index"):
            (settings.library / sub).mkdir(exist_ok=True)
        lib = cls(settings)
        lib.catalog.create()
        if not lib.policy_path.exists():
            atomic_write(lib.policy_path, default_policy_text().encode())
        with lib.catalog.begin() as conn:
            if lib.catalog.get_meta(OWNER_KEY, conn) is None:
                catalog_users.insert_user(conn, owner, "admin", utcnow())
                lib.catalog.set_meta(conn, OWNER_KEY, owner)
                lib.record_policy(conn, owner)
                audit.append(conn, owner, "init", details={"library": str(lib.root.resolve())})
        lib.sync_indexes()  # empty snapshots, or ones brought up to date by an upgrade
        vault_counts.catch_up(lib.catalog.engine, _thousandths(on_progress))
        # governance hook: the key the library is opened with, so later opens without it refuse
        keys.record_library_key(lib, lib.catalog.get_meta(OWNER_KEY) or owner)
        return lib

    @classmethod
    def open(cls, settings: Settings) -> Library:
        """Open an existing library, with a clear error if it is not one."""
        if not settings.database_url and not (settings.library / "catalog.sqlite").exists():
            raise LibraryError(
                f"{settings.library} is not a faceledger library: create one there first "
                "(`faceledger init`)"
            )
        lib = cls(settings)
        lib.catalog.check_schema()
        return lib

    def close(self) -> None:
        """Release the database connections."""
        self.catalog.close()

    # -- users -----------------------------------------------------------------------------
    def owner(self) -> str | None:
        """The name of the owner: the admin ``init`` created, the operator of the machine."""
        return self.catalog.get_meta(OWNER_KEY)

    def actor(self, name: str | None) -> Actor:
        """The user named ``name`` (default: the owner), refusing disabled or unknown users."""
        name = name or self.catalog.get_meta(OWNER_KEY)
        with self.catalog.engine.connect() as conn:
            row = catalog_users.user_by_name(conn, name)
        if row is None:
            raise PermissionDenied(f"no user named {name!r}; `faceledger users list` shows them")
        if row.disabled:
            raise PermissionDenied(f"user {name!r} is disabled")
        return Actor(row.name, row.role, row.customer_type, row.region)

    def authorize(self, actor: Actor, action: str) -> None:
        """Raise PermissionDenied unless ``actor``'s role allows ``action``."""
        authorize(actor.role, action)

    def require_vault_access(self, actor: Actor) -> None:
        """Refuse unless ``actor`` is a custodian with a current attestation (and audit it)."""
        vault.require_vault_access(self, actor)

    def face_engine(self) -> FaceEngine:
        """The face engine the settings ask for, loaded once (its models take a moment)."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = FaceEngine.from_settings(self.settings)
            return self._engine

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
                body = catalog_policy.body(conn, version)
            self._policy = (version, load_policy(body or default_policy_text()))
        return self._policy[1]

    def policy_version(self) -> int | None:
        """Id of the policy version in force."""
        with self.catalog.engine.connect() as conn:
            return catalog_policy.latest_id(conn)

    def policy_summary(self, actor: Actor) -> dict[str, Any]:
        """The policy in force, its version, and whether the file has unapplied edits."""
        self.authorize(actor, "policy.show")
        body = self.policy_file_text()
        with self.catalog.engine.connect() as conn:
            row = catalog_policy.latest(conn)
        return self.policy.model_dump(mode="json") | {
            "in_force": {"version_id": row.id, "applied_by": row.applied_by,
                         "applied_at": iso(row.applied_at)} if row else None,
            "file": str(self.policy_path),
            "file_has_unapplied_edits": row is None
            or hashlib.sha256(body.encode()).hexdigest() != row.sha256,
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
        last = catalog_policy.latest(conn)
        if last is not None and last.sha256 == digest:
            version = last.id
        else:
            version = catalog_policy.insert_version(conn, body, digest, actor, utcnow())
        self._policy = (version, policy)
        return version, policy

    # -- vector indexes --------------------------------------------------------------------
    def index(self, name: str) -> IndexStore:
        """The ``searchable`` or ``vault`` index store (each catches up with the catalog's
        change log before it answers, so a face the catalog moved is never found where it was).
        """
        with self._stores_lock:
            store = self._stores.get(name)
            if store is None:
                if name not in INDEX_NAMES:
                    raise ValueError(f"no index named {name!r}")
                # governance hooks: index files are sealed and opened with the library's key
                store = open_store(
                    self.settings, name, self._feed,
                    seal=lambda: keys.seal_index(self.catalog),
                    unseal=lambda data: keys.open_index(self.catalog, data),
                )  # fmt: skip
                self._stores[name] = store
            return store

    def load_indexes(self) -> None:
        """Open and catch up both indexes now (e.g. before a commit that needs their key)."""
        for name in INDEX_NAMES:
            self.index(name).catch_up()

    def sync_indexes(self, force: bool = False) -> None:
        """After this process moved faces: both indexes catch up and persist what they must
        (vectors removed since the last save leave the files before this returns)."""
        for name in INDEX_NAMES:
            self.index(name).persist(force)

    def reindex(
        self, actor: Actor, on_progress: Callable[[str], OnProgress] | None = None
    ) -> dict[str, Any]:
        """Rebuild both vector indexes from the catalog (the source of truth).

        ``on_progress(name)``, if given, is called as each index's rebuild starts and returns
        the callback told that rebuild's faces so far and in all (``IndexStore.rebuild``).
        The vault's size (its faces, and its structure, which follows them) is a count of
        blocked faces, and those who may reindex (admins) may not read the vault (invariant
        1): neither the answer nor a bar gives it. The audit entry keeps it, under keys that
        an export without vault access leaves out."""
        self.authorize(actor, "reindex")
        sizes = {}
        for name in INDEX_NAMES:
            store = self.index(name)
            shown = on_progress is not None and name != Place.VAULT.value
            store.rebuild(on_progress(name) if shown else None)
            described = store.describe()
            sizes[name] = {"faces": described["faces"], "structure": described["structure"]}
        vault_size = sizes.pop(Place.VAULT.value)
        with self.catalog.begin() as conn:
            audit.append(conn, actor.name, "reindex", details=sizes | {
                "blocked_faces": vault_size["faces"],
                "vault_structure": vault_size["structure"]})  # fmt: skip
        return sizes | {Place.VAULT.value: {"rebuilt": True}}

    # -- reads -----------------------------------------------------------------------------
    def show_photo(self, actor: Actor, photo_id: int) -> dict[str, Any]:
        """A photo, its provenance and faces; vault faces only for those with vault access.

        Without vault access a photo whose faces are all in the vault is 'not found', with the
        same answer as a missing id, and a photo's vault faces (and their jurisdiction rows)
        are left out as if never detected.
        """
        self.authorize(actor, "show")
        reader = vault.may_read_vault(self, actor)  # asked for every id: no timing difference
        try:
            photo = self.catalog.photo(checked_id("photo", photo_id))
        except NotFoundError:
            raise missing("photo", photo_id) from None
        blocked = {f["face_id"] for f in photo["faces"] if f["blocked"]}
        if blocked and reader:
            vault.require_vault_access(self, actor, sorted(blocked))  # governance hook
        elif blocked:
            photo["faces"] = [f for f in photo["faces"] if f["face_id"] not in blocked]
            photo["jurisdictions"] = [
                j for j in photo["jurisdictions"] if j.get("face_id") not in blocked
            ]
            if not photo["faces"]:
                raise missing("photo", photo_id)
        with self.catalog.begin() as conn:
            audit.append(
                conn,
                actor.name,
                "show.photo",
                {"photos": [photo_id], "faces": [f["face_id"] for f in photo["faces"]]},
            )
        return photo

    def show_face(self, actor: Actor, face_id: int) -> dict[str, Any]:
        """One face (not its vector); a vault face is 'not found', exactly like a missing id,
        for anyone without vault access (an unattested custodian included)."""
        self.authorize(actor, "show")
        reader = vault.may_read_vault(self, actor)  # asked for every id: no timing difference
        try:
            face = self.catalog.face(checked_id("face", face_id))
        except NotFoundError:
            raise missing("face", face_id) from None
        if face["blocked"] and not reader:
            raise missing("face", face_id)
        if face["blocked"]:
            vault.require_vault_access(self, actor, [face_id])  # governance hook
        with self.catalog.begin() as conn:
            audit.append(conn, actor.name, "show.face", {"faces": [face_id]})
        return face

    def stats(self, actor: Actor) -> dict[str, Any]:
        """Counts; the vault (its faces, and photos with no other face) is counted only for
        those with vault access: an unattested custodian sees what everyone else sees."""
        self.authorize(actor, "stats")
        out = self.catalog.stats(include_blocked=vault.may_read_vault(self, actor))
        described = self.index("searchable").describe()
        out["index"] = {"backend": described["backend"], "searchable": described["structure"]}
        return out

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction on the catalog; if it moved faces, the indexes follow after it.

        The catch-up runs after the commit (the log rows are then visible to every process); a
        crash between the two is healed by the next process that opens an index.
        """
        with self.catalog.begin() as conn:
            try:
                yield conn
            finally:
                placed = conn.info.pop(PLACED, False)
        if placed:
            crash_point("after-commit")
            self.sync_indexes()

    def photo_file(self, stored_path: str | None) -> Path | None:
        """Absolute path of a stored photo file."""
        return self.root / stored_path if stored_path else None

