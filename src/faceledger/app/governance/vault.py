"""Who may read the vault: custodians with a current signed attestation, each read audited."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from faceledger import audit
from faceledger.app.governance.attestations import has_current_attestation
from faceledger.catalog import visibility as catalog_visibility
from faceledger.errors import PermissionDenied

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = ["require_vault_access", "may_read_vault", "Redaction"]


def may_read_vault(lib: Library, actor: Actor) -> bool:
    """Whether ``actor`` may read the vault now (a custodian with a current attestation)."""
    try:
        lib.authorize(actor, "vault.read")
    except PermissionDenied:
        return False
    with lib.catalog.engine.connect() as conn:
        return has_current_attestation(conn, actor.name)


def require_vault_access(lib: Library, actor: Actor, face_ids: Sequence[int] = ()) -> None:
    """Refuse unless ``actor`` may read the vault now; record the read in the audit log."""
    lib.authorize(actor, "vault.read")
    with lib.writing() as conn:
        if not has_current_attestation(conn, actor.name):
            raise PermissionDenied(
                f"custodian {actor.name!r} has no current signed attestation, so may not read the "
                f"vault: sign one first (`faceledger attest {actor.name}`)"
            )
        audit.append(conn, actor.name, "vault.read", {"faces": [int(i) for i in face_ids]})


class Redaction:
    """What of the vault one actor may see: everything with vault access, else nothing.

    Without vault access a face in the vault, and a photo whose faces are all in it, are
    treated as never stored: ids are dropped from lists and counts leave them out.
    """

    def __init__(self, lib: Library, actor: Actor):
        self.lib = lib
        #: Whether the actor may read the vault (and so sees everything).
        self.full = may_read_vault(lib, actor)

    def faces(self, face_ids: Iterable[int]) -> list[int]:
        """These face ids less the vault's (in their order), unless the actor may read it."""
        ids = [int(i) for i in face_ids]
        if self.full or not ids:
            return ids
        with self.lib.catalog.engine.connect() as conn:
            hidden = catalog_visibility.vault_face_ids(conn, ids)
        return [i for i in ids if i not in hidden]

    def photos(self, photo_ids: Iterable[int]) -> list[int]:
        """These photo ids less the hidden photos', unless the actor may read the vault."""
        ids = [int(i) for i in photo_ids]
        if self.full or not ids:
            return ids
        with self.lib.catalog.engine.connect() as conn:
            hidden = catalog_visibility.hidden_photo_ids(conn, ids)
        return [i for i in ids if i not in hidden]
