"""The catalog's SQL for history: the change log's hash chain, faces' moves, users' past values,
and the facts behind the discovery answers (nexus, usage, compliance). Read-only.

The change log (``placement_log``) is chained by its trigger (migration 0009): each row's
``hash`` is :func:`placement_hash` of its own members and the previous row's hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from faceledger.catalog import schema as t
from faceledger.catalog.photos import TIE

__all__ = [
    "LOG_GENESIS",
    "ChainCheck",
    "placement_hash",
    "verify_placement_chain",
    "placement_head",
    "face_moves",
    "faces_tied_to",
    "user_history",
    "retention_facts",
    "photos_tied_to",
    "nexus_facts",
]

#: ``prev_hash`` of the change log's first row.
LOG_GENESIS = "0" * 64
_BATCH = 5_000
pl = t.placement_log


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def placement_hash(
    seq: int, face_id: int, from_place: str, to_place: str, at: datetime, prev_hash: str
) -> str:
    """The SHA-256 hex digest of one change-log row (the body the trigger hashes)."""
    stamp = _utc(at).strftime("%Y-%m-%d %H:%M:%S.%f")
    body = f"{seq}|{face_id}|{from_place}|{to_place}|{stamp}|{prev_hash}"
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    """The outcome of :func:`verify_placement_chain`."""

    ok: bool
    checked: int
    #: seq of the first row that fails; None when ok.
    first_bad_seq: int | None = None
    reason: str | None = None
    #: seq and hash of the newest good row (None: the log is empty).
    head_seq: int | None = None
    head_hash: str | None = None


def verify_placement_chain(conn: Connection, anchors: Iterable[tuple[int, str]] = ()) -> ChainCheck:
    """Check every change-log row's hash and link, in seq order; each anchor ``(seq, hash)``
    (a head recorded in the audit log) must still be in the log with that hash."""
    witnessed = dict(anchors)
    prev, checked, head_seq = LOG_GENESIS, 0, None
    stmt = select(pl.c.seq, pl.c.face_id, pl.c.from_place, pl.c.to_place, pl.c.at,
                  pl.c.prev_hash, pl.c.hash).order_by(pl.c.seq)  # fmt: skip
    rows = conn.execution_options(yield_per=_BATCH).execute(stmt)
    for seq, face_id, before, after, at, row_prev, row_hash in rows:
        checked += 1
        reason = None
        if row_prev != prev:
            reason = (f"change log entry {seq} does not follow the entry before it: its "
                      "prev_hash differs (an entry was removed, inserted, moved or "
                      "rewritten)")  # fmt: skip
        elif row_hash != placement_hash(seq, face_id, before, after, at, row_prev):
            reason = f"change log entry {seq} does not match its hash: it was altered"
        elif seq in witnessed and witnessed.pop(seq) != row_hash:
            reason = (f"change log entry {seq} is not the one the audit log recorded as the "
                      "change log's head: the change log was rewritten")  # fmt: skip
        if reason is not None:
            return ChainCheck(False, checked, seq, reason, head_seq, prev if head_seq else None)
        prev, head_seq = row_hash, seq
    if witnessed:
        missing = min(witnessed)
        return ChainCheck(False, checked, missing, f"change log entry {missing}, recorded in "
                          "the audit log as the change log's head, is missing: entries were "
                          "removed", head_seq, prev if head_seq else None)  # fmt: skip
    return ChainCheck(True, checked, None, None, head_seq, prev if head_seq else None)


def placement_head(conn: Connection) -> dict[str, Any] | None:
    """The change log's newest row as ``{"seq", "hash"}`` (None when empty)."""
    row = conn.execute(select(pl.c.seq, pl.c.hash).order_by(pl.c.seq.desc()).limit(1)).first()
    return {"seq": int(row.seq), "hash": row.hash} if row else None


def face_moves(
    conn: Connection, face_ids: Iterable[int] | None = None
) -> dict[int, list[tuple[int, datetime, str, str]]]:
    """Each face's moves ``(seq, at UTC, from, to)`` in seq order (of these faces, or all)."""
    stmt = select(pl.c.face_id, pl.c.seq, pl.c.at, pl.c.from_place, pl.c.to_place)
    ids = None if face_ids is None else sorted({int(i) for i in face_ids})
    moves: dict[int, list[tuple[int, datetime, str, str]]] = {}
    chunks: Iterator[list[int] | None] = (
        iter([None]) if ids is None else (ids[i : i + _BATCH] for i in range(0, len(ids), _BATCH))
    )
    for chunk in chunks:
        query = stmt if chunk is None else stmt.where(pl.c.face_id.in_(chunk))
        for face_id, seq, at, before, after in conn.execute(query.order_by(pl.c.seq)):
            moves.setdefault(int(face_id), []).append((int(seq), _utc(at), before, after))
    return moves


def _covers(region: str):
    j = t.jurisdictions
    return or_(j.c.region == region, j.c.region.like(region + "-%"))


def faces_tied_to(conn: Connection, region: str) -> dict[int, dict[str, Any]]:
    """Every face (any status) whose photo or own jurisdiction rows cover ``region``:
    face id -> ``{"photo_id", "signals"}``."""
    f, j = t.faces, t.jurisdictions
    out: dict[int, dict[str, Any]] = {}
    rows = conn.execute(
        select(f.c.id, f.c.photo_id, j.c.signal).select_from(f.join(j, TIE))
        .where(_covers(region.upper())).distinct()
    )  # fmt: skip
    for face_id, photo_id, signal in rows:
        entry = out.setdefault(int(face_id), {"photo_id": int(photo_id), "signals": set()})
        entry["signals"].add(signal)
    for entry in out.values():
        entry["signals"] = sorted(entry["signals"])
    return out


def user_history(conn: Connection) -> list[dict[str, Any]]:
    """Every user_history row in seq order (``at`` as aware UTC)."""
    h = t.user_history
    rows = conn.execute(select(h).order_by(h.c.seq)).mappings().all()
    return [{**dict(r), "at": _utc(r["at"]), "disabled": bool(r["disabled"])} for r in rows]


def retention_facts(conn: Connection) -> list[dict[str, Any]]:
    """Per face (any status): photo, last interaction, purpose satisfied at, status, destroyed."""
    f = t.faces
    rows = conn.execute(
        select(f.c.id, f.c.photo_id, f.c.last_interaction_at, f.c.purpose_satisfied_at,
               f.c.status, f.c.destroyed_at).order_by(f.c.id)
    ).mappings().all()  # fmt: skip
    return [
        {**dict(r), **{k: _utc(r[k]) if r[k] is not None else None
                       for k in ("last_interaction_at", "purpose_satisfied_at", "destroyed_at")}}
        for r in rows
    ]  # fmt: skip


def photos_tied_to(conn: Connection, region: str) -> list[int]:
    """Ids of active photos with a jurisdiction row (photo or face level) covering ``region``."""
    j, p = t.jurisdictions, t.photos
    return sorted(conn.scalars(
        select(j.c.photo_id).select_from(j.join(p, p.c.id == j.c.photo_id))
        .where(_covers(region.upper()), p.c.status == "active").distinct()
    ))  # fmt: skip


def nexus_facts(conn: Connection, photo_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """What ties each of these photos to a place: GPS, provenance (uploader, website and its
    publisher, ingest run), jurisdiction rows, opt-outs matched to its faces, consent records
    of the subjects its sources name. Photos that do not exist are absent."""
    p, ps, w, r, j = t.photos, t.photo_sources, t.websites, t.ingest_runs, t.jurisdictions
    ids = sorted({int(i) for i in photo_ids})
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        for row in conn.execute(
            select(p.c.id, p.c.sha256, p.c.gps_lat, p.c.gps_lon, p.c.taken_at, p.c.status,
                   p.c.first_run_id).where(p.c.id.in_(chunk))
        ).mappings():  # fmt: skip
            out[row["id"]] = {**dict(row), "sources": [], "jurisdictions": [], "optouts": [],
                              "consents": [], "faces": {"searchable": 0, "vault": 0}}  # fmt: skip
        for row in conn.execute(
            select(ps.c.photo_id, ps.c.kind, ps.c.source_url, ps.c.uploader_region,
                   ps.c.subject_ref, ps.c.retrieved_at, w.c.domain, w.c.publisher,
                   w.c.publisher_region, r.c.id.label("run_id"), r.c.started_at.label("run_at"),
                   r.c.actor.label("run_actor"))
            .select_from(ps.outerjoin(w, w.c.id == ps.c.website_id)
                         .outerjoin(r, r.c.id == ps.c.run_id))
            .where(ps.c.photo_id.in_(chunk)).order_by(ps.c.id)
        ).mappings():  # fmt: skip
            if row["photo_id"] in out:
                out[row["photo_id"]]["sources"].append(dict(row))
        for photo_id, face_id, region, signal, ref in conn.execute(
            select(j.c.photo_id, j.c.face_id, j.c.region, j.c.signal, j.c.ref)
            .where(j.c.photo_id.in_(chunk))
        ):  # fmt: skip
            if photo_id in out:
                out[photo_id]["jurisdictions"].append(
                    {"face_id": face_id or None, "region": region, "signal": signal, "ref": ref}
                )
        f, of, o = t.faces, t.optout_faces, t.optouts
        for photo_id, blocked, _face in conn.execute(
            select(f.c.photo_id, f.c.blocked, f.c.id).where(
                f.c.photo_id.in_(chunk), f.c.status == "active")
        ):  # fmt: skip
            if photo_id in out:
                out[photo_id]["faces"]["vault" if blocked else "searchable"] += 1
        for photo_id, optout_id, region, status in conn.execute(
            select(f.c.photo_id, o.c.id, o.c.region, o.c.status)
            .select_from(of.join(f, f.c.id == of.c.face_id).join(o, o.c.id == of.c.optout_id))
            .where(f.c.photo_id.in_(chunk)).distinct()
        ):  # fmt: skip
            if photo_id in out:
                out[photo_id]["optouts"].append(
                    {"optout_id": optout_id, "region": region, "status": status}
                )
    subjects = {s["subject_ref"] for v in out.values() for s in v["sources"] if s["subject_ref"]}
    if subjects:
        c = t.consents
        consents: dict[str, list[dict[str, Any]]] = {}
        for row in conn.execute(
            select(c.c.id, c.c.subject_ref, c.c.purpose, c.c.recorded_at, c.c.expires_at,
                   c.c.revoked_at).where(c.c.subject_ref.in_(sorted(subjects)))
        ).mappings():  # fmt: skip
            consents.setdefault(row["subject_ref"], []).append(dict(row))
        for v in out.values():
            refs = {s["subject_ref"] for s in v["sources"] if s["subject_ref"]}
            v["consents"] = [x for ref in sorted(refs) for x in consents.get(ref, [])]
    return out
