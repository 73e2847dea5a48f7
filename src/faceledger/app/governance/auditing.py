"""The audit log as governance commands: witness its head, verify (against witnessed heads) and
export, authorized by role.

Witnessing appends an ``audit.head`` entry and the head printed is that entry: the log then
records each witnessing (who, when, whether signed), and the head covers its own witnessing, so
a tail cut back to just before it is caught like any other. Whoever may verify may witness.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceledger import audit
from faceledger.app.governance.common import inside
from faceledger.audit import anchor
from faceledger.catalog.history import placement_head
from faceledger.errors import AnchorError

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = ["witness_head", "verify_log", "export_log", "parse_bound"]


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
        raise AnchorError("--verify-key checks the signatures of a heads file: give --anchor FILE")
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
    lib: Library,
    actor: Actor,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str | None = None,
    action: str | None = None,
) -> Iterator[dict]:
    """Audit entries (from ``since`` to ``until``, by actor ``by``, of ``action``, each when
    given), then an entry recording this export."""
    lib.authorize(actor, "audit.export")
    count = 0
    for entry in audit.export(lib.catalog.engine, since, until, by, action):
        count += 1
        yield entry
    with lib.writing() as conn:
        audit.append(
            conn,
            actor.name,
            "audit.export",
            {},
            {
                "since": since.isoformat() if since else None,
                "until": until.isoformat() if until else None,
                "actor": by,
                "action": action,
                "entries": count,
            },
        )
