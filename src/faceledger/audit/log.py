"""A hash-chained, append-only audit log over the catalog's ``audit_log`` table.

Each entry's ``hash`` is the SHA-256 of a canonical JSON object,
``json.dumps(body, sort_keys=True, separators=(",", ":"))`` (ASCII), whose members are ``id``,
``at`` (ISO 8601, UTC), ``actor``, ``action``, ``object_ids``, ``details`` and ``prev_hash``; the
first entry's ``prev_hash`` is 64 zeros and every later one holds the hash of the entry before it.
Ids are given out by :func:`append` itself, 1, 2, 3, ... without gaps, so a missing entry shows as
a gap and a moved one as a hash that no longer matches its id.

The chain detects edits, deletions, insertions and reordering anywhere but at the very end: an
attacker who can write the file can drop the newest entries, or rewrite the whole chain, since
the hash is unkeyed. Record :attr:`VerifyResult.last_id` and :attr:`VerifyResult.last_hash`
somewhere outside the database (a signed heads file, a production manifest: see
:mod:`faceledger.audit.anchor`, and :func:`head` to read them) and pass them back as
``verify(engine, anchors=...)`` to detect that too, up to the newest head witnessed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _json_str
from typing import Any

from sqlalchemy import Connection, Engine

from faceledger.audit.anchor import AuditHead
from faceledger.catalog import audit as catalog_audit
from faceledger.clock import iso, utcnow
from faceledger.records import EVERY_AUDIT_ENTRY, AuditFilter

__all__ = ["GENESIS", "VerifyResult", "append", "entry_hash", "export", "head", "verify"]

#: ``prev_hash`` of the first entry.
GENESIS = "0" * 64



@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`."""

    ok: bool
    #: Entries read, the bad one included.
    checked: int
    #: Id of the first entry that fails (for a gap: the entry after it); None when ok.
    first_bad_id: int | None = None
    reason: str | None = None
    #: Id and hash of the newest good entry: record them elsewhere to anchor later checks.
    last_id: int | None = None
    last_hash: str | None = None
    #: Id of the anchored (witnessed) entry the log fails to match; None when none fails.
    anchor_id: int | None = None


# -- hashing -------------------------------------------------------------------------------


def _iso_utc(at: datetime) -> str:
    # Same text as clock.iso(), about 3x faster: a naive datetime's isoformat() skips the
    # tzinfo call that dominates verify() otherwise. Naive means UTC (as SQLite returns them).
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat() + "+00:00"


def _canonical(value: Any) -> str:
    # allow_nan=False: NaN is not JSON, and PostgreSQL's json type would refuse it anyway.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _body(
    entry_id: int, at_iso: str, actor: str, action: str, oids_json: str, details_json: str,
    prev_hash: str,
) -> bytes:  # fmt: skip
    # The canonical body spliced from already-canonical member texts: the same bytes as
    # _canonical({...}) (members in sorted order), without re-encoding the JSON members, which
    # is most of the cost of verifying a long log.
    return (
        f'{{"action":{_json_str(action)},"actor":{_json_str(actor)},"at":{_json_str(at_iso)},'
        f'"details":{details_json},"id":{entry_id:d},"object_ids":{oids_json},'
        f'"prev_hash":{_json_str(prev_hash)}}}'
    ).encode()  # ASCII when written by append; UTF-8 so altered text fails verify, not crashes


def entry_hash(
    entry_id: int,
    at: datetime,
    actor: str,
    action: str,
    object_ids: Mapping[str, Any],
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """The SHA-256 hex digest that chains one entry to the one before it."""
    body = _body(
        entry_id, _iso_utc(at), actor, action, _canonical(object_ids), _canonical(details),
        prev_hash,
    )  # fmt: skip
    return hashlib.sha256(body).hexdigest()


# -- append --------------------------------------------------------------------------------

def _plain_object(name: str, value: Any) -> str:
    # Round-trip through JSON first so the hash covers exactly what the database will give back
    # (tuples become lists, int keys become strings: mixed keys would not even sort before).
    try:
        plain = json.loads(json.dumps(value or {}, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit {name} must be plain JSON: {exc}") from exc
    if not isinstance(plain, dict):
        raise ValueError(f"audit {name} must be a JSON object, got {type(value).__name__}")
    return _canonical(plain)


def append(
    conn: Connection,
    actor: str,
    action: str,
    object_ids: dict[str, list[int]] | None = None,
    details: dict | None = None,
) -> int:
    """Append one entry inside the caller's transaction and return its id."""
    for name, value in (("actor", actor), ("action", action)):
        if not isinstance(value, str) or not 1 <= len(value) <= 64:
            raise ValueError(f"audit {name} must be 1-64 characters, got {value!r}")
    oids_json = _plain_object("object_ids", object_ids)
    details_json = _plain_object("details", details)

    catalog_audit.take_append_lock(conn)
    last = catalog_audit.tail(conn)
    entry_id, prev_hash = (last.id + 1, last.hash) if last else (1, GENESIS)
    at = utcnow()  # taken under the lock, so time runs forward along the chain on one clock
    digest = hashlib.sha256(
        _body(entry_id, _iso_utc(at), actor, action, oids_json, details_json, prev_hash)
    ).hexdigest()
    catalog_audit.insert_entry(
        conn,
        {
            "id": entry_id,
            "at": at,
            "actor": actor,
            "action": action,
            "object_ids_json": oids_json,
            "details_json": details_json,
            "prev_hash": prev_hash,
            "hash": digest,
        },
    )
    return entry_id


# -- reading -------------------------------------------------------------------------------

def head(conn: Connection) -> AuditHead | None:
    """The newest entry's id, hash and time as seen by ``conn`` (None: the log is empty).

    Inside a transaction that has just appended, that is the appended entry: ids are given out
    under the append lock, which the transaction still holds.
    """
    row = catalog_audit.newest(conn)
    return AuditHead(row.id, row.hash, _iso_utc(row.at)) if row else None


def _recanonical(member: str | None) -> str | None:
    try:
        return _canonical(json.loads(member)) if member is not None else None
    except ValueError:
        return None


def verify(
    engine: Engine,
    *,
    anchor: tuple[int, str] | None = None,
    anchors: Iterable[tuple[int, str]] = (),
) -> VerifyResult:
    """Check the whole chain and name the first entry that was edited, removed, added or moved.

    Each anchor ``(id, hash)`` is a head witnessed earlier: the log must still reach that id and
    hold that hash there, which catches a cut tail and a chain rewritten up to that point.
    """
    witnessed: dict[int, set[str]] = {}
    for entry_id, digest in [*anchors, *([anchor] if anchor else [])]:
        witnessed.setdefault(entry_id, set()).add(digest)
    newest = max(witnessed, default=0)
    expected_id, prev_hash, checked = 1, GENESIS, 0

    def result(
        bad_id: int | None = None, reason: str | None = None, anchor_id: int | None = None
    ) -> VerifyResult:
        last_id = expected_id - 1
        return VerifyResult(
            ok=bad_id is None, checked=checked, first_bad_id=bad_id, reason=reason,
            last_id=last_id or None, last_hash=prev_hash if last_id else None,
            anchor_id=anchor_id,
        )  # fmt: skip

    entries = catalog_audit.iter_entries(engine)
    for entry_id, at, actor, action, oids, details, row_prev, row_hash in entries:
        checked += 1
        if entry_id != expected_id:
            return result(
                entry_id,
                f"entry {expected_id} is missing: the log jumps from {expected_id - 1} "
                f"to {entry_id}",
            )
        if row_prev != prev_hash:
            return result(
                entry_id,
                f"entry {entry_id} does not follow entry {entry_id - 1}: its prev_hash differs "
                "(an entry was removed, inserted, moved or rewritten here)",
            )
        at_iso = _iso_utc(at)
        digest = hashlib.sha256(
            _body(entry_id, at_iso, actor, action, oids, details, row_prev)
        ).hexdigest()
        if digest != row_hash:
            # The stored JSON text may be valid but not canonical (written by other means, or
            # a jsonb column): hash the canonical form before calling it altered.
            oids_c, details_c = _recanonical(oids), _recanonical(details)
            if oids_c is None or details_c is None:
                return result(entry_id, f"entry {entry_id} holds invalid JSON: it was altered")
            digest = hashlib.sha256(
                _body(entry_id, at_iso, actor, action, oids_c, details_c, row_prev)
            ).hexdigest()
            if digest != row_hash:
                return result(entry_id, f"entry {entry_id} does not match its hash: it was altered")
        # Two witnessed hashes for one id cannot both match: one of them saw a rewritten log.
        if entry_id in witnessed and witnessed[entry_id] != {row_hash}:
            return result(
                entry_id,
                f"entry {entry_id} is not the anchored entry (its hash differs from the "
                "witnessed one): the log was rewritten",
                entry_id,
            )
        expected_id, prev_hash = entry_id + 1, row_hash

    if newest >= expected_id:
        return result(
            expected_id,
            f"the log ends at entry {expected_id - 1} but an anchor names entry {newest}: "
            "the newest entries were removed",
            newest,
        )
    return result()


def export(engine: Engine, where: AuditFilter = EVERY_AUDIT_ENTRY) -> Iterator[dict]:
    """Entries in id order as JSON-ready dicts, those ``where`` selects (default: all)."""
    rows = catalog_audit.iter_entries(engine, where)
    for entry_id, at, who, what, oids, details, prev_hash, digest in rows:
        yield {
            "id": entry_id,
            "at": iso(at),
            "actor": who,
            "action": what,
            "object_ids": json.loads(oids),
            "details": json.loads(details),
            "prev_hash": prev_hash,
            "hash": digest,
        }
