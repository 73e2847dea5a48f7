"""Consent records: the written release (BIPA 15(b)) a subject signed, its text and hash."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceledger import audit
from faceledger.app.governance.common import read_document
from faceledger.app.policy import reevaluate_photos
from faceledger.catalog import consents as catalog_consents
from faceledger.catalog import photos as catalog_photos
from faceledger.clock import as_utc, iso, utcnow
from faceledger.errors import BadOptionError

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = ["record_consent", "list_consents"]


def record_consent(
    lib: Library, actor: Actor, subject: str, purpose: str, term: str, release_file: Path,
    expires_at: datetime | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Record a subject's written release for a purpose and term."""
    lib.authorize(actor, "consent.record")
    for name, value in (("the subject", subject), ("the purpose", purpose), ("the term", term)):
        if not value.strip():
            raise BadOptionError(f"{name} must not be empty")
    text, digest = read_document(release_file, "release")
    now = utcnow()
    with lib.writing() as conn:
        consent_id = catalog_consents.insert_consent(
            conn, subject, purpose, term, digest, text, actor.name, now, as_utc(expires_at)
        )
        audit.append(conn, actor.name, "consent.record", {"consents": [consent_id]},
                     {"subject": subject, "purpose": purpose, "term": term,
                      "release_sha256": digest})  # fmt: skip
    # Photos collected under this subject may now be searchable (where policy needs consent).
    with lib.catalog.engine.connect() as conn:
        photo_ids = catalog_photos.of_subject(conn, subject)
    moved = reevaluate_photos(lib, actor, "consent.apply", photo_ids) if photo_ids else None
    return {"consent": consent_id, "subject": subject, "purpose": purpose, "term": term,
            "release_sha256": digest, "recorded_at": iso(now),
            "expires_at": iso(expires_at), "faces_made_searchable":
            moved["unblocked"] if moved else 0}  # fmt: skip


def list_consents(lib: Library, actor: Actor, subject: str | None = None) -> list[dict[str, Any]]:
    """Consent records (not the release texts), newest first."""
    lib.authorize(actor, "consent.list")
    with lib.catalog.engine.connect() as conn:
        return [
            {"consent": r.id, "subject": r.subject_ref, "purpose": r.purpose, "term": r.term,
             "release_sha256": r.release_sha256, "recorded_by": r.recorded_by,
             "recorded_at": iso(r.recorded_at), "expires_at": iso(r.expires_at),
             "revoked_at": iso(r.revoked_at)}
            for r in catalog_consents.consents(conn, subject)
        ]  # fmt: skip
