"""The vault's counts by region and signal, kept by the catalog so that ``discovery count
--blocked -j REGION`` reads one row per figure instead of every tie (migration 0012).

What is kept: for each region prefix (``US`` and ``US-IL`` for a tie to ``US-IL``) and signal
(or ``*``, any signal), the distinct photos, faces and source URLs of the vault (active blocked
faces) tied to a region under that prefix by that signal. Distinct counts do not add up, so
they are kept exactly by reference counts:

- triggers on ``faces``, ``jurisdictions`` and ``photo_sources`` mark a photo *pending* in the
  writer's own transaction whenever anything these counts rest on changes for it;
- :func:`fold` re-derives each pending photo's contribution from the base tables, subtracts
  the contribution it recorded for the photo last time (``vault_count_photos``: one row per
  photo, its faces per group and its URL digests), adds the new one, and keeps per URL digest
  the number of vault photos per group that have it (``vault_count_urls``: one row per
  digest), so a URL leaves a group's count with its last photo there. One row per photo and
  per URL keeps a fold's writes to ~2 rows a photo (a row per group and URL was 14 at 10^7).

So the work of a count is the changes since the last count, not the size of the library.
:func:`current` holds the fold lock and, on PostgreSQL, a REPEATABLE READ snapshot taken after
the lock, so the fold and the figures read see one state of the catalog: a count is exact as
of a moment, even with writers running. A photo folded twice is folded the same way (the fold
replaces its whole contribution), so a pending mark seen twice, or a fold interrupted and
rolled back, does no harm.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from faceledger.catalog import schema as t
from faceledger.catalog.database import catalog_lock
from faceledger.catalog.photos import TIE
from faceledger.errors import VaultCountsCorrupt
from faceledger.records import OnProgress

__all__ = [
    "ANY_SIGNAL",
    "region_prefixes",
    "contribution",
    "current",
    "fold",
    "figures",
    "recount",
    "rebuild",
    "catch_up",
]

#: The signal of a count over every signal.
ANY_SIGNAL = "*"
#: Pending marks claimed per statement, and photos folded per round of reads.
CLAIM_BATCH = 50_000
FOLD_BATCH = 2_000
#: The name of the lock that serialises folds (catalog_lock).
LOCK_NAME = "vault-counts"

f, j, ps = t.faces, t.jurisdictions, t.photo_sources
pending, kept_photos, kept_urls, totals = (
    t.vault_count_pending, t.vault_count_photos, t.vault_count_urls, t.vault_count_totals)

#: A group of the counts: (region prefix, signal or ANY_SIGNAL).
Group = tuple[str, str]


def region_prefixes(region: str) -> list[str]:
    """The selections a tie to ``region`` falls in: the region and each part before a ``-``
    (``US-IL-CHI`` -> ``US``, ``US-IL``, ``US-IL-CHI``), as ``discovery count`` matches a
    region: itself or a sub-region (``US-IL`` covers ``US-IL-CHI``, not ``US-ILX``)."""
    return [region[:i] for i, char in enumerate(region) if char == "-"] + [region]


def contribution(ties: Iterable[tuple[int, str, str]]) -> dict[Group, int]:
    """One photo's vault faces per group, from its ``(face id, region, signal)`` ties: a face
    counts once per group however many of its ties fall in it."""
    faces: dict[Group, set[int]] = {}
    for face_id, region, signal in ties:
        for prefix in region_prefixes(region):
            faces.setdefault((prefix, signal), set()).add(face_id)
            faces.setdefault((prefix, ANY_SIGNAL), set()).add(face_id)
    return {group: len(ids) for group, ids in faces.items()}


@contextmanager
def current(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction where the kept counts are current: every pending change
    committed before it began is folded in, and its reads see that one state.

    The fold lock is held throughout (folds run one at a time); on PostgreSQL the transaction
    is REPEATABLE READ and begins after the lock is held, so its snapshot includes the last
    fold's commit. On SQLite the first statement (the claim of pending marks) takes the write
    lock, which serialises it with every writer.
    """
    with catalog_lock(engine, LOCK_NAME), engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            fold(conn)
            yield conn


def fold(conn: Connection, on_progress: OnProgress | None = None) -> int:
    """Fold every pending photo into the kept counts; the number of marks folded. The caller
    holds the fold lock and the transaction (:func:`current`). ``on_progress`` is told the
    photos folded so far and the total (the pending photos at the start, or more if writers
    add marks meanwhile) after each round, for the long folds: a recount, an upgrade."""
    folded = done = total = 0
    if on_progress is not None:
        total = conn.scalar(select(func.count(pending.c.photo_id.distinct()))) or 0
        on_progress(0, total)
    while True:
        oldest = select(pending.c.id).order_by(pending.c.id).limit(CLAIM_BATCH)
        claimed = conn.execute(
            delete(pending).where(pending.c.id.in_(oldest)).returning(pending.c.photo_id)
        ).scalars().all()  # fmt: skip
        if not claimed:
            return folded
        folded += len(claimed)
        photo_ids = sorted(set(claimed))
        for start in range(0, len(photo_ids), FOLD_BATCH):
            batch = photo_ids[start:start + FOLD_BATCH]
            _fold_photos(conn, batch)
            if on_progress is not None:
                done += len(batch)
                total = max(total, done)
                on_progress(done, total)


def _key(group: Group) -> str:
    return f"{group[0]} {group[1]}"


def _group(key: str) -> Group:
    region, signal = key.rsplit(" ", 1)  # a signal holds no space (SIGNALS, or "*")
    return region, signal


def _fold_photos(conn: Connection, photo_ids: Sequence[int]) -> None:
    """Replace the contribution of ``photo_ids`` by the one the base tables give now."""
    ties: dict[int, list[tuple[int, str, str]]] = {}
    for face_id, photo_id, region, signal in conn.execute(
        select(f.c.id, f.c.photo_id, j.c.region, j.c.signal)
        .select_from(f.join(j, TIE))
        .where(f.c.photo_id.in_(photo_ids), f.c.status == "active", f.c.blocked)
    ):  # fmt: skip
        ties.setdefault(photo_id, []).append((face_id, region, signal))
    new_groups = {photo_id: contribution(rows) for photo_id, rows in ties.items()}
    found: dict[int, set[bytes]] = {}
    for photo_id, digest in conn.execute(
        select(ps.c.photo_id, ps.c.source_url_digest)
        .where(ps.c.photo_id.in_(sorted(new_groups)), ps.c.source_url_digest.is_not(None))
    ):  # fmt: skip
        found.setdefault(photo_id, set()).add(bytes(digest))
    new_digests = {photo_id: frozenset(digests) for photo_id, digests in found.items()}
    old_groups: dict[int, dict[Group, int]] = {}
    old_digests: dict[int, frozenset[bytes]] = {}
    for photo_id, groups, digests in conn.execute(
        select(kept_photos.c.photo_id, kept_photos.c.groups, kept_photos.c.digests)
        .where(kept_photos.c.photo_id.in_(photo_ids))
    ):  # fmt: skip
        old_groups[photo_id] = {_group(key): n for key, n in groups.items()}
        digests = bytes(digests)
        old_digests[photo_id] = frozenset(digests[i:i + 32] for i in range(0, len(digests), 32))

    changed = [
        photo_id for photo_id in photo_ids
        if new_groups.get(photo_id) != old_groups.get(photo_id)
        or (photo_id in new_groups
            and new_digests.get(photo_id, frozenset()) != old_digests.get(photo_id))
    ]  # fmt: skip
    if not changed:
        return
    photo_delta: Counter[Group] = Counter()
    face_delta: Counter[Group] = Counter()
    url_delta: dict[bytes, Counter[Group]] = {}
    for photo_id in changed:
        for sign, groups, digests in (
            (-1, old_groups.get(photo_id, {}), old_digests.get(photo_id, frozenset())),
            (1, new_groups.get(photo_id, {}), new_digests.get(photo_id, frozenset())),
        ):
            for group, faces in groups.items():
                photo_delta[group] += sign
                face_delta[group] += sign * faces
                for digest in digests:
                    url_delta.setdefault(digest, Counter())[group] += sign
    url_count_delta = _apply_url_refs(conn, url_delta)
    _add_totals(conn, photo_delta, face_delta, url_count_delta)

    conn.execute(delete(kept_photos).where(kept_photos.c.photo_id.in_(changed)))
    rows = [
        {"photo_id": photo_id,
         "groups": {_key(group): n for group, n in sorted(new_groups[photo_id].items())},
         "digests": b"".join(sorted(new_digests.get(photo_id, ())))}
        for photo_id in changed if photo_id in new_groups
    ]  # fmt: skip
    if rows:
        conn.execute(insert(kept_photos), rows)


def _apply_url_refs(conn: Connection, deltas: dict[bytes, Counter[Group]]) -> Counter[Group]:
    """Add ``deltas`` to the URLs' photo counts per group; per group, how many URLs entered
    (a count that was 0) less how many left (a count now 0)."""
    entered: Counter[Group] = Counter()
    deltas = {digest: delta for digest, delta in deltas.items() if any(delta.values())}
    if not deltas:
        return entered
    held: dict[bytes, dict[str, int]] = {}
    digests = sorted(deltas)
    for start in range(0, len(digests), 1000):
        for digest, photos in conn.execute(
            select(kept_urls.c.digest, kept_urls.c.photos)
            .where(kept_urls.c.digest.in_(digests[start:start + 1000]))
        ):  # fmt: skip
            held[bytes(digest)] = dict(photos)
    rows = []
    for digest, delta in deltas.items():
        photos = held.get(digest, {})
        for group, change in delta.items():
            if not change:
                continue
            key = _key(group)
            before = photos.get(key, 0)
            after = before + change
            if after < 0:
                raise VaultCountsCorrupt(
                    f"the vault's kept URL count for {group[0]}/{group[1]} went below zero "
                    "(its tables were edited by hand?): run `faceledger discovery recount`, "
                    "then count again"
                )
            entered[group] += (after > 0) - (before > 0)
            if after:
                photos[key] = after
            else:
                photos.pop(key, None)
        if photos:
            rows.append({"digest": digest, "photos": dict(sorted(photos.items()))})
    for start in range(0, len(digests), 1000):
        conn.execute(delete(kept_urls).where(kept_urls.c.digest.in_(digests[start:start + 1000])))
    if rows:
        conn.execute(insert(kept_urls), rows)
    return entered


def _upsert(conn: Connection) -> Any:
    """The dialect's INSERT with ON CONFLICT (PostgreSQL and SQLite spell it the same)."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _add_totals(
    conn: Connection, photos: Counter[Group], faces: Counter[Group], urls: Counter[Group]
) -> None:
    groups = [g for g in set(photos) | set(faces) | set(urls)
              if photos[g] or faces[g] or urls[g]]  # fmt: skip
    if not groups:
        return
    stmt = _upsert(conn)(totals)
    stmt = stmt.on_conflict_do_update(
        index_elements=["region", "signal"],
        set_={name: totals.c[name] + stmt.excluded[name] for name in ("photos", "faces", "urls")},
    )
    conn.execute(stmt, [
        {"region": region, "signal": signal, "photos": photos[(region, signal)],
         "faces": faces[(region, signal)], "urls": urls[(region, signal)]}
        for region, signal in groups
    ])  # fmt: skip


def figures(conn: Connection, region: str, signals: Iterable[str]) -> dict[str, dict[str, int]]:
    """The kept photos, faces and source URLs of ``region`` per signal (``ANY_SIGNAL`` for the
    total), zeros where the vault has none; read inside :func:`current`."""
    wanted = list(signals)
    found = {
        signal: {"photos": int(n_photos), "faces": int(n_faces), "source_urls": int(n_urls)}
        for signal, n_photos, n_faces, n_urls in conn.execute(
            select(totals.c.signal, totals.c.photos, totals.c.faces, totals.c.urls)
            .where(totals.c.region == region, totals.c.signal.in_(wanted))
        )
    }  # fmt: skip
    zero = {"photos": 0, "faces": 0, "source_urls": 0}
    return {signal: found.get(signal, dict(zero)) for signal in wanted}


def recount(conn: Connection) -> int:
    """Forget the kept counts and mark every vault photo pending, so the next fold derives
    them from the base tables alone; the number of photos marked. The caller holds the fold
    lock and the transaction."""
    for table in (kept_urls, totals, kept_photos, pending):
        conn.execute(delete(table))
    vault_photos = select(f.c.photo_id).where(f.c.status == "active", f.c.blocked).distinct()
    conn.execute(insert(pending).from_select(["photo_id"], vault_photos.order_by(f.c.photo_id)))
    return conn.scalar(select(func.count()).select_from(pending))


def catch_up(engine: Engine, on_progress: OnProgress | None = None) -> int:
    """Fold the pending photos now, under the fold lock, in a transaction of its own; the
    number of marks folded. Bulk writers (ingest runs, ``policy apply``) call it when done, so
    that the next count does not pay for their changes. Kept counts found edited are left as
    they are (the fold rolls back, the marks stay pending): the next count reports them, and a
    bulk write is not failed by them. ``on_progress``: as for :func:`fold`."""
    try:
        with catalog_lock(engine, LOCK_NAME), engine.begin() as conn:
            return fold(conn, on_progress)
    except VaultCountsCorrupt:
        return 0


def rebuild(engine: Engine, on_progress: OnProgress | None = None) -> int:
    """Derive the kept counts anew from the base tables (:func:`recount`, then :func:`fold`)
    under the fold lock, in one transaction; the number of vault photos folded.
    ``on_progress``: as for :func:`fold`."""
    with catalog_lock(engine, LOCK_NAME), engine.begin() as conn:
        marked = recount(conn)
        fold(conn, on_progress)
        return marked
