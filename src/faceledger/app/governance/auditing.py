"""The audit log as governance commands: witness its head, verify (against witnessed heads) and
export, authorized by role.

Witnessing appends an ``audit.head`` entry and the head printed is that entry: the log then
records each witnessing (who, when, whether signed), and the head covers its own witnessing, so
a tail cut back to just before it is caught like any other. Whoever may verify may witness.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceledger import audit
from faceledger.app.governance import vault
from faceledger.app.governance.common import inside
from faceledger.audit import anchor
from faceledger.catalog import visibility as catalog_visibility
from faceledger.catalog.history import placement_head
from faceledger.errors import AnchorError
from faceledger.records import EVERY_AUDIT_ENTRY, AuditFilter

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = ["witness_head", "verify_log", "export_log", "parse_bound", "Pseudonyms", "PSEUDONYM_KEY"]

#: library_meta key of the secret that keys the audit export's pseudonyms.
PSEUDONYM_KEY = "audit_pseudonym_key"


def _outside(lib: Library, path: Path, what: str) -> None:
    # Anyone who can write the library could rewrite a witness kept beside it.
    if inside(path, lib.root):
        raise AnchorError(
            f"the {what} {path} is inside the library directory {lib.root}: keep it elsewhere "
            "(another disk, machine or person), where whoever can change the library cannot"
        )


def witness_head(
    lib: Library, actor: Actor, out: Path | None = None, sign_key: Path | None = None
) -> dict[str, Any]:
    """Append an ``audit.head`` entry and return it as the head (signed, and appended to the
    heads file ``out``, when asked)."""
    lib.authorize(actor, "audit.verify")
    # Key and file first: a bad path must fail before the log records a witnessing.
    private_key = None
    if sign_key is not None:
        _outside(lib, sign_key, "signing key")
        private_key = anchor.load_signing_key(sign_key)
    if out is not None:
        _outside(lib, out, "heads file")
    handle = anchor.open_heads(out) if out is not None else None
    try:
        signer = anchor.key_id(private_key.public_key()) if private_key else None
        with lib.writing() as conn:
            # The change log's head too: re-hashing that log then breaks the witnessed chain.
            audit.append(conn, actor.name, "audit.head", {},
                         {"signed_by": signer, "to_file": out is not None,
                          "placement_log": placement_head(conn)})  # fmt: skip
            head = audit.head(conn)
        assert head is not None  # the entry just appended
        witnessed = anchor.sign(head, private_key) if private_key else anchor.WitnessedHead(head)
        if handle is not None:
            anchor.write_head(handle, witnessed)
    finally:
        if handle is not None:
            handle.close()
    return {**witnessed.to_json(), "out": str(out) if out is not None else None}


def _anchor_reason(result: audit.VerifyResult, heads: list[anchor.WitnessedHead]) -> str:
    named = [h for h in heads if h.head.id == result.anchor_id]
    return f"{result.reason}; it fails the " + "; and the ".join(h.describe() for h in named)


def verify_log(
    lib: Library, actor: Actor, anchor_file: Path | None = None, verify_key: Path | None = None
) -> dict[str, Any]:
    """Check the audit chain and, given a heads file, that the log still holds every head
    witnessed in it (with their signatures, given the public key)."""
    lib.authorize(actor, "audit.verify")
    if verify_key is not None and anchor_file is None:
        raise AnchorError(
            "a public key checks the signatures of a heads file: give the heads file too"
        )
    heads = anchor.read_heads(anchor_file) if anchor_file is not None else []
    problems: list[str] = []
    if verify_key is not None:
        public_key = anchor.load_verify_key(verify_key)
        problems = [p for h in heads if (p := anchor.signature_problem(h, public_key))]
    result = audit.verify(lib.catalog.engine, anchors=[(h.head.id, h.head.hash) for h in heads])
    reason = result.reason
    if result.anchor_id is not None:
        reason = _anchor_reason(result, heads)
    ok = result.ok and not problems
    if problems and result.ok:
        # The chain and the heads agree, but the heads cannot be trusted as the witness's.
        reason = "; ".join(problems)
    report: dict[str, Any] = {
        "ok": ok, "checked": result.checked, "first_bad_id": result.first_bad_id,
        "reason": reason, "last_id": result.last_id, "last_hash": result.last_hash,
    }  # fmt: skip
    if anchor_file is not None:
        report["anchor"] = {
            "file": str(anchor_file),
            "heads": len(heads),
            "newest_id": max(h.head.id for h in heads),
            "signatures": "not checked" if verify_key is None else
                          ("verified" if not problems else "failed"),
            "signature_problems": problems,
        }  # fmt: skip
    return report


def parse_bound(text: str | None, end: bool = False) -> datetime | None:
    """An export bound from ISO 8601 text; a bare date as an ``end`` means the whole day.

    Raises ValueError on text that is not ISO 8601.
    """
    if not text or not text.strip():
        return None
    value = datetime.fromisoformat(text.strip())
    if end and len(text.strip()) == 10:  # 2026-01-31: up to the last instant of that day
        value = value + timedelta(days=1) - timedelta(microseconds=1)
    return value


def export_log(
    lib: Library, actor: Actor, where: AuditFilter = EVERY_AUDIT_ENTRY
) -> Iterator[dict]:
    """The audit entries ``where`` selects (default: all), then an entry recording this
    export and its filter.

    Without vault access (auditors, unattested custodians) the ids of vault faces and hidden
    photos, and a hidden photo's SHA-256, are replaced by keyed pseudonyms (the same one each
    time for the same id, so entries about one face can still be followed) and the entry is
    marked ``"pseudonymised": true``; counts of blocked faces are left out of every entry.
    ``audit verify`` runs over the stored log and is unaffected.
    """
    lib.authorize(actor, "audit.export")
    pseudonyms = None if vault.may_read_vault(lib, actor) else Pseudonyms.of(lib)
    count = 0
    for entry in audit.export(lib.catalog.engine, where):
        count += 1
        yield pseudonyms.entry(entry) if pseudonyms is not None else entry
    with lib.writing() as conn:
        audit.append(
            conn,
            actor.name,
            "audit.export",
            {},
            where.as_details() | {"entries": count},
        )


#: object_ids keys whose ids are faces or photos.
_OBJECT_KINDS = {"faces": "face", "blocked": "face", "unblocked": "face", "photos": "photo"}
#: details keys whose value (an id, or a list of ids or of records with an "id") names one.
_DETAIL_KINDS = {"face": "face", "face_id": "face", "faces": "face", "due_faces": "face",
                 "held_faces": "face", "photo": "photo", "photo_id": "photo", "photos": "photo"}
#: details keys that count blocked faces, or tell the vault's size: never shown without vault
#: access (the vault index's structure follows its size).
_BLOCKED_COUNTS = ("blocked_faces", "faces_blocked", "vault_structure")


class Pseudonyms:
    """Keyed pseudonyms (HMAC-SHA256 with a secret of the library) for the vault's ids."""

    def __init__(self, secret: bytes, faces: set[int], photos: set[int], shas: set[str]):
        self._secret = secret
        self._ids = {"face": faces, "photo": photos}
        self._shas = shas
        self._changed = False

    @classmethod
    def of(cls, lib: Library) -> Pseudonyms:
        """The library's secret (made on first use) and the vault's ids as they are now."""
        with lib.writing() as conn:
            secret = lib.catalog.get_meta(PSEUDONYM_KEY, conn)
            if secret is None:
                secret = secrets.token_hex(32)
                lib.catalog.set_meta(conn, PSEUDONYM_KEY, secret)
            faces = catalog_visibility.vault_face_ids(conn)
            photos = catalog_visibility.hidden_photo_ids(conn)
            shas = set(catalog_visibility.photo_sha256s(conn, photos).values())
        return cls(bytes.fromhex(secret), faces, photos, shas)

    def name(self, kind: str, value: int | str) -> str:
        """The pseudonym of one face or photo id (or a hidden photo's SHA-256)."""
        digest = hmac.new(self._secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"vault-{kind}:{digest[:20]}"

    def entry(self, entry: dict) -> dict:
        """One exported entry with the vault's ids pseudonymised (and marked if any were)."""
        self._changed = False
        objects = {
            key: self._walk(ids, _OBJECT_KINDS.get(key), listed=True)
            for key, ids in entry["object_ids"].items()
        }
        details = self._walk(entry["details"], None, listed=False)
        if isinstance(details, dict):
            for key in _BLOCKED_COUNTS:
                details.pop(key, None)
            if entry["action"] == "ingest.run" and "faces_searchable" in details:
                details["faces"] = details["faces_searchable"]
            if details.get("sha256") in self._shas:
                details["sha256"] = self.name("sha256", details["sha256"])
                self._changed = True
        out = {**entry, "object_ids": objects, "details": details}
        if self._changed:
            out["pseudonymised"] = True
        return out

    def _walk(self, value: Any, kind: str | None, listed: bool) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            # A bare number under "faces" is a count; an id only in a list or as "face"/"id".
            if kind is not None and listed and value in self._ids[kind]:
                self._changed = True
                return self.name(kind, value)
            return value
        if isinstance(value, list):
            return [self._walk(v, kind, True) for v in value]
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key == "id":
                    out[key] = self._walk(item, kind, True)
                elif key in ("face", "face_id", "photo", "photo_id"):
                    out[key] = self._walk(item, _DETAIL_KINDS[key], True)
                else:
                    out[key] = self._walk(item, _DETAIL_KINDS.get(key), False)
            return out
        return value
