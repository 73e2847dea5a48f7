"""The vault's kept counts (``catalog.vault_counts``, migration 0012) equal a brute-force count
of the catalog's rows, on SQLite and PostgreSQL:

- after any sequence of writes to faces, ties and provenance, by raw SQL (Hypothesis), so the
  triggers, not the code paths, are what keep them;
- with writer processes running while another counts (and, on PostgreSQL, with a writer's
  transaction open across a fold);
- after a catalog at 0011 is upgraded, and after :func:`recount`;
- and ``discovery count`` takes them only where they give the statement's answer.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import random
from datetime import UTC, datetime

import pytest
from conftest import fresh_pg_database
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from faceledger.catalog import schema as t
from faceledger.catalog import vault_counts
from faceledger.catalog.database import make_engine
from faceledger.catalog.discovery import Selection, count, tie_counts
from faceledger.catalog.store import Catalog
from faceledger.policy import SIGNALS
from faceledger.policy.rules import BlockingRule

NOW = datetime(2026, 12, 1, tzinfo=UTC)
PHOTOS = 4
TIE_REGIONS = ("US-IL", "US-IL-CHI", "US-ILX", "US-CA", "US", "DE")
#: The selections compared: each prefix a tie falls under, and regions no tie has.
ASKED = ("US", "US-IL", "US-IL-CHI", "US-ILX", "US-CA", "DE", "FR", "US-I")
URLS = [f"https://site{n % 3}.example/{n}.jpg" for n in range(6)]
ALL = [vault_counts.ANY_SIGNAL, *SIGNALS]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path_factory):
    """A migrated, empty catalog on each backend, with PHOTOS photos."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('vault-counts') / 'catalog.sqlite'}"
        yield _created(url)
        return
    with fresh_pg_database() as url:
        yield _created(url)


@pytest.fixture
def catalog_engine(catalog_url):
    """An engine on the module's catalog, emptied of faces, ties and provenance."""
    engine = make_engine(catalog_url)
    _reset(engine)
    yield engine
    engine.dispose()


def _created(url: str) -> str:
    catalog = Catalog(url)
    catalog.create()
    with catalog.begin() as conn:
        conn.execute(insert(t.photos), [
            {"id": n, "sha256": f"{n:064x}", "md5": f"{n:032x}", "sha1": f"{n:040x}",
             "byte_size": 1, "width": 1, "height": 1, "format": "JPEG", "added_at": NOW}
            for n in range(1, PHOTOS + 1)
        ])  # fmt: skip
    catalog.close()
    return url


# -- writes, as raw SQL (what any code path, or an operator's psql, could do) -----------------
def _face(conn, photo_id: int, blocked: bool) -> None:
    ordinal = conn.scalar(select(func.count()).where(t.faces.c.photo_id == photo_id)
                          .select_from(t.faces))  # fmt: skip
    conn.execute(insert(t.faces).values(
        photo_id=photo_id, ordinal=ordinal, box_top=0, box_right=1, box_bottom=1, box_left=0,
        landmarks={}, detector="test", det_score=1.0, model="test", model_version="1",
        vector_collected_at=NOW, last_interaction_at=NOW, blocked=blocked, status="active",
    ))  # fmt: skip


def _nth(conn, table, n: int, order) -> dict | None:
    rows = conn.execute(select(table).order_by(*order)).mappings().all()
    return dict(rows[n % len(rows)]) if rows else None


def apply_write(conn, op: tuple) -> None:
    """One write: ``op`` is (kind, numbers...) as drawn by WRITES."""
    kind, a, b, c, d = op
    f, j, ps = t.faces, t.jurisdictions, t.photo_sources
    if kind == "face":
        _face(conn, 1 + a % PHOTOS, bool(b % 2))
    elif kind in ("block", "unblock", "destroy") and (face := _nth(conn, f, a, [f.c.id])):
        values = {"status": "destroyed"} if kind == "destroy" else {"blocked": kind == "block"}
        conn.execute(update(f).where(f.c.id == face["id"]).values(**values))
    elif kind == "rehome" and (face := _nth(conn, f, a, [f.c.id])):  # raw SQL may do it
        conn.execute(update(f).where(f.c.id == face["id"]).values(
            photo_id=1 + b % PHOTOS, ordinal=1000 + c))  # fmt: skip
    elif kind == "tie":
        photo_id, face_id = 1 + a % PHOTOS, 0
        if b % 2 and (face := _nth(conn, f, b, [f.c.id])):  # a face's own tie
            photo_id, face_id = face["photo_id"], face["id"]
        conn.execute(insert(j).values(photo_id=photo_id, face_id=face_id,
                                      region=TIE_REGIONS[c % len(TIE_REGIONS)],
                                      signal=SIGNALS[d % len(SIGNALS)]))  # fmt: skip
    elif kind == "untie" and (tie := _nth(conn, j, a, [j.c.photo_id, j.c.face_id, j.c.region,
                                                      j.c.signal])):  # fmt: skip
        conn.execute(delete(j).where(*[j.c[k] == v for k, v in tie.items() if k != "ref"]))
    elif kind == "source":
        url = None if b % 7 == 6 else URLS[b % len(URLS)]
        conn.execute(insert(ps).values(
            photo_id=1 + a % PHOTOS, kind="manifest", locator=f"row-{a}-{b}-{c}-{d}",
            source_url=url, added_at=NOW,
            source_url_digest=hashlib.sha256(url.encode()).digest() if url else None,
        ))  # fmt: skip
    elif kind == "unsource" and (row := _nth(conn, ps, a, [ps.c.id])):
        conn.execute(delete(ps).where(ps.c.id == row["id"]))
    elif kind == "repoint" and (row := _nth(conn, ps, a, [ps.c.id])):
        conn.execute(update(ps).where(ps.c.id == row["id"]).values(photo_id=1 + b % PHOTOS))


# Weighted so the vault soon holds tied faces with URLs, and every kind of change meets them.
KINDS = ("face", "face", "face", "block", "block", "unblock", "destroy", "tie", "tie", "tie",
         "tie", "untie", "source", "source", "source", "unsource", "repoint", "rehome")  # fmt: skip
_n = st.integers(0, 1000)
WRITES = st.tuples(st.sampled_from(KINDS), _n, _n, _n, _n)


def random_writes(engine, seed: int, writes: int, check_every: int = 0) -> None:
    """``writes`` random writes; every ``check_every`` of them, the kept counts are compared
    with the rows (each fold then meets photos folded before)."""
    rng = random.Random(seed)
    for n in range(1, writes + 1):
        write(engine, (rng.choice(KINDS), *(rng.randrange(1000) for _ in range(4))))
        if check_every and n % check_every == 0:
            assert kept(engine) == brute_force(engine), f"after write {n} of seed {seed}"


def write(engine, op: tuple) -> None:
    """Apply ``op`` in a transaction of its own; a duplicate tie or locator is skipped."""
    try:
        with engine.begin() as conn:
            apply_write(conn, op)
    except IntegrityError:
        pass


# -- the oracle -------------------------------------------------------------------------------
def brute_force(engine) -> dict[tuple[str, str], dict[str, int]]:
    """Per asked region and signal (or any), the vault's photos, faces and distinct URLs, from
    every row of faces, jurisdictions and photo_sources, in Python."""
    with engine.connect() as conn:
        vault = conn.execute(select(t.faces.c.id, t.faces.c.photo_id).where(
            t.faces.c.status == "active", t.faces.c.blocked)).all()  # fmt: skip
        ties = conn.execute(select(t.jurisdictions.c.photo_id, t.jurisdictions.c.face_id,
                                   t.jurisdictions.c.region, t.jurisdictions.c.signal)).all()
        sources = conn.execute(select(t.photo_sources.c.photo_id, t.photo_sources.c.source_url)
                               .where(t.photo_sources.c.source_url.is_not(None))).all()
    out = {}
    for region in ASKED:
        for signal in ALL:
            faces = {
                (face_id, photo_id) for face_id, photo_id in vault for p, fid, r, s in ties
                if p == photo_id and fid in (0, face_id)
                and (r == region or r.startswith(region + "-"))
                and signal in (vault_counts.ANY_SIGNAL, s)
            }  # fmt: skip
            photo_ids = {photo_id for _, photo_id in faces}
            urls = {url for photo_id, url in sources if photo_id in photo_ids}
            out[(region, signal)] = {"photos": len(photo_ids), "faces": len(faces),
                                     "source_urls": len(urls)}  # fmt: skip
    return out


def kept(engine) -> dict[tuple[str, str], dict[str, int]]:
    """The kept counts of every asked region and signal, after a fold."""
    with vault_counts.current(engine) as conn:
        return {(region, signal): figures
                for region in ASKED
                for signal, figures in vault_counts.figures(conn, region, ALL).items()}


def _reset(engine) -> None:
    with engine.begin() as conn:
        for table in (t.photo_sources, t.jurisdictions, t.faces):
            conn.execute(delete(table))
        vault_counts.recount(conn)


# -- 1. any writes, then a count ----------------------------------------------------------------
def test_region_prefixes():
    assert vault_counts.region_prefixes("US-IL-CHI") == ["US", "US-IL", "US-IL-CHI"]
    assert vault_counts.region_prefixes("DE") == ["DE"]
    # A face with two ties in one group counts once there.
    assert vault_counts.contribution([(7, "US-IL", "gps"), (7, "US-IL-CHI", "gps")]) == {
        ("US", "gps"): 1, ("US", "*"): 1, ("US-IL", "gps"): 1, ("US-IL", "*"): 1,
        ("US-IL-CHI", "gps"): 1, ("US-IL-CHI", "*"): 1,
    }  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches=st.lists(st.lists(WRITES, max_size=20), min_size=1, max_size=6))
def test_kept_counts_equal_the_rows_after_any_writes(catalog_engine, batches):
    engine = catalog_engine
    _reset(engine)
    for batch in batches:  # a count after each batch: folds of a few changes at a time
        for op in batch:
            write(engine, op)
        assert kept(engine) == brute_force(engine)


def test_recount_gives_the_incremental_counts(catalog_engine):
    engine = catalog_engine
    random_writes(engine, seed=12, writes=200, check_every=2)
    incremental = kept(engine)
    assert any(v["faces"] for v in incremental.values()), "the writes left no vault face"
    with engine.begin() as conn:
        assert vault_counts.recount(conn) > 0
    assert kept(engine) == incremental == brute_force(engine)


def test_a_rebuild_tells_its_progress(catalog_engine, monkeypatch):
    """``on_progress`` hears (0, total) first, then each round's photos up to the total."""
    engine = catalog_engine
    random_writes(engine, seed=7, writes=120)
    monkeypatch.setattr(vault_counts, "FOLD_BATCH", 1)  # one photo a round: a tick each
    ticks: list[tuple[int, int]] = []
    photos = vault_counts.rebuild(engine, lambda done, total: ticks.append((done, total)))
    assert photos >= 2, "the writes left fewer than two vault photos"
    assert ticks == [(done, photos) for done in range(photos + 1)]
    assert kept(engine) == brute_force(engine)


# -- 2. concurrent writers --------------------------------------------------------------------
def _writer(url: str, seed: int, writes: int) -> None:
    engine = make_engine(url)
    rng = random.Random(seed)
    for _ in range(writes):
        op = (rng.choice(KINDS), *(rng.randrange(1000) for _ in range(4)))
        for _attempt in range(20):  # a deadlock between two writers is retried
            try:
                write(engine, op)
                break
            except OperationalError:
                continue
    engine.dispose()


def _counter(url: str, rounds: int) -> None:
    engine = make_engine(url)
    for _ in range(rounds):
        kept(engine)
    engine.dispose()


def test_counts_stay_exact_with_writers_and_counters_running(catalog_url, catalog_engine):
    engine = catalog_engine
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(catalog_url, seed, 120)) for seed in (1, 2)]
    procs += [ctx.Process(target=_counter, args=(catalog_url, 25)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
        assert proc.exitcode == 0, f"{proc.name} exited with {proc.exitcode}"
    assert kept(engine) == brute_force(engine)


def test_a_write_committed_during_a_fold_is_folded_by_the_next_count(catalog_engine):
    """A writer's transaction open across a fold: its tie, to a photo whose face another
    transaction blocks meanwhile, is counted once it commits (PostgreSQL: writers run
    concurrently; on SQLite the open writer would hold the only write lock)."""
    engine = catalog_engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no write can be open across a fold")
    with engine.begin() as conn:
        _face(conn, 3, blocked=False)
    with engine.connect() as open_writer:
        open_writer.begin()
        open_writer.execute(insert(t.jurisdictions).values(
            photo_id=3, face_id=0, region="US-IL", signal="gps"))  # fmt: skip
        with engine.begin() as conn:  # the face enters the vault and is folded in
            conn.execute(update(t.faces).where(t.faces.c.photo_id == 3).values(blocked=True))
        assert kept(engine)[("US-IL", "gps")]["faces"] == 0  # the tie is not committed
        open_writer.commit()
    assert kept(engine)[("US-IL", "gps")] == {"photos": 1, "faces": 1, "source_urls": 0}
    assert kept(engine) == brute_force(engine)


# -- 3. upgrade, and what discovery count takes from them ----------------------------------------
def test_a_catalog_upgraded_from_0011_counts_its_vault(catalog_engine):
    from alembic import command

    from faceledger.catalog.database import _alembic_config

    engine = catalog_engine
    random_writes(engine, seed=5, writes=120)
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
    random_writes(engine, seed=6, writes=40)  # with no triggers to mark them
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(t.vault_count_pending)) > 0
    assert kept(engine) == brute_force(engine)


def test_discovery_count_takes_the_kept_counts_only_where_they_answer(catalog_engine):
    engine = catalog_engine
    random_writes(engine, seed=9, writes=150)
    rules = [BlockingRule(region="US-IL", signals=SIGNALS),
             BlockingRule(region="US-CA", signals=("gps",))]  # fmt: skip
    for region in ("US-IL", "US-IL-CHI", "US-CA", "DE"):
        selection = Selection(True, region, None, True, rules)
        assert selection.kept_signals(SIGNALS) is not None
        with engine.connect() as conn:
            from_kept = count(conn, selection)
            statement = tie_counts(conn, selection, list(SIGNALS))
        assert from_kept["total"] == statement["total"], region
        assert from_kept["by_signal"] == statement["by_signal"], region
    # A rule for part of the region: the ties decide per row, so the statement answers.
    assert Selection(True, "US", None, True, rules).kept_signals(SIGNALS) is None
    assert Selection(False, "US-IL", None, True, rules).kept_signals(SIGNALS) is None
    assert Selection(True, "US", "gps", True, rules).kept_signals(["gps"]) is None
    assert Selection(True, "DE", "gps", True, rules).kept_signals(["gps"]) == {"gps": False}
