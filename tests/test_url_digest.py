"""Source URL digests (issue 12, item 4; migration 0011), on SQLite and PostgreSQL, with real
photos that have several source URLs each, some shared between photos, one longer than a
b-tree entry holds and one not ASCII:

- every provenance row written by an ingest carries the SHA-256 of its URL;
- ``discovery count``, which counts distinct digests, gives the counts a brute-force count of
  distinct ``source_url`` values gives, blocked and searchable, with and without a region;
- on PostgreSQL the count reads the digests from ``ix_photo_sources_url_digest`` alone;
- a catalog from before 0011 (real rows and rows written by plain SQL, over several backfill
  batches) is backfilled by the upgrade with the same digests.
"""

from __future__ import annotations

import hashlib
import shutil

import pytest
from alembic import command
from conftest import fresh_pg_database, make_settings, shared_path
from helpers import count_plan
from sqlalchemy import inspect, select, text

from faceledger.app.answers import answer
from faceledger.app.governance import attestations, users
from faceledger.app.ingest import ingest
from faceledger.app.library import Library
from faceledger.app.sites import import_sites
from faceledger.catalog import schema as t
from faceledger.catalog.database import _alembic_config
from faceledger.catalog.discovery import COUNT_WORK_MEM, Selection
from faceledger.catalog.photos import url_digest
from faceledger.policy import SIGNALS, region_covers

DATA = ("faces", "deepface", "tests", "unit", "dataset")
SHARED = "https://mirror.example/shared.jpg"
LONG = "https://c.example/long.jpg?q=" + "x" * 4_000  # over a b-tree entry's 2,704 bytes
# (photo, source URL, website, uploader region): several URLs a photo, some shared by photos.
ROWS = [
    ("img1.jpg", "https://a.example/1.jpg", "a.example", "US-IL"),
    ("img1.jpg", SHARED, "mirror.example", ""),
    ("img2.jpg", SHARED, "mirror.example", "US-IL"),
    ("img2.jpg", "https://b.example/bild/größe-ü.jpg", "b.example", ""),
    ("img3.jpg", LONG, "c.example", "US-IL"),
    ("img3.jpg", "https://a.example/1.jpg", "a.example", ""),  # img1's URL too
    ("img4.jpg", "https://d.example/4.jpg", "d.example", ""),  # searchable
    ("img4.jpg", SHARED, "mirror.example", ""),  # a searchable photo sharing a vault URL
    ("img5.jpg", "", "e.example", "US-IL"),  # no URL at all
]
SITES = "domain,publisher,publisher_region\na.example,A,US-IL\nd.example,D,US-CA\n"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request):
    """(kind, database URL or ''): a fresh database for the module, dropped afterwards."""
    if request.param == "sqlite":
        yield "sqlite", ""
        return
    with fresh_pg_database() as url:
        yield "postgresql", url


@pytest.fixture(scope="module")
def world(backend, tmp_path_factory):
    """A library of real photos ingested from one manifest, a custodian and an auditor."""
    kind, url = backend
    root = tmp_path_factory.mktemp(f"digest-{kind}")
    src = root / "src"
    src.mkdir()
    for name in {r[0] for r in ROWS}:
        shutil.copy(shared_path(*DATA, name), src / name)
    lines = ["path,source_url,website,uploader_region"]
    lines += [",".join(row) for row in ROWS]
    (src / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "sites.csv").write_text(SITES)
    lib = Library.create(make_settings(root / "library", database_url=url or None))
    owner = lib.actor(None)
    import_sites(lib, owner, root / "sites.csv")
    users.add_user(lib, owner, "cara", "custodian")
    users.add_user(lib, owner, "audrey", "auditor")
    (root / "statement.txt").write_text("I use vault access for legal obligations only.\n")
    attestations.attest(lib, lib.actor("cara"), "cara", root / "statement.txt")
    summary = ingest(lib, owner, manifests=[src / "manifest.csv"])
    assert not summary.errors and summary.faces_blocked >= 3, summary
    yield {"kind": kind, "lib": lib}
    lib.close()


def _sources(lib: Library) -> list[tuple[int, int, str | None, bytes | None]]:
    ps = t.photo_sources
    with lib.catalog.engine.connect() as conn:
        rows = conn.execute(select(ps.c.id, ps.c.photo_id, ps.c.source_url,
                                   ps.c.source_url_digest).order_by(ps.c.id)).all()  # fmt: skip
    return [(i, p, u, None if d is None else bytes(d)) for i, p, u, d in rows]


def _brute_force(lib: Library, blocked: bool, region: str | None) -> dict:
    """The count by brute force over the catalog's rows, distinct URLs by ``source_url``."""
    with lib.catalog.engine.connect() as conn:
        faces = conn.execute(select(t.faces.c.id, t.faces.c.photo_id).where(
            t.faces.c.status == "active", t.faces.c.blocked.is_(blocked))).all()  # fmt: skip
        ties = conn.execute(select(t.jurisdictions.c.photo_id, t.jurisdictions.c.face_id,
                                   t.jurisdictions.c.region, t.jurisdictions.c.signal)).all()
    urls = [(p, u) for _, p, u, _ in _sources(lib) if u is not None]
    rules = lib.policy.blocking
    total = (set(), set())
    per = {s: (set(), set()) for s in SIGNALS}
    for face_id, photo_id in faces:
        mine = [(r, s) for p, f, r, s in ties if p == photo_id and f in (0, face_id)]
        if region is None:
            total[0].add(face_id)
            total[1].add(photo_id)
        for r, s in mine:
            if region is not None and not region_covers(region, r):
                continue
            total[0].add(face_id)
            total[1].add(photo_id)
            if blocked and any(s in x.signals and region_covers(x.region, r) for x in rules):
                per[s][0].add(face_id)
                per[s][1].add(photo_id)

    def summary(face_ids: set, photo_ids: set) -> dict:
        found = {u for p, u in urls if p in photo_ids}
        return {"photos": len(photo_ids), "faces": len(face_ids), "source_urls": len(found)}

    return {"total": summary(*total), "by_signal": {s: summary(*per[s]) for s in SIGNALS}}


def test_every_ingested_source_carries_its_url_digest(world):
    rows = _sources(world["lib"])
    assert len(rows) == len(ROWS)
    assert all(d == url_digest(u) for _, _, u, d in rows), rows
    assert sum(d is None for *_, d in rows) == 1  # the row without a URL
    assert len({d for *_, d in rows if d}) == len({r[1] for r in ROWS if r[1]})  # 6 URLs
    assert url_digest(LONG) == hashlib.sha256(LONG.encode()).digest()
    assert len(url_digest(LONG)) == 32


def test_count_by_digest_equals_a_count_of_the_urls(world):
    lib = world["lib"]
    cara, audrey = lib.actor("cara"), lib.actor("audrey")
    got = answer(lib, cara, "count", blocked=True, jurisdiction="US-IL")
    want = _brute_force(lib, True, "US-IL")
    assert (got["total"], got["by_signal"]) == (want["total"], want["by_signal"])
    # img1-img3 in the vault: 4 distinct URLs among their 6 rows (the shared ones once).
    assert got["total"]["source_urls"] == 4 and got["by_signal"]["uploader"]["source_urls"] >= 4
    assert got["by_signal"]["publisher"]["source_urls"] >= 2  # a.example's photos
    # A region no rule covers whole (US-IL is blocked, not US): each tie's own region decides.
    got = answer(lib, cara, "count", blocked=True, jurisdiction="US")
    want = _brute_force(lib, True, "US")
    assert (got["total"], got["by_signal"]) == (want["total"], want["by_signal"])
    assert got["by_signal"]["uploader"]["faces"] >= 3
    # Without a region, the totals are counted another way (every selected face's photo).
    got = answer(lib, cara, "count", blocked=True)
    assert got["total"] == _brute_force(lib, True, None)["total"]
    # The searchable side, as an auditor sees it: img4's two URLs, one shared with the vault.
    seen = answer(lib, audrey, "count")
    assert seen["total"] == _brute_force(lib, False, None)["total"]
    assert seen["total"]["source_urls"] == 2


def test_postgres_count_reads_the_digests_index_only(world):
    if world["kind"] != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    lib = world["lib"]
    selection = Selection(True, "US-IL", None, True, lib.policy.blocking)
    # Index-only needs the visibility map (a catalog's autovacuum sets it): without it every
    # index on photo_id costs the same to the planner.
    with lib.catalog.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) photo_sources"))
    with lib.catalog.engine.connect() as conn:
        plan = count_plan(conn, selection)
        # The statement ran with its own work_mem (SET LOCAL: this transaction only).
        assert conn.scalar(text("SHOW work_mem")) == COUNT_WORK_MEM
        conn.rollback()
        assert conn.scalar(text("SHOW work_mem")) != COUNT_WORK_MEM
    assert "Index Only Scan using ix_photo_sources_url_digest" in plan, plan


def test_upgrade_backfills_an_existing_catalog(world):
    """Back to 0010 (no digest column, as a catalog from before), rows added by plain SQL there,
    then the upgrade: every row has its URL's digest and the counts are unchanged."""
    lib = world["lib"]
    before = answer(lib, lib.actor("cara"), "count", blocked=True, jurisdiction="US-IL")
    photo = _sources(lib)[0][1]  # img1's, in the vault
    engine = lib.catalog.engine
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    with engine.connect() as conn:
        assert "source_url_digest" not in {c["name"] for c in inspect(conn).get_columns(
            "photo_sources")}  # fmt: skip
    extra = ["https://f.example/ünï/" + "y" * 3_000, SHARED, None]
    with engine.begin() as conn:
        for n, url in enumerate(extra):
            # Ids far apart, so that the backfill runs over several of its batches.
            conn.execute(text(
                "INSERT INTO photo_sources (id, photo_id, kind, locator, source_url, added_at) "
                "VALUES (:id, :p, 'manifest', :loc, :url, :at)"
            ), {"id": 1_000 + n * 120_000, "p": photo, "loc": f"old.csv#{n}", "url": url,
                "at": "2026-01-01 00:00:00+00:00"})  # fmt: skip
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    rows = _sources(lib)
    assert len(rows) == len(ROWS) + len(extra)
    assert all(d == url_digest(u) for _, _, u, d in rows), rows
    assert sum(d is not None for *_, d in rows) == len(ROWS) - 1 + 2
    with engine.connect() as conn:
        assert "ix_photo_sources_url_digest" in {i["name"] for i in inspect(conn).get_indexes(
            "photo_sources")}  # fmt: skip
    after = answer(lib, lib.actor("cara"), "count", blocked=True, jurisdiction="US-IL")
    want = _brute_force(lib, True, "US-IL")
    assert (after["total"], after["by_signal"]) == (want["total"], want["by_signal"])
    # The new URL adds one to img1's photo's vault count; SHARED was counted already.
    assert after["total"]["source_urls"] == before["total"]["source_urls"] + 1
