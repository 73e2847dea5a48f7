"""The catalog at scale (issue 12, item 4), on SQLite and PostgreSQL, with real photos:

- ``discovery count`` counts in one SQL statement and agrees with an independent count of the
  catalog's rows; on PostgreSQL its plan reads the vault and the region's ties from the
  indexes of migration 0010 alone (index-only scans);
- ``policy apply`` re-decides only the photos a change can affect, and after every kind of
  change its result is the full re-decision's (a full apply then moves nothing); an apply with
  nothing changed re-decides no photo;
- ``discovery vector-dates`` streams: memory stays flat from N to 10N rows, and the stream is
  audited before its first row and closed with its row count.
"""

from __future__ import annotations

import json
import shutil
import tracemalloc
from pathlib import Path

import pytest
from conftest import fresh_pg_database, make_settings, shared_path
from helpers import cli, count_plan
from sqlalchemy import func, insert, select, text, update

from faceledger.app.answers import STREAM_END, answer, recount, stream_vector_dates
from faceledger.app.governance import attestations, users
from faceledger.app.ingest import ingest
from faceledger.app.library import Library
from faceledger.app.policy import apply_policy
from faceledger.app.sites import import_sites
from faceledger.catalog import schema as t
from faceledger.catalog.discovery import Selection
from faceledger.errors import PermissionDenied, VaultCountsCorrupt
from faceledger.policy import SIGNALS, default_policy_text, region_covers

DATA = ("faces", "deepface", "tests", "unit", "dataset")
# photo -> (website, uploader region)
PHOTOS = {
    "img1.jpg": ("a.example", ""),  # a.example publishes from US-IL: blocked by publisher
    "img2.jpg": ("b.example", "US-IL"),  # blocked by uploader
    "img3.jpg": ("b.example", ""),  # searchable until b.example moves to US-IL
    "img4.jpg": ("c.example", ""),  # c.example publishes from US-CA
    "couple.jpg": ("c.example", "US-CA"),  # two faces
}
SITES = {"a.example": "US-IL", "b.example": "", "c.example": "US-CA"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request, tmp_path_factory):
    """(kind, database URL or ''): a fresh database for the module, dropped afterwards."""
    if request.param == "sqlite":
        yield "sqlite", ""
        return
    with fresh_pg_database() as url:
        yield "postgresql", url


def _sites_file(path: Path, regions: dict[str, str]) -> Path:
    lines = ["domain,publisher,publisher_region"]
    lines += [f"{d},Publisher of {d},{r}" for d, r in regions.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def world(backend, tmp_path_factory):
    """A library of real photos from three websites, a custodian and an auditor."""
    kind, url = backend
    root = tmp_path_factory.mktemp(f"scale-{kind}")
    data = shared_path(*DATA)
    src = root / "src"
    src.mkdir()
    lines = ["path,source_url,website,uploader_region"]
    for name, (site, region) in PHOTOS.items():
        shutil.copy(data / name, src / name)
        lines.append(f"{name},https://{site}/{name},{site},{region}")
    (src / "manifest.csv").write_text("\n".join(lines) + "\n")
    settings = make_settings(root / "library", database_url=url or None)
    lib = Library.create(settings)
    owner = lib.actor(None)
    import_sites(lib, owner, _sites_file(root / "sites.csv", SITES))
    users.add_user(lib, owner, "cara", "custodian")
    users.add_user(lib, owner, "audrey", "auditor")
    (root / "statement.txt").write_text("I use vault access for legal obligations only.\n")
    attestations.attest(lib, lib.actor("cara"), "cara", root / "statement.txt")
    summary = ingest(lib, owner, manifests=[src / "manifest.csv"])
    assert not summary.errors and summary.faces_blocked >= 2
    yield {"kind": kind, "lib": lib, "root": root, "settings": settings}
    lib.close()


def _placement(lib: Library) -> dict[int, bool]:
    with lib.catalog.engine.connect() as conn:
        return dict(conn.execute(select(t.faces.c.id, t.faces.c.blocked)
                                 .where(t.faces.c.status == "active")).all())  # fmt: skip


# -- 1. count -----------------------------------------------------------------------------------
def _expected_count(lib: Library, region: str) -> dict:
    """The blocked count by brute force over the catalog's rows, in Python."""
    with lib.catalog.engine.connect() as conn:
        faces = conn.execute(select(t.faces.c.id, t.faces.c.photo_id)
                             .where(t.faces.c.status == "active", t.faces.c.blocked)).all()
        ties = conn.execute(select(t.jurisdictions.c.photo_id, t.jurisdictions.c.face_id,
                                   t.jurisdictions.c.region, t.jurisdictions.c.signal)).all()
        urls = conn.execute(select(t.photo_sources.c.photo_id, t.photo_sources.c.source_url)
                            .where(t.photo_sources.c.source_url.is_not(None))).all()
    rules = lib.policy.blocking
    total_faces, total_photos = set(), set()
    per = {s: (set(), set()) for s in SIGNALS}
    for face_id, photo_id in faces:
        for p, f, r, s in ties:
            if p != photo_id or f not in (0, face_id) or not region_covers(region, r):
                continue
            total_faces.add(face_id)
            total_photos.add(photo_id)
            if any(s in rule.signals and region_covers(rule.region, r) for rule in rules):
                per[s][0].add(face_id)
                per[s][1].add(photo_id)

    def summary(face_ids: set, photo_ids: set) -> dict:
        found = {u for p, u in urls if p in photo_ids}
        return {"photos": len(photo_ids), "faces": len(face_ids), "source_urls": len(found)}

    return {"total": summary(total_faces, total_photos),
            "by_signal": {s: summary(*per[s]) for s in SIGNALS}}  # fmt: skip


def _pending(lib: Library) -> int:
    with lib.catalog.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(t.vault_count_pending))


def test_count_in_sql_agrees_with_the_rows(world):
    lib = world["lib"]
    assert _pending(lib) == 0  # the ingest run folded its photos into the kept counts
    got = answer(lib, lib.actor("cara"), "count", blocked=True, jurisdiction="us-il")
    want = _expected_count(lib, "US-IL")
    assert got["total"] == want["total"] and got["by_signal"] == want["by_signal"]
    assert got["total"]["faces"] >= 2 and got["by_signal"]["uploader"]["faces"] >= 1
    # "US-I" is no region of US-IL's: the prefix match is not a region match.
    none = answer(lib, lib.actor("cara"), "count", blocked=True, jurisdiction="US-I")
    assert none["total"] == {"photos": 0, "faces": 0, "source_urls": 0}
    # The searchable side, as an auditor sees it: never a vault face (invariant 1).
    seen = answer(lib, lib.actor("audrey"), "count", jurisdiction="US-CA")
    searchable = {f for f, blocked in _placement(lib).items() if not blocked}
    assert 0 < seen["total"]["faces"] <= len(searchable)


def test_verify_finds_edited_kept_counts_and_recount_restores_them(world):
    lib = world["lib"]
    cara = lib.actor("cara")
    honest = answer(lib, cara, "count", blocked=True, jurisdiction="US-IL", verify=True)
    with lib.catalog.begin() as conn:  # an edit by hand, beside the product
        conn.execute(update(t.vault_count_totals)
                     .where(t.vault_count_totals.c.region == "US-IL")
                     .values(faces=t.vault_count_totals.c.faces + 1))  # fmt: skip
    with pytest.raises(VaultCountsCorrupt, match="discovery recount"):
        answer(lib, cara, "count", blocked=True, jurisdiction="US-IL", verify=True)
    done = cli(world["settings"].library, "discovery", "count", "--blocked", "-j", "US-IL",
               "--verify", user="cara",
               env={"FACELEDGER_DATABASE_URL": world["settings"].database_url}
               if world["settings"].database_url else None)  # fmt: skip
    assert done.exit_code != 0 and "discovery recount" in done.output, done.output
    with pytest.raises(PermissionDenied):
        recount(lib, lib.actor("audrey"))  # auditors check; custodians rebuild
    assert recount(lib, cara)["vault_photos"] >= 1
    again = answer(lib, cara, "count", blocked=True, jurisdiction="US-IL", verify=True)
    assert again == honest


def test_an_erased_vault_face_leaves_the_kept_counts_with_the_erasure(world):
    """Destruction is total (invariant 3): the erasure folds the face out of the vault's kept
    counts itself, so no count of it is left in the kept tables for the next count to fix."""
    from faceledger.app.governance.destruction import erase

    lib = world["lib"]
    cara = lib.actor("cara")
    # img1's face: blocked by its publisher whatever the later tests change, so they still
    # find img2 and img3 (whose ids depend on the ingest's order) to move.
    with lib.catalog.engine.connect() as conn:
        img1_face = conn.execute(
            select(t.faces.c.id).join(t.photo_sources,
                                      t.photo_sources.c.photo_id == t.faces.c.photo_id)
            .where(t.photo_sources.c.source_url == "https://a.example/img1.jpg")).scalar_one()
    assert _placement(lib)[img1_face] is True
    before = answer(lib, cara, "count", blocked=True, jurisdiction="US-IL")
    erase(lib, cara, face=img1_face)
    assert _pending(lib) == 0
    with lib.catalog.engine.connect() as conn:
        kept = conn.execute(select(t.vault_count_totals.c.faces).where(
            t.vault_count_totals.c.region == "US-IL",
            t.vault_count_totals.c.signal == "*")).scalar_one()  # fmt: skip
    assert kept == before["total"]["faces"] - 1
    after = answer(lib, cara, "count", blocked=True, jurisdiction="US-IL", verify=True)
    want = _expected_count(lib, "US-IL")
    assert (after["total"], after["by_signal"]) == (want["total"], want["by_signal"])


def test_init_on_an_existing_library_folds_what_is_pending(world):
    """`init` (an upgrade) folds pending marks, as migration 0012 leaves the whole vault,
    so the first count after it does not: nothing is pending when it returns."""
    lib, settings = world["lib"], world["settings"]
    with lib.catalog.engine.connect() as conn:
        vault_photos = conn.execute(select(t.faces.c.photo_id.distinct()).where(
            t.faces.c.status == "active", t.faces.c.blocked)).scalars().all()  # fmt: skip

    def mark_the_vault() -> None:
        with lib.catalog.begin() as conn:
            conn.execute(insert(t.vault_count_pending), [{"photo_id": p} for p in vault_photos])
        assert _pending(lib) == len(vault_photos) > 0

    # The library call tells its progress in thousandths: the photos folded are vault photos,
    # a count the admin running init may not see (invariant 1).
    mark_the_vault()
    ticks: list[tuple[int, int]] = []
    Library.create(settings, on_progress=lambda done, total: ticks.append((done, total))).close()
    assert ticks == [(0, 1000), (1000, 1000)] and _pending(lib) == 0
    mark_the_vault()
    env = {"FACELEDGER_DATABASE_URL": settings.database_url} if settings.database_url else None
    done = cli(settings.library, "init", "--json", env=env)
    assert done.exit_code == 0, done.output
    assert _pending(lib) == 0
    got = answer(lib, lib.actor("cara"), "count", blocked=True, jurisdiction="US-IL", verify=True)
    want = _expected_count(lib, "US-IL")
    assert (got["total"], got["by_signal"]) == (want["total"], want["by_signal"])


def test_blocked_count_plan_reads_only_indexes(world):
    if world["kind"] != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    lib = world["lib"]
    selection = Selection(True, "US-IL", None, True, lib.policy.blocking)
    with lib.catalog.engine.connect() as conn:
        plan = count_plan(conn, selection)
    assert "Index Only Scan using ix_jurisdictions_ties" in plan, plan
    assert "using ix_faces_vault" in plan, plan


# -- 3. policy apply ----------------------------------------------------------------------------
def _apply_and_check(lib: Library, *, moves: bool) -> dict:
    """An incremental apply, then a full one that must find nothing left to move."""
    owner = lib.actor(None)
    before = _placement(lib)
    result = apply_policy(lib, owner)
    assert result["full"] is False
    after = _placement(lib)
    assert (after != before) is moves, result
    full = apply_policy(lib, owner, full=True)
    assert full["full"] is True and (full["blocked"], full["unblocked"]) == (0, 0), (result, full)
    assert _placement(lib) == after
    # The apply folded its moves and re-derived ties into the kept counts, which agree with
    # the rows and with the statement over the ties (--verify).
    assert _pending(lib) == 0
    got = answer(lib, lib.actor("cara"), "count", blocked=True, jurisdiction="US-IL", verify=True)
    want = _expected_count(lib, "US-IL")
    assert (got["total"], got["by_signal"]) == (want["total"], want["by_signal"])
    return result


def test_incremental_apply_equals_a_full_one(world):
    lib, root = world["lib"], world["root"]
    owner = lib.actor(None)
    n_photos = len(PHOTOS)
    first = apply_policy(lib, owner)  # nothing applied before: every photo re-decided
    assert first["full"] is True
    # Nothing changed: no photo re-decided, no face moved.
    idle = apply_policy(lib, owner)
    assert (idle["full"], idle["photos_redecided"], idle["blocked"], idle["unblocked"]) == (
        False, 0, 0, 0)  # fmt: skip
    # A website moves to US-IL: only its two photos are re-decided; img3 goes to the vault.
    import_sites(lib, owner, _sites_file(root / "s1.csv", {"b.example": "US-IL"}))
    moved = _apply_and_check(lib, moves=True)
    assert moved["photos_redecided"] == 2 and moved["blocked"] >= 1
    # The policy blocks US-CA by publisher too: c.example's photos, and no others.
    policy = default_policy_text().replace(
        "\nblocking:\n", "\nblocking:\n  - region: US-CA\n    signals: [publisher]\n", 1)
    lib.policy_path.write_text(policy)
    moved = _apply_and_check(lib, moves=True)
    assert moved["photos_redecided"] == 2 and moved["blocked"] >= 2
    # US-IL no longer blocked by uploader, and b.example back to no region: img2 and img3 free.
    lib.policy_path.write_text(policy.replace("uploader, ", "").replace(", uploader", ""))
    import_sites(lib, owner, _sites_file(root / "s2.csv", {"b.example": ""}))
    moved = _apply_and_check(lib, moves=True)
    assert moved["unblocked"] >= 2 and moved["photos_redecided"] < n_photos
    # The default policy again (a policy change alone).
    lib.policy_path.write_text(default_policy_text())
    _apply_and_check(lib, moves=True)
    idle = apply_policy(lib, owner)
    assert (idle["photos_redecided"], idle["blocked"], idle["unblocked"]) == (0, 0, 0)


# -- 2. vector-dates streams --------------------------------------------------------------------
def _audit_tail(lib: Library, n: int) -> list[tuple[str, dict]]:
    with lib.catalog.engine.connect() as conn:
        rows = conn.execute(select(t.audit_log.c.action, t.audit_log.c.details)
                            .order_by(t.audit_log.c.id.desc()).limit(n)).all()  # fmt: skip
    return [(a, d if isinstance(d, dict) else json.loads(d)) for a, d in reversed(rows)]


def test_vector_dates_stream_is_audited_at_both_ends(world):
    lib = world["lib"]
    cara = lib.actor("cara")
    listed = answer(lib, cara, "vector_dates", blocked=True)
    rows = list(stream_vector_dates(lib, cara, blocked=True))
    assert rows == listed and rows
    (opened, d1), (closed, d2) = _audit_tail(lib, 2)
    assert (opened, d1["rows"], d1["streamed"]) == ("discovery.vector_dates", None, True)
    assert (closed, d2["rows"], d2["complete"]) == (STREAM_END, len(rows), True)
    # A reader that stops early: the closing entry says so.
    stream = stream_vector_dates(lib, cara)
    next(stream)
    stream.close()
    (_, d2), = _audit_tail(lib, 1)
    assert (d2["rows"], d2["complete"]) == (1, False)
    # The CLI writes the same rows, as one JSON array a row a line.
    done = cli(world["settings"].library, "discovery", "vector-dates", "--blocked", "--json",
               user="cara", env={"FACELEDGER_DATABASE_URL": world["settings"].database_url})
    assert done.exit_code == 0, done.stdout
    assert json.loads(done.stdout) == listed
    assert len(done.stdout.strip().splitlines()) == len(listed) + 2


def _fill(lib: Library, block: int, photos: int = 1_000, faces_per_photo: int = 4) -> None:
    """Synthetic photos (block ``block`` of ids), a source and faces each, by plain SQL:
    many rows quickly; the stream reads them as it reads ingested ones."""
    first = 1_000_000 + block * photos
    series = f"generate_series({first}, {first + photos - 1}) g"
    with lib.catalog.begin() as conn:
        for statement in (
            "INSERT INTO photos (id, sha256, md5, sha1, byte_size, width, height, format, "
            "added_at, status) SELECT g, md5(g::text) || md5((g + 1)::text), md5(g::text), "
            f"left(md5(g::text) || md5(g::text), 40), 1000, 640, 480, 'JPEG', now(), 'active' "
            f"FROM {series}",
            "INSERT INTO photo_sources (photo_id, kind, locator, source_url, source_url_digest, "
            "added_at) SELECT g, 'manifest', 'm.csv:' || g, u, sha256(convert_to(u, 'UTF8')), "
            f"now() FROM {series}, LATERAL (SELECT 'https://x.example/' || g || '.jpg' AS u) s",
            "INSERT INTO faces (photo_id, ordinal, box_top, box_right, box_bottom, box_left, "
            "landmarks, detector, det_score, model, model_version, vector_collected_at, "
            "last_interaction_at, blocked, status) SELECT g, o, 1, 2, 2, 1, '[]', 'hog', 1.0, "
            f"'dlib', 'v1', now(), now(), false, 'active' FROM {series}, "
            f"generate_series(0, {faces_per_photo - 1}) o",
        ):
            conn.execute(text(statement))


def _peak(rows) -> tuple[int, int]:
    """(rows read, peak bytes Python allocated while making and reading them)."""
    tracemalloc.start()
    try:
        n = sum(1 for _ in rows())
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_vector_dates_memory_does_not_grow_with_the_rows(world):
    if world["kind"] != "postgresql":
        pytest.skip("the server-side cursor is PostgreSQL's (SQLite reads its file in place)")
    lib = world["lib"]
    audrey = lib.actor("audrey")
    before = sum(1 for _ in stream_vector_dates(lib, audrey, blocked=False))
    _fill(lib, 0)
    n_small, small = _peak(lambda: stream_vector_dates(lib, audrey, blocked=False))
    for block in range(1, 10):  # ten times the rows
        _fill(lib, block)
    n_large, large = _peak(lambda: stream_vector_dates(lib, audrey, blocked=False))
    assert (n_small - before, n_large - before) == (4_000, 40_000)
    assert large < 1.5 * small + 256 * 1024, (small, large)
    # The measure sees growth where there is some: the same rows gathered in a list.
    _, listed = _peak(lambda: answer(lib, audrey, "vector_dates", blocked=False))
    assert listed > 4 * large, (large, listed)

