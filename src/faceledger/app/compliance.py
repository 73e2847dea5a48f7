"""`discovery compliance`: for a period and a rule, a proof from the change log and the audit
log, with the entries that support it, ending with the audit head it was computed at.

Rules:

- ``jurisdiction-blocked=REGION``: every face tied to REGION (by its photo's or its own
  jurisdiction rows, as the catalog holds them now) was in the vault or destroyed for the whole
  period, by the change log. Each stretch a face was searchable is a violation
  ``{"face_id", "photo_id", "from", "until", "seconds", "searches", "search_entries", "moves"}``:
  ``searches`` counts the search entries of the audit log answered meanwhile.
- ``no-private-search``: no ``search`` entry by a user whose customer type was ``private`` at
  the time (``user_history``). Violations name their audit entries.
- ``retention-met``: at the end of the period no face was past its retention date (the policy
  in force now) without a legal hold covering it then. Violations name the face and the audit
  entries that made it due (``retention.purpose_satisfied``).

Before answering, the audit log's hash chain and the change log's are verified (the change log
also against every change-log head recorded in the audit log, which re-hashing the change log
cannot match without rewriting the audit log after it): an edited entry makes it refuse, naming
the first broken entry. ``--sign-key`` signs the answer with the Ed25519 key of
``audit head --sign-key``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceledger import audit
from faceledger.app.governance.common import inside
from faceledger.app.governance.vault import may_read_vault
from faceledger.app.history import Move, periods, user_at
from faceledger.audit import anchor
from faceledger.catalog import history as catalog_history
from faceledger.catalog import holds as catalog_holds
from faceledger.clock import as_utc, iso, utcnow
from faceledger.errors import AnchorError, BadOptionError, RecordIntegrityError
from faceledger.policy import destruction_deadline

if TYPE_CHECKING:
    from faceledger.app.library import Actor, Library

__all__ = [
    "RULES",
    "SIGNED_PREFIX",
    "parse_rule",
    "parse_time",
    "verify_records",
    "audit_entries",
    "searchable_stretches",
    "compliance",
    "answer_bytes",
]

RULES = ("jurisdiction-blocked=REGION", "no-private-search", "retention-met")
#: Domain separation for answer signatures (versioned with the answer's format).
SIGNED_PREFIX = b"faceledger compliance answer v1\n"
#: Audit actions whose details record the change log's head (``placement_log``).
_HEAD_RECORDS = ("discovery.compliance", "audit.head")


def parse_rule(rule: str) -> tuple[str, str | None]:
    """``(name, region)`` of a rule as the command line writes it."""
    name, _, value = rule.strip().partition("=")
    if name == "jurisdiction-blocked" and value.strip():
        return name, value.strip().upper()
    if name in ("no-private-search", "retention-met") and not value:
        return name, None
    raise BadOptionError(f"unknown rule {rule!r}: give one of {', '.join(RULES)}")


def parse_time(value: str | None, what: str) -> datetime | None:
    """An ISO 8601 date or time (no zone means UTC) as aware UTC."""
    if value is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise BadOptionError(f"{what} {value!r} is not an ISO 8601 date or time") from None


def audit_entries(lib: Library) -> Iterator[dict[str, Any]]:
    """Every audit entry in id order, ``at`` as aware UTC."""
    for entry in audit.export(lib.catalog.engine):
        yield {**entry, "at": as_utc(datetime.fromisoformat(entry["at"]))}


def verify_records(lib: Library, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Verify the audit log's chain, then the change log's (with the heads the audit log
    recorded); refuse with the first broken entry named. Returns what was checked."""
    result = audit.verify(lib.catalog.engine)
    if not result.ok:
        raise RecordIntegrityError(
            f"the audit log is broken at entry {result.first_bad_id}: {result.reason}. No "
            "answer is given from a log that fails verification; restore the catalog from a "
            "backup and check it against a witnessed head"
        )
    anchors = []
    for entry in entries:
        if entry["action"] not in _HEAD_RECORDS:
            continue
        recorded = entry["details"].get("placement_log")
        if isinstance(recorded, dict) and recorded.get("seq"):
            anchors.append((int(recorded["seq"]), str(recorded["hash"])))
    with lib.catalog.engine.connect() as conn:
        chain = catalog_history.verify_placement_chain(conn, anchors)
    if not chain.ok:
        raise RecordIntegrityError(
            f"the index change log is broken at entry {chain.first_bad_seq}: {chain.reason}. No "
            "answer is given from a log that fails verification; restore the catalog from a "
            "backup"
        )
    head = {"seq": chain.head_seq, "hash": chain.head_hash}
    return {"audit_log": {"entries": result.checked, "last_id": result.last_id},
            "change_log": {"entries": chain.checked, "head": head}}  # fmt: skip


def searchable_stretches(
    moves: list[Move], since: datetime | None, until: datetime
) -> list[tuple[datetime, datetime, list[int]]]:
    """The stretches ``(from, until, seqs)`` a face was searchable within ``[since, until]``;
    ``seqs`` are the change-log rows that open and close each stretch."""
    out = []
    spans = periods(moves)
    for n, span in enumerate(spans):
        if span["place"] != "searchable":
            continue
        start, end = span["from"], span["until"] or until
        start = max(start, since) if since else start
        end = min(end, until)
        if start < end:
            closing = [spans[n + 1]["seq"]] if n + 1 < len(spans) else []
            out.append((start, end, [span["seq"], *closing]))
    return out


def _jurisdiction_blocked(lib, conn, region, since, until, entries) -> list[dict[str, Any]]:
    tied = catalog_history.faces_tied_to(conn, region)
    moves = catalog_history.face_moves(conn, tied)
    searches = [(e["at"], e["id"]) for e in entries if e["action"] == "search"]
    violations = []
    for face_id in sorted(tied):
        for start, end, seqs in searchable_stretches(moves.get(face_id, []), since, until):
            during = [i for at, i in searches if start <= at <= end]
            violations.append({
                "face_id": face_id, "photo_id": tied[face_id]["photo_id"],
                "signals": tied[face_id]["signals"], "from": iso(start), "until": iso(end),
                "seconds": round((end - start).total_seconds(), 3), "searches": len(during),
                "search_entries": during, "moves": seqs,
            })  # fmt: skip
    return violations


def _no_private_search(lib, conn, since, until, entries) -> list[dict[str, Any]]:
    history = catalog_history.user_history(conn)
    violations = []
    for e in entries:
        if e["action"] != "search" or (since and e["at"] < since) or e["at"] > until:
            continue
        who = user_at(history, e["actor"], e["at"])
        if who is not None and who["customer_type"] == "private":
            violations.append({"entry_id": e["id"], "at": iso(e["at"]), "user": e["actor"],
                               "customer_type": who["customer_type"], "region": who["region"],
                               "basis": who["basis"], "user_history_seq": who["seq"]})  # fmt: skip
    return violations


def _held_at(conn, when: datetime) -> set[int]:
    held: set[int] = set()
    for h in catalog_holds.holds(conn):
        created, released = as_utc(h.created_at), as_utc(h.released_at)
        if created <= when and (released is None or released > when):
            held |= catalog_holds.scope_photos(conn, h.scope_kind, h.scope_value)
    return held


def _retention_met(lib, conn, until, entries, custodian: bool) -> list[dict[str, Any]]:
    policy = lib.policy
    facts = catalog_history.retention_facts(conn)
    moves = catalog_history.face_moves(conn, [f["id"] for f in facts])
    held = _held_at(conn, until)
    satisfied_by: dict[int, list[int]] = {}
    for e in entries:
        if e["action"] == "retention.purpose_satisfied":
            for face_id in e["object_ids"].get("faces", []):
                satisfied_by.setdefault(int(face_id), []).append(e["id"])
    violations = []
    for f in facts:
        spans = [p for p in periods(moves.get(f["id"], [])) if p["from"] <= until]
        if not spans or spans[-1]["place"] == "destroyed":
            continue
        if spans[-1]["place"] == "vault" and not custodian:
            continue  # counts shown to non-custodians never include vault faces
        due = []
        if policy.retention.destroy_when_purpose_satisfied and f["purpose_satisfied_at"] \
                and f["purpose_satisfied_at"] <= until:  # fmt: skip
            due.append((f["purpose_satisfied_at"], "retention.destroy_when_purpose_satisfied"))
        deadline = destruction_deadline(policy, f["last_interaction_at"])
        if deadline is not None and deadline <= until:
            due.append((deadline, "retention.max_years_since_last_interaction"))
        if not due or f["photo_id"] in held:
            continue
        since, rule = min(due)
        violations.append({"face_id": f["id"], "photo_id": f["photo_id"], "due_since": iso(since),
                           "rule": rule, "entries": satisfied_by.get(f["id"], [])})  # fmt: skip
    return violations


def answer_bytes(answer: dict[str, Any]) -> bytes:
    """The exact bytes an answer's signature covers (the answer without its signature)."""
    body = {k: v for k, v in answer.items() if k not in ("signature", "key_id")}
    return SIGNED_PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":"),
                                      ensure_ascii=True, default=str).encode("ascii")  # fmt: skip


def compliance(
    lib: Library, actor: Actor, rule: str, since: datetime | None = None,
    until: datetime | None = None, sign_key: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Whether ``rule`` held over ``[since, until]`` (until: now), with its violations, the
    records checked and the audit head; signed with ``sign_key`` when given."""
    lib.authorize(actor, "discovery.compliance")
    name, region = parse_rule(rule)
    if name == "jurisdiction-blocked":
        lib.require_vault_access(actor)  # it reads where blocked faces were
    private_key = None
    if sign_key is not None:
        if inside(sign_key, lib.root):
            raise AnchorError(f"the signing key {sign_key} is inside the library directory "
                              f"{lib.root}: keep it elsewhere")  # fmt: skip
        private_key = anchor.load_signing_key(sign_key)
    since, until = as_utc(since), as_utc(until) or utcnow()
    if since is not None and since > until:
        raise BadOptionError("the period starts after it ends: give a since before the until")
    entries = list(audit_entries(lib))
    checked = verify_records(lib, entries)
    with lib.catalog.engine.connect() as conn:
        if name == "jurisdiction-blocked":
            violations = _jurisdiction_blocked(lib, conn, region, since, until, entries)
        elif name == "no-private-search":
            violations = _no_private_search(lib, conn, since, until, entries)
        else:
            violations = _retention_met(lib, conn, until, entries, may_read_vault(lib, actor))
    body = {"rule": f"{name}={region}" if region else name, "since": iso(since),
            "until": iso(until), "held": not violations, "violations": violations,
            "checked": checked}  # fmt: skip
    digest = hashlib.sha256(answer_bytes(body)).hexdigest()
    with lib.writing() as conn:
        audit.append(conn, actor.name, "discovery.compliance", {},
                     {"rule": body["rule"], "since": body["since"], "until": body["until"],
                      "held": body["held"], "violations": len(violations),
                      "answer_sha256": digest,
                      "placement_log": checked["change_log"]["head"]})  # fmt: skip
        head = audit.head(conn)
    answer = {**body, "audit_head": head.to_json() if head else None}
    if private_key is not None:
        signature = private_key.sign(answer_bytes(answer))
        answer["signature"] = base64.b64encode(signature).decode("ascii")
        answer["key_id"] = anchor.key_id(private_key.public_key())
    return answer
