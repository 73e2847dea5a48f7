"""Who may read the vault: custodians with a current signed attestation, each read audited."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from faceledger import audit
from faceledger.app.governance.attestations import has_current_attestation
from faceledger.errors import PermissionDenied

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = ["require_vault_access", "may_read_vault"]


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
                f"vault: sign one with `faceledger attest {actor.name} --statement-file FILE`"
            )
        audit.append(conn, actor.name, "vault.read", {"faces": [int(i) for i in face_ids]})
