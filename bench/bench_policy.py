"""Policy benchmark (issue 3): `discovery count` and `policy apply` over a catalog of 10^6 faces.

The library is synthetic but built through faceledger itself: `Library.create`, then rows bulk
inserted with SQLAlchemy Core (photos, provenance across ~5,000 websites, faces with random
float32 vectors stored by `to_blob`, GPS/uploader/publisher/subject jurisdictions, opt-outs) with
`faces.blocked` set as the default policy decides, then both vector indexes built by
`Library.index` and one untimed `policy apply` that must move no face (it checks the generator
against the product's own decisions). It is cached in bench/cache/policy-<size>/; `--rebuild`
makes a new one. Its build times are reported from the first build.

Timed (wall clock, median of repetitions):

1. `discovery count --blocked -j US-IL` as a library call,
   `answer(lib, custodian, "count", blocked=True, jurisdiction="US-IL")`, and as the CLI
   (`faceledger --as custodian discovery count --blocked -j US-IL --json`) end to end;
2. `policy apply` after a real change: a sites file puts 1% more websites' publishers in US-IL
   (`faceledger sites import`), `apply_policy` moves their faces to the vault; then an idempotent
   apply (nothing moves); then the sites are put back and an apply moves the faces back. Each apply
   opens the library afresh, as the CLI does, so it loads the saved indexes from disk. Its time is
   split into phases (catalog work, and `sync_indexes`: loading, syncing and saving the indexes).

3. `discovery vector-dates --blocked -j US-IL --json` as a CLI process whose streamed rows are
   read as they come: time to the first row, to the last, and the process's peak RSS.

The timed changes move about 0.1% and 1% of the faces (websites of unknown region put in
US-IL), so that `policy apply`, which re-decides only the photos a change can affect, shows
that it grows with the faces moved; the settle after a build is a full re-decision
(`apply_policy(full=True)`), timed too.

With `--catalog-url postgresql+psycopg://…/DBNAME` the catalog is PostgreSQL: the database is
dropped, recreated and bulk loaded by `COPY` (psycopg's `cursor.copy`), then `VACUUM ANALYZE`d;
the faces' change-log trigger is off during the COPY and the index files are removed, and no
vector index is opened, built or synced in this run (`Library.sync_indexes` is a no-op: the
vector index at 10^7 is bench_scale.py's), so the apply times are the catalog's alone. The
built database is kept and recognised by a marker row in `library_meta` (with
bench/cache/policy-pg-<size>/bench.json); `--pg-dump` also keeps a `pg_dump -Fc` beside it.

    .venv/bin/python bench/bench_policy.py --faces 1e5        # quick, ~1 min
    .venv/bin/python bench/bench_policy.py                    # 10^6 (first run ~11 min, then ~6)
    .venv/bin/python bench/bench_policy.py --profile          # + cProfile of one apply
    createdb -h /tmp/mypg -p 54330 -U postgres bench_10m      # any database the URL can name
    .venv/bin/python bench/bench_policy.py --faces 1e7 \
        --catalog-url "postgresql+psycopg://postgres@/bench_10m?host=/tmp/mypg&port=54330"
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import functools
import hashlib
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import common
import numpy as np
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from faceledger.app.answers import answer
from faceledger.app.governance.users import new_api_key
from faceledger.app.library import Library
from faceledger.app.placement import Decider
from faceledger.app.policy import apply_policy
from faceledger.app.sites import import_sites
from faceledger.catalog import schema as t
from faceledger.catalog.database import head_revision
from faceledger.catalog.photos import url_digest
from faceledger.catalog.vectors import DIM, PlainSealer, to_blob
from faceledger.config import Settings
from faceledger.errors import FaceledgerError

#: Bump when the generated data changes, so cached libraries are rebuilt.
GENERATOR = 2
#: The timed changes: sites moved to US-IL so that about this fraction of faces move.
CHANGES = {"0.1%": 0.001, "1%": 0.01}
FACELEDGER_CLI = common.REPO / ".venv/bin/faceledger"
TARGET_COUNT_S = 1.0
TARGET_APPLY_S = 120.0
BATCH = 50_000
IL = "US-IL"
US_STATES = ["US-CA", "US-NY", "US-TX", "US-FL", "US-WA", "US-IN", "US-WI", "US-MO", "US-IA"]
COUNTRIES = ["GB", "FR", "DE", "CA", "JP", "BR", "IN", "AU", "MX", "ES", "IT", "NL"]
OTHER = US_STATES + COUNTRIES
# A point inside each region, for the photos' EXIF GPS columns (the gps jurisdictions are stored
# rows, as ingest would have resolved them; these columns are only what a reader would see).
POINTS = {
    IL: (41.88, -87.63),
    "US-CA": (36.7, -119.4),
    "US-NY": (42.9, -75.5),
    "US-TX": (31.0, -99.0),
    "US-FL": (28.0, -81.7),
    "US-WA": (47.4, -120.5),
    "US-IN": (39.9, -86.3),
    "US-WI": (44.5, -89.8),
    "US-MO": (38.4, -92.5),
    "US-IA": (42.0, -93.5),
    "GB": (52.5, -1.5),
    "FR": (46.6, 2.4),
    "DE": (51.1, 10.4),
    "CA": (45.4, -75.7),
    "JP": (36.2, 138.3),
    "BR": (-14.2, -51.9),
    "IN": (22.0, 79.0),
    "AU": (-25.3, 133.8),
    "MX": (23.6, -102.5),
    "ES": (40.4, -3.7),
    "IT": (42.8, 12.6),
    "NL": (52.1, 5.3),
}
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def size_label(n: int) -> str:
    exponent = round(np.log10(n))
    return f"1e{exponent}" if 10**exponent == n else str(n)


#: The custodian's API key, for the CLI runs (acting as another user takes the user's key).
CUSTODIAN_KEY = ""
#: The PostgreSQL catalog URL of this run (``--catalog-url``); empty: SQLite in the library.
CATALOG_URL = ""


def settings_for(library: Path) -> Settings:
    env = {"FACELEDGER_DATABASE_URL": CATALOG_URL} if CATALOG_URL else {}
    return Settings.from_env(environ=env, library=library)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


# -- the synthetic library ------------------------------------------------------------------------
class Plan:
    """Every row of the synthetic catalog, as numpy arrays (deterministic from size and seed)."""

    def __init__(self, n_faces: int, seed: int):
        rng = np.random.default_rng(seed)
        self.n_faces = n_faces
        self.n_photos = n_photos = max(1, round(0.6 * n_faces))
        self.n_sites = n_sites = max(50, min(5_000, n_faces // 200))
        # Faces: every photo has one; the rest land on random photos (2-5 faces in a group shot).
        extra = rng.integers(0, n_photos, n_faces - n_photos)
        self.face_photo = np.sort(np.concatenate([np.arange(n_photos), extra])) + 1
        first = np.searchsorted(self.face_photo, self.face_photo, side="left")
        self.face_ordinal = np.arange(n_faces) - first
        # Websites: 1% publish from US-IL, 39% elsewhere, 60% unknown; photos come from them with
        # a long-tailed popularity (a few big sites, many small ones).
        kind = rng.random(n_sites)
        self.site_region = np.full(n_sites, None, dtype=object)
        self.site_region[kind < 0.01] = IL
        other = (kind >= 0.01) & (kind < 0.40)
        self.site_region[other] = rng.choice(OTHER, other.sum())
        weights = 1.0 / (np.arange(n_sites) + 20.0) ** 0.9
        weights = rng.permutation(weights / weights.sum())
        # The change timed by the benchmark: 1% more sites (of the unknown ones) move to US-IL.
        unknown = np.flatnonzero(np.equal(self.site_region, None))
        self.toggle_sites = np.sort(rng.choice(unknown, max(1, n_sites // 100), replace=False))
        # Sources: one per photo, a second one for 10% of them (another site's copy).
        second = np.flatnonzero(rng.random(n_photos) < 0.10)
        self.src_photo = np.concatenate([np.arange(n_photos), second]) + 1
        self.src_index = np.concatenate([np.zeros(n_photos, int), np.ones(len(second), int)])
        self.src_site = rng.choice(n_sites, len(self.src_photo), p=weights)
        roll = rng.random(len(self.src_photo))
        self.src_uploader = np.full(len(self.src_photo), None, dtype=object)
        self.src_uploader[roll < 0.03] = IL
        spread = (roll >= 0.03) & (roll < 0.20)
        self.src_uploader[spread] = rng.choice(OTHER, spread.sum())
        # GPS: 2% of photos in Illinois, 10% elsewhere, the rest untagged.
        roll = rng.random(n_photos)
        self.photo_gps = np.full(n_photos, None, dtype=object)
        self.photo_gps[roll < 0.02] = IL
        spread = (roll >= 0.02) & (roll < 0.12)
        self.photo_gps[spread] = rng.choice(OTHER, spread.sum())
        # Opt-outs: one per 5,000 faces, each matched to 1-3 faces, 80% from Illinois residents.
        n_optouts = max(1, n_faces // 5_000)
        self.optout_region = np.where(rng.random(n_optouts) < 0.8, IL, "US-CA")
        per = rng.integers(1, 4, n_optouts)
        self.optout_faces = np.split(
            rng.choice(n_faces, per.sum(), replace=False) + 1, np.cumsum(per)[:-1]
        )
        self.seed = seed

    def toggle_for(self, fraction: float) -> np.ndarray:
        """Websites of unknown region that, moved to US-IL, move about ``fraction`` of faces."""
        blocked = self.blocked()
        free = np.bincount(self.face_photo[~blocked], minlength=self.n_photos + 1)
        weight = np.bincount(self.src_site, weights=free[self.src_photo], minlength=self.n_sites)
        unknown = np.flatnonzero(np.equal(self.site_region, None))
        rng = np.random.default_rng(self.seed + 10 + int(fraction * 1e6))
        order = rng.permutation(unknown)
        order = order[weight[order] > 0]
        reach = np.searchsorted(np.cumsum(weight[order]), fraction * self.n_faces) + 1
        return np.sort(order[:reach])

    def site_domain(self, i: int) -> str:
        return f"site{i:05d}.example.com"

    def site_row(self, i: int) -> dict:
        return {
            "domain": self.site_domain(i),
            "publisher": f"Publisher {i}",
            "publisher_region": self.site_region[i],
            "terms_url": f"https://{self.site_domain(i)}/terms",
            "terms_retrieved_at": EPOCH + timedelta(days=int(i % 300)),
        }

    def jurisdiction_rows(self) -> list[dict]:
        """Photo-level gps, uploader and publisher rows, and face-level subject rows."""
        rows = set()
        tagged = np.flatnonzero(np.not_equal(self.photo_gps, None))
        for p, region in zip(tagged + 1, self.photo_gps[tagged], strict=True):
            rows.add((int(p), 0, region, "gps"))
            if region.startswith("US-"):
                rows.add((int(p), 0, "US", "gps"))
        for p, region in zip(self.src_photo, self.src_uploader, strict=True):
            if region is not None:
                rows.add((int(p), 0, region, "uploader"))
        for p, site in zip(self.src_photo, self.src_site, strict=True):
            region = self.site_region[site]
            if region is not None:
                rows.add((int(p), 0, region, "publisher"))
        out = [
            {"photo_id": p, "face_id": f, "region": r, "signal": s, "ref": None}
            for p, f, r, s in sorted(rows)
        ]
        for oid, (region, faces) in enumerate(
            zip(self.optout_region, self.optout_faces, strict=True), 1
        ):
            for face in faces:
                out.append(
                    {
                        "photo_id": int(self.face_photo[face - 1]),
                        "face_id": int(face),
                        "region": str(region),
                        "signal": "subject",
                        "ref": f"optout:{oid}",
                    }
                )
        return out

    def blocked(self, extra_il_sites: np.ndarray | None = None) -> np.ndarray:
        """Per face, whether the default policy (block US-IL by every signal) blocks it."""
        il_photo = np.zeros(self.n_photos + 1, bool)
        il_photo[np.flatnonzero(self.photo_gps == IL) + 1] = True
        il_photo[self.src_photo[self.src_uploader == IL]] = True
        il_site = self.site_region == IL
        if extra_il_sites is not None:
            il_site = il_site.copy()
            il_site[extra_il_sites] = True
        il_photo[self.src_photo[il_site[self.src_site]]] = True
        blocked = il_photo[self.face_photo]
        for region, faces in zip(self.optout_region, self.optout_faces, strict=True):
            if region == IL:
                blocked[faces - 1] = True
        return blocked

    def expected_count(self, blocked: np.ndarray) -> dict:
        """Ground truth for the total of `discovery count --blocked -j US-IL`."""
        photos = np.unique(self.face_photo[blocked])
        urls = np.isin(self.src_photo, photos).sum()  # every source URL is distinct
        return {"photos": int(len(photos)), "faces": int(blocked.sum()), "source_urls": int(urls)}


def insert_batches(conn, table, rows_iter, label: str) -> int:
    started, total, batch = time.perf_counter(), 0, []
    for row in rows_iter:
        batch.append(row)
        if len(batch) >= BATCH:
            conn.execute(insert(table), batch)
            total += len(batch)
            batch = []
    if batch:
        conn.execute(insert(table), batch)
        total += len(batch)
    print(f"  {label:<14} {total:>10,} rows in {time.perf_counter() - started:6.1f} s")
    return total


def photo_rows(plan: Plan, run_id: int):
    rng = np.random.default_rng(plan.seed + 1)
    sizes = rng.integers(40_000, 4_000_000, plan.n_photos)
    widths = rng.choice([640, 1024, 1600, 2048, 4032], plan.n_photos)
    taken = rng.integers(0, 10 * 365 * 86400, plan.n_photos)
    added = EPOCH + timedelta(days=600)
    for i in range(plan.n_photos):
        pid = i + 1
        seed = f"faceledger-bench-photo-{plan.seed}-{pid}".encode()
        region = plan.photo_gps[i]
        lat = lon = None
        if region is not None:
            base_lat, base_lon = POINTS[region]
            lat, lon = base_lat + (pid % 97) * 0.001, base_lon + (pid % 89) * 0.001
        yield {
            "id": pid,
            "sha256": hashlib.sha256(seed).hexdigest(),
            "md5": hashlib.md5(seed).hexdigest(),
            "sha1": hashlib.sha1(seed).hexdigest(),
            "byte_size": int(sizes[i]),
            "width": int(widths[i]),
            "height": int(widths[i]) * 3 // 4,
            "format": "JPEG",
            "taken_at": datetime(2014, 1, 1, tzinfo=UTC) + timedelta(seconds=int(taken[i])),
            "gps_lat": lat,
            "gps_lon": lon,
            "stored_path": None,
            "first_run_id": run_id,
            "added_at": added,
        }


def source_rows(plan: Plan, run_id: int):
    added = EPOCH + timedelta(days=600)
    for n, (pid, k, site, region) in enumerate(
        zip(plan.src_photo, plan.src_index, plan.src_site, plan.src_uploader, strict=True)
    ):
        domain = plan.site_domain(int(site))
        url = f"https://img.{domain}/p/{pid}-{k}.jpg"
        yield {
            "photo_id": int(pid),
            "kind": "manifest",
            "locator": f"/data/manifests/batch-{n // 10_000:04d}.csv:{n % 10_000 + 2}",
            "source_url": url,
            "source_url_digest": url_digest(url),  # as every writer of photo_sources does
            "page_url": f"https://{domain}/post/{pid}",
            "website_id": int(site) + 1,
            "retrieved_at": EPOCH + timedelta(minutes=n % 500_000),
            "uploader_region": region,
            "caption": None,
            "run_id": run_id,
            "added_at": added,
        }


def face_rows(plan: Plan, blocked: np.ndarray):
    sealer = PlainSealer()
    rng = np.random.default_rng(plan.seed + 2)
    landmarks = [[410, 220], [380, 221], [300, 224], [330, 226], [356, 290]]
    for start in range(0, plan.n_faces, BATCH):
        stop = min(start + BATCH, plan.n_faces)
        # Spread like dlib vectors (norm ~1.48); values are irrelevant to policy, not their size.
        vectors = rng.standard_normal((stop - start, DIM), dtype=np.float32) * 0.13
        scores = rng.random(stop - start)
        for i in range(start, stop):
            collected = EPOCH + timedelta(seconds=i * 37 % (600 * 86400))
            yield {
                "id": i + 1,
                "photo_id": int(plan.face_photo[i]),
                "ordinal": int(plan.face_ordinal[i]),
                "box_top": 200,
                "box_right": 420,
                "box_bottom": 420,
                "box_left": 200,
                "landmarks": landmarks,
                "detector": "hog",
                "det_score": float(scores[i - start]),
                "vector": to_blob(vectors[i - start], sealer),
                "vector_key_id": None,
                "model": "dlib_face_recognition_resnet_model_v1",
                "model_version": "dlib-19.24/face_recognition_models-0.3.0",
                "vector_collected_at": collected,
                "last_interaction_at": collected,
                "blocked": bool(blocked[i]),
            }


def insert_catalog(lib: Library, plan: Plan, blocked: np.ndarray, run_id: int, now) -> None:
    """The synthetic rows by SQLAlchemy Core INSERT batches (the SQLite catalog)."""
    with lib.writing() as conn:
        insert_batches(
            conn,
            t.websites,
            ({"id": i + 1, **plan.site_row(i), "updated_at": now} for i in range(plan.n_sites)),
            "websites",
        )
        insert_batches(conn, t.photos, photo_rows(plan, run_id), "photos")
        insert_batches(conn, t.photo_sources, source_rows(plan, run_id), "photo_sources")
    with lib.writing() as conn:
        insert_batches(conn, t.faces, face_rows(plan, blocked), "faces")
    optouts, links = optout_rows(plan, now)
    with lib.writing() as conn:
        insert_batches(conn, t.jurisdictions, plan.jurisdiction_rows(), "jurisdictions")
        conn.execute(insert(t.optouts), optouts)
        conn.execute(insert(t.optout_faces), links)


def optout_rows(plan: Plan, now) -> tuple[list[dict], list[dict]]:
    optouts = [
        {"id": oid, "name": f"Person {oid}", "email": None, "region": str(region),
         "status": "matched", "submitted_by": "owner", "submitted_at": now}
        for oid, region in enumerate(plan.optout_region, 1)
    ]  # fmt: skip
    links = [
        {"optout_id": oid, "face_id": int(face), "distance": 0.3, "matched_at": now}
        for oid, faces in enumerate(plan.optout_faces, 1)
        for face in faces
    ]
    return optouts, links


def copy_rows(cur, table, rows_iter, label: str) -> int:
    """COPY the dict rows into ``table`` (psycopg's ``cursor.copy``, text format)."""
    started, total = time.perf_counter(), 0
    columns = None
    with contextlib.ExitStack() as stack:
        copy = None
        for row in rows_iter:
            if copy is None:
                columns = list(row)
                names = ", ".join(f'"{c}"' for c in columns)
                copy = stack.enter_context(cur.copy(f"COPY {table.name} ({names}) FROM STDIN"))
            copy.write_row([json.dumps(row[c]) if c == "landmarks" else row[c] for c in columns])
            total += 1
    print(f"  {label:<14} {total:>10,} rows in {time.perf_counter() - started:6.1f} s (COPY)")
    return total


def _vacuum(lib: Library) -> float:
    started = time.perf_counter()
    raw = lib.catalog.engine.raw_connection()
    try:
        raw.driver_connection.autocommit = True
        with raw.driver_connection.cursor() as cur:
            # Index-only scans need the visibility map; the planner needs statistics.
            cur.execute("VACUUM (ANALYZE)")
    finally:
        raw.close()
    took = time.perf_counter() - started
    print(f"  vacuum analyze {took:17.1f} s")
    return took


def vacuum_analyze(library: Path) -> float:
    lib = Library.open(settings_for(library))
    try:
        return _vacuum(lib)
    finally:
        lib.close()


def copy_catalog(lib: Library, plan: Plan, blocked: np.ndarray, run_id: int, now) -> None:
    """The synthetic rows by COPY (the PostgreSQL catalog); then sequences, VACUUM ANALYZE.

    The faces' change-log trigger is disabled during the COPY (10^7 trigger calls, each
    chaining a hash, would take most of the build) and the index files are removed afterwards,
    so any later index opened is rebuilt from the catalog rather than fed by the log.
    """
    optouts, links = optout_rows(plan, now)
    with lib.catalog.engine.begin() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute("ALTER TABLE faces DISABLE TRIGGER faces_placement")
            copy_rows(cur, t.websites,
                      ({"id": i + 1, **plan.site_row(i), "updated_at": now}
                       for i in range(plan.n_sites)),
                      "websites")  # fmt: skip
            copy_rows(cur, t.photos, photo_rows(plan, run_id), "photos")
            copy_rows(cur, t.photo_sources, source_rows(plan, run_id), "photo_sources")
            copy_rows(cur, t.faces, face_rows(plan, blocked), "faces")
            copy_rows(cur, t.jurisdictions, iter(plan.jurisdiction_rows()), "jurisdictions")
            copy_rows(cur, t.optouts, iter(optouts), "optouts")
            copy_rows(cur, t.optout_faces, iter(links), "optout_faces")
            cur.execute("ALTER TABLE faces ENABLE TRIGGER faces_placement")
            for table in ("websites", "photos", "photo_sources", "faces", "optouts"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))")  # fmt: skip
    _vacuum(lib)
    for path in (lib.root / "index").glob("*"):
        if path.is_file():
            path.unlink()


def build_library(root: Path, n_faces: int, seed: int) -> dict:
    """Create the cached synthetic library under ``root``; returns its description."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    library = root / "library"
    if CATALOG_URL:
        reset_database(CATALOG_URL)
    started = time.perf_counter()
    plan = Plan(n_faces, seed)
    blocked = plan.blocked()
    print(
        f"building {root.name}: {plan.n_photos:,} photos, {n_faces:,} faces, "
        f"{plan.n_sites:,} websites, {blocked.mean():.1%} blocked"
    )
    lib = Library.create(settings_for(library))
    lib.catalog.sealer = PlainSealer()
    now = datetime.now(UTC)
    timings = {}
    with lib.writing() as conn:
        uid = conn.execute(
            insert(t.users).values(name="custodian", role="custodian", created_at=now)
        ).inserted_primary_key[0]
        statement = "I, custodian, will use vault access only for legal duties."
        conn.execute(
            insert(t.attestations).values(
                user_id=uid,
                statement=statement,
                signed_at=now,
                sha256=hashlib.sha256(statement.encode()).hexdigest(),
            )
        )
        run_id = conn.execute(
            insert(t.ingest_runs).values(
                started_at=EPOCH,
                finished_at=EPOCH,
                status="finished",
                actor="owner",
                inputs=["synthetic (bench_policy.py)"],
                counters={"faces": n_faces},
            )
        ).inserted_primary_key[0]
    t0 = time.perf_counter()
    if CATALOG_URL:
        copy_catalog(lib, plan, blocked, run_id, now)
    else:
        insert_catalog(lib, plan, blocked, run_id, now)
    timings["insert_s"] = time.perf_counter() - t0
    for name in ("searchable", "vault") if not CATALOG_URL else ():  # PG: no vector index
        t0 = time.perf_counter()
        store = lib.index(name)
        store.rebuild()  # from the catalog, and saved (as `faceledger reindex`)
        timings[f"index_build_{name}_s"] = time.perf_counter() - t0
        info = store.describe()
        timings[f"index_{name}"] = {"faces": info["faces"], "plan": str(info["structure"])}
        print(
            f"  index {name:<10} {info['faces']:>10,} faces in "
            f"{timings[f'index_build_{name}_s']:6.1f} s  {info['structure']}"
        )
    lib.close()
    timings["build_total_s"] = time.perf_counter() - started
    changes = {}
    for label, fraction in CHANGES.items():
        sites = plan.toggle_for(fraction)
        slug = label.replace("%", "pct")
        site_csv(root / f"sites-more-il-{slug}.csv", plan, sites, IL)
        site_csv(root / f"sites-revert-{slug}.csv", plan, sites, None)
        changes[label] = {
            "sites": [plan.site_domain(int(i)) for i in sites],
            "expected_moved": int((plan.blocked(sites) & ~blocked).sum()),
            "more": f"sites-more-il-{slug}.csv",
            "revert": f"sites-revert-{slug}.csv",
        }
    meta = {
        "generator": GENERATOR,
        "faces": n_faces,
        "seed": seed,
        "catalog": "postgresql" if CATALOG_URL else "sqlite",
        "schema": head_revision(),
        "rows": {
            "photos": plan.n_photos,
            "faces": n_faces,
            "photo_sources": len(plan.src_photo),
            "websites": plan.n_sites,
            "websites_us_il": int((plan.site_region == IL).sum()),
            "jurisdictions": count_rows(library, t.jurisdictions),
            "optouts": len(plan.optout_region),
        },
        "blocked_faces": int(blocked.sum()),
        "expected_count": plan.expected_count(blocked),
        "changes": changes,
        "build": timings,
        "settled": False,
        "built_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": common.machine(),
        "load_average_after_build": os.getloadavg(),
    }
    if CATALOG_URL:
        meta["database_bytes"] = database_bytes(library)
        set_marker(library, meta)
    (root / "bench.json").write_text(json.dumps(meta, indent=2, default=common._json_default))
    return meta


def custodian_key(library: Path) -> str:
    """A new API key for the custodian (kept in bench.json, for the CLI runs)."""
    lib = Library.open(settings_for(library))
    try:
        return new_api_key(lib, lib.actor(None), "custodian")["api_key"]
    finally:
        lib.close()


def settle(root: Path, meta: dict) -> None:
    """The first apply after the build: a full re-decision (no earlier apply to compare with)
    that must move no face, which checks the generator against the product's decisions."""
    t0 = time.perf_counter()
    row = run_apply(root / "library", "settle", full=True)
    if row["blocked"] or row["unblocked"]:
        raise SystemExit(f"generator disagrees with policy apply: {row}")
    meta["build"]["settle_apply_s"] = time.perf_counter() - t0
    meta["build"]["settle_apply"] = row
    if CATALOG_URL:  # the settle rewrote the derived ties: statistics and visibility map anew
        meta["build"]["settle_vacuum_s"] = vacuum_analyze(root / "library")
    meta["settled"] = True
    (root / "bench.json").write_text(json.dumps(meta, indent=2, default=common._json_default))


MARKER = "bench_policy_build"


def database_bytes(library: Path) -> int:
    lib = Library.open(settings_for(library))
    try:
        with lib.catalog.engine.connect() as conn:
            return int(conn.scalar(text("SELECT pg_database_size(current_database())")))
    finally:
        lib.close()


def marker_value(meta: dict) -> str:
    return json.dumps({k: meta[k] for k in ("generator", "faces", "seed", "built_at")})


def set_marker(library: Path, meta: dict) -> None:
    """Record in the catalog which build it holds, so a rerun knows the database is this one."""
    lib = Library.open(settings_for(library))
    try:
        with lib.catalog.begin() as conn:
            lib.catalog.set_meta(conn, MARKER, marker_value(meta))
    finally:
        lib.close()


def read_marker(library: Path) -> str | None:
    lib = Library.open(settings_for(library))
    try:
        return lib.catalog.get_meta(MARKER)
    finally:
        lib.close()


def reset_database(url: str) -> None:
    """Drop and recreate the PostgreSQL database of ``url`` (a rebuild starts empty)."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def site_csv(path: Path, plan: Plan, sites: np.ndarray, region: str | None) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(plan.site_row(0)))
        writer.writeheader()
        for i in sites:
            row = plan.site_row(int(i))
            row["publisher_region"] = region or ""
            row["terms_retrieved_at"] = row["terms_retrieved_at"].isoformat()
            writer.writerow(row)


def count_rows(library: Path, table) -> int:
    lib = Library.open(settings_for(library))
    try:
        with lib.catalog.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(table))
    finally:
        lib.close()


def cached_library(root: Path, n_faces: int, seed: int, rebuild: bool) -> tuple[dict, bool]:
    """The cached library's description, building it when absent, stale or asked to.

    A catalog at an older schema revision is upgraded in place by ``Library.create`` (the
    migrations, as `faceledger init` runs them) rather than rebuilt: the rows stay valid.
    """
    meta_path = root / "bench.json"
    if not rebuild and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        fresh = (meta.get("generator"), meta.get("faces"), meta.get("seed")) == (
            GENERATOR,
            n_faces,
            seed,
        )
        if fresh:
            settings = settings_for(root / "library")
            try:
                if meta.get("schema") != head_revision():
                    started = time.perf_counter()
                    Library.create(settings).close()
                    print(
                        f"upgraded the cached catalog from schema {meta.get('schema')} to "
                        f"{head_revision()} in {time.perf_counter() - started:.1f} s"
                    )
                    meta["schema"] = head_revision()
                    meta_path.write_text(json.dumps(meta, indent=2))
                Library.open(settings).close()
                if CATALOG_URL and read_marker(root / "library") != marker_value(meta):
                    raise FaceledgerError("the database holds another build (no marker)")
                return meta, True
            except FaceledgerError as exc:
                print(f"cached library unusable ({exc}); rebuilding")
        else:
            print("cached library is from another generator, size or seed; rebuilding")
    return build_library(root, n_faces, seed), False


# -- timing ---------------------------------------------------------------------------------------
#: Methods timed inside one apply (inclusive times; a nested one is also inside its caller).
PHASES = {
    "decider": (Decider, "for_library"),
    "reevaluate": (Decider, "reevaluate"),
    "refresh_derived": (Decider, "_refresh_derived"),
    "sync_indexes": (Library, "sync_indexes"),
    "index_open": (Library, "index"),
    "index_sync": (Library, "_sync"),
    "index_save": (Library, "_save"),
}


@contextlib.contextmanager
def phase_timer():
    """Patch the PHASES methods to add up their wall time while the block runs."""
    spent: dict[str, float] = defaultdict(float)
    saved = []

    def timed(label, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        return wrapper

    for label, (owner, name) in PHASES.items():
        raw = owner.__dict__.get(name)
        if raw is None:  # a phase the code no longer has (renamed since): not timed
            continue
        if isinstance(raw, classmethod):
            setattr(owner, name, classmethod(timed(label, raw.__func__)))
        else:
            setattr(owner, name, timed(label, raw))
        saved.append((owner, name, raw))
    try:
        yield spent
    finally:
        for owner, name, raw in saved:
            setattr(owner, name, raw)


def run_apply(
    library: Path, label: str, profile: cProfile.Profile | None = None, full: bool = False
) -> dict:
    """One `policy apply` in this process, on a freshly opened library (as the CLI opens it)."""
    started = time.perf_counter()
    lib = Library.open(settings_for(library))
    try:
        owner = lib.actor(None)
        with phase_timer() as spent:
            t0 = time.perf_counter()
            if profile is not None:
                profile.enable()
            try:
                result = apply_policy(lib, owner, full=full)
            finally:
                if profile is not None:
                    profile.disable()
            apply_s = time.perf_counter() - t0
    finally:
        lib.close()
    phases = {k: round(v, 3) for k, v in spent.items()}
    row = {
        "step": label,
        "via": "library",
        "s": apply_s,
        "with_open_s": time.perf_counter() - started,
        "catalog_s": apply_s - spent.get("sync_indexes", 0.0),
        "blocked": result["blocked"],
        "unblocked": result["unblocked"],
        "photos_redecided": result.get("photos_redecided"),
        "full": result.get("full"),
        "phases": phases,
        "load_average": os.getloadavg(),
    }
    print(
        f"  apply {label:<11} {apply_s:7.2f} s  (catalog {row['catalog_s']:6.2f} s, "
        f"indexes {phases.get('sync_indexes', 0):6.2f} s)  blocked {result['blocked']:,}, "
        f"unblocked {result['unblocked']:,}"
    )
    return row


def cli_command() -> list[str]:
    """The faceledger CLI of this checkout: its .venv's, else this Python's ``-m faceledger``
    (a worktree without a .venv then runs its own source through PYTHONPATH)."""
    if FACELEDGER_CLI.exists():
        return [str(FACELEDGER_CLI)]
    return [sys.executable, "-c", "from faceledger.cli import app; app()"]


def cli(library: Path, *args: str, user: str | None = None) -> tuple[float, dict]:
    """Run the faceledger CLI as a separate process; (wall seconds, parsed --json output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    if CATALOG_URL:
        env["FACELEDGER_DATABASE_URL"] = CATALOG_URL
    if user:
        env["FACELEDGER_API_KEY"] = CUSTODIAN_KEY
    who = ["--as", user] if user else []
    command = cli_command() + ["--library", str(library)] + who + list(args)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return took, json.loads(done.stdout)


def import_file(library: Path, path: Path) -> float:
    lib = Library.open(settings_for(library))
    try:
        started = time.perf_counter()
        import_sites(lib, lib.actor(None), path)
        return time.perf_counter() - started
    finally:
        lib.close()


def ensure_baseline(root: Path, meta: dict) -> None:
    """Undo a change left behind by an interrupted run (sites moved to US-IL not put back)."""
    library = root / "library"
    lib = Library.open(settings_for(library))
    dirty = []
    try:
        with lib.catalog.engine.connect() as conn:
            for change in meta["changes"].values():
                if conn.scalar(
                    select(func.count())
                    .select_from(t.websites)
                    .where(
                        t.websites.c.domain.in_(change["sites"]),
                        t.websites.c.publisher_region.is_not(None),
                    )
                ):
                    dirty.append(change)
    finally:
        lib.close()
    for change in dirty:
        print("restoring the baseline left by an interrupted run")
        import_file(library, root / change["revert"])
    if dirty:
        run_apply(library, "restore")


def time_count(library: Path, meta: dict, reps: int, cli_reps: int) -> dict:
    lib = Library.open(settings_for(library))
    try:
        custodian = lib.actor("custodian")
        times, loads, result = [], [], None
        for _ in range(reps):
            started = time.perf_counter()
            result = answer(lib, custodian, "count", blocked=True, jurisdiction=IL)
            times.append(time.perf_counter() - started)
            loads.append(os.getloadavg()[0])  # the machine is shared: each run's 1-minute load
    finally:
        lib.close()
    # The floor of any CLI command: starting Python and importing the CLI (no library opened).
    startup = []
    for _ in range(cli_reps):
        started = time.perf_counter()
        subprocess.run(cli_command() + ["--help"], capture_output=True, check=True)
        startup.append(time.perf_counter() - started)
    cli_times, cli_result = [], None
    for _ in range(cli_reps):
        took, cli_result = cli(
            library, "discovery", "count", "--blocked", "-j", IL, "--json", user="custodian"
        )
        cli_times.append(took)
    expected = meta["expected_count"]
    if result["total"] != expected or (cli_result and cli_result["total"] != expected):
        raise SystemExit(f"count {result['total']} differs from the ground truth {expected}")
    p99 = float(np.percentile(times, 99)) if times else None
    print(
        f"  count library  median {median(times):.3f} s  p99 {p99:.3f} s  (runs: "
        f"{', '.join(f'{s:.3f}' for s in times)}; first is the coldest; 1-min load "
        f"{min(loads):.1f}-{max(loads):.1f})"
    )
    if cli_times:
        print(f"  CLI startup    median {median(startup):.3f} s  (faceledger --help)")
        print(
            f"  count CLI      median {median(cli_times):.3f} s  (runs: "
            f"{', '.join(f'{s:.3f}' for s in cli_times)})"
        )
    return {
        "library_s": times,
        "library_median_s": median(times),
        "library_p99_s": p99,
        "library_first_s": times[0] if times else None,
        "library_spread_s": [min(times), max(times)] if times else None,
        "load_average_1m": loads,
        "cli_s": cli_times,
        "cli_median_s": median(cli_times) if cli_times else None,
        "cli_startup_s": startup,
        "cli_startup_median_s": median(startup) if startup else None,
        "result": result,
        "matches_ground_truth": True,
    }


def time_apply(root: Path, meta: dict, reps: int, via_cli: bool) -> dict:
    library = root / "library"
    rows, imports = [], []
    for label, change in meta["changes"].items():
        more, revert = root / change["more"], root / change["revert"]
        for rep in range(reps):
            print(f" {label} of faces moved: repetition {rep + 1}/{reps}")
            imports.append(import_file(library, more))
            rows.append(run_apply(library, "change") | {"rep": rep, "change": label})
            rows.append(run_apply(library, "idempotent") | {"rep": rep, "change": label})
            imports.append(import_file(library, revert))
            rows.append(run_apply(library, "revert") | {"rep": rep, "change": label})
    cli_rows = []
    if via_cli:
        label, change = next(iter(meta["changes"].items()))
        print(f" CLI end to end (faceledger policy apply --json), {label}")
        import_file(library, root / change["more"])
        for step, file in (("change", None), ("idempotent", root / change["revert"]),
                           ("revert", None)):  # fmt: skip
            took, result = cli(library, "policy", "apply", "--json")
            cli_rows.append({"step": step, "via": "cli", "s": took, "change": label, **result})
            print(
                f"  apply {step:<11} {took:7.2f} s  blocked {result['blocked']:,}, "
                f"unblocked {result['unblocked']:,}"
            )
            if file is not None:
                import_file(library, file)
    for row in rows + cli_rows:
        want = meta["changes"][row["change"]]["expected_moved"]
        moved = {"change": (want, 0), "idempotent": (0, 0), "revert": (0, want)}[row["step"]]
        if (row["blocked"], row["unblocked"]) != moved:
            raise SystemExit(f"apply {row['step']} moved {row} faces; expected {moved}")
    summary = {}
    for label in meta["changes"]:
        for step in ("change", "idempotent", "revert"):
            mine = [r for r in rows if r["step"] == step and r["change"] == label]
            summary[f"{label} {step}"] = {
                "median_s": median([r["s"] for r in mine]),
                "runs_s": [r["s"] for r in mine],
                "catalog_median_s": median([r["catalog_s"] for r in mine]),
                "indexes_median_s": median([r["phases"].get("sync_indexes", 0.0) for r in mine]),
                "faces_moved": mine[0]["blocked"] + mine[0]["unblocked"],
                "photos_redecided": mine[0]["photos_redecided"],
                "load_average": [r["load_average"] for r in mine],
                "phases_median": {k: median([r["phases"].get(k, 0.0) for r in mine])
                                  for k in PHASES},
            }  # fmt: skip
    return {
        "rows": rows,
        "cli_rows": cli_rows,
        "summary": summary,
        "sites_import_s": imports,
    }


def profile_apply(root: Path, meta: dict, top: int) -> dict:
    """cProfile one change apply (then put the sites back); the top functions by cumulative time."""
    library = root / "library"
    change = next(iter(meta["changes"].values()))
    import_file(library, root / change["more"])
    profile = cProfile.Profile()
    row = run_apply(library, "profiled", profile=profile)
    import_file(library, root / change["revert"])
    run_apply(library, "revert")
    text = io.StringIO()
    stats = pstats.Stats(profile, stream=text).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top // 2)
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    path = common.RESULTS / "policy-profile-latest.txt"
    path.write_text(text.getvalue())
    print(f"  profile written to {path}")
    return {"apply": row, "file": str(path), "top": text.getvalue().splitlines()[: top + 12]}


# -- report ---------------------------------------------------------------------------------------
def summary_table(report: dict) -> str:
    meta, count, apply = report["library"], report["count"], report["apply"]
    build = meta["build"]
    lines = [
        "| measure | wall (median) | target | |",
        "|---|---:|---:|---|",
        f"| `discovery count --blocked -j US-IL`, library call, p50 of {len(count['library_s'])}"
        f" (p99; spread; 1-min load) | {count['library_median_s']:.3f} s "
        f"({count['library_p99_s']:.3f}; {count['library_spread_s'][0]:.3f}–"
        f"{count['library_spread_s'][1]:.3f}; {min(count['load_average_1m']):.1f}–"
        f"{max(count['load_average_1m']):.1f}) | < {TARGET_COUNT_S:.0f} s | "
        f"{'✓' if count['library_median_s'] < TARGET_COUNT_S else '✗'} |",
    ]
    if count["cli_median_s"] is not None:
        lines.append(
            f"| `discovery count --blocked -j US-IL --json`, CLI process | "
            f"{count['cli_median_s']:.3f} s | < {TARGET_COUNT_S:.0f} s | "
            f"{'✓' if count['cli_median_s'] < TARGET_COUNT_S else '✗'} |"
        )
    if count["cli_startup_median_s"] is not None:
        lines.append(
            f"| of which CLI start (`faceledger --help`: Python + imports) | "
            f"{count['cli_startup_median_s']:.3f} s | | |"
        )
    dates = report.get("vector_dates")
    if dates:
        lines.append(
            f"| `discovery vector-dates --blocked -j US-IL --json`, CLI, {dates['rows']:,} rows "
            f"streamed: first row / all rows / peak RSS | {dates['first_row_s']:.2f} s / "
            f"{dates['total_s']:.1f} s / {dates['peak_rss_mb']:.0f} MB | | |"
        )
    names = {
        "change": "`policy apply` after a sites change",
        "idempotent": "`policy apply` again (idempotent)",
        "revert": "`policy apply` after reverting the change",
    }
    for key, s in apply["summary"].items():
        label, step = key.rsplit(" ", 1)
        ok = "✓" if s["median_s"] < TARGET_APPLY_S else "✗"
        lines.append(
            f"| {names[step]} ({label} of faces): {s['faces_moved']:,} faces moved, "
            f"{s['photos_redecided']:,} photos re-decided | {s['median_s']:.2f} s "
            f"(catalog {s['catalog_median_s']:.2f} s + indexes {s['indexes_median_s']:.2f} s) "
            f"| < {TARGET_APPLY_S:.0f} s | {ok} |"
        )
    for row in apply["cli_rows"]:
        ok = "✓" if row["s"] < TARGET_APPLY_S else "✗"
        lines.append(
            f"| {names[row['step']]} ({row['change']}), CLI process (1 run) | {row['s']:.1f} s | "
            f"< {TARGET_APPLY_S:.0f} s | {ok} |"
        )
    settle_row = build.get("settle_apply")
    if settle_row:
        lines.append(
            f"| `policy apply --full` (every photo re-decided, 0 moved) | "
            f"{settle_row['s']:.1f} s | | |"
        )
    cached = " (first build, cached since)" if report["cached"] else ""
    lines.append(
        f"| one-off: bulk load of the synthetic catalog{cached} | {build['insert_s']:.0f} s | | |"
    )
    if meta.get("database_bytes"):
        lines.append(f"| database size | {meta['database_bytes'] / 2**30:.2f} GiB | | |")
    for name in ("searchable", "vault"):
        info = build.get(f"index_{name}")
        if info is None:
            continue
        lines.append(
            f"| one-off: first `Library.index('{name}')`, {info['faces']:,} faces, "
            f"{info['plan']}{cached} | {build[f'index_build_{name}_s']:.0f} s | | |"
        )
    return "\n".join(lines)


def time_vector_dates(library: Path, meta: dict, reps: int) -> dict:
    """`discovery vector-dates --blocked -j US-IL --json` as a CLI process whose JSON lines are
    read as they come: time to the first row, to the last, and the process's peak RSS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    if CATALOG_URL:
        env["FACELEDGER_DATABASE_URL"] = CATALOG_URL
    env["FACELEDGER_API_KEY"] = CUSTODIAN_KEY
    exe = cli_command()
    runs = []
    for _ in range(reps):
        command = exe + ["--library", str(library), "--as", "custodian", "discovery",
                         "vector-dates", "--blocked", "-j", IL, "--json"]  # fmt: skip
        # Through a small wrapper that reports its child's peak RSS: a child forked from this
        # (large) process would count the pages it shared with it before exec.
        wrapper = [sys.executable, "-c", "import resource, subprocess, sys; "
                   "code = subprocess.call(sys.argv[1:]); "
                   "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
                   "file=sys.stderr); sys.exit(code)"]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.Popen(wrapper + command, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)  # fmt: skip
        assert proc.stdout is not None
        first, rows = None, 0
        for line in proc.stdout:
            if first is None:
                first = time.perf_counter() - started
            rows += line.lstrip().startswith(b"{")
        total = time.perf_counter() - started
        assert proc.stderr is not None
        err = proc.stderr.read().decode().strip().splitlines()
        proc.wait()
        if proc.returncode != 0:
            raise SystemExit(f"vector-dates failed ({proc.returncode}): {err}")
        peak = int(err[-1]) / 1024  # ru_maxrss in KiB
        runs.append({"first_row_s": first or total, "total_s": total, "rows": rows,
                     "peak_rss_mb": peak, "load_average": os.getloadavg()})  # fmt: skip
        print(f"  vector-dates   {rows:,} rows: first {first or total:.2f} s, all {total:.1f} s, "
              f"peak RSS {peak:.0f} MB")  # fmt: skip
    if runs[0]["rows"] != meta["expected_count"]["faces"]:
        raise SystemExit(f"vector-dates gave {runs[0]['rows']} rows, expected "
                         f"{meta['expected_count']['faces']}")  # fmt: skip
    return {"runs": runs, **{k: median([r[k] for r in runs])
                            for k in ("first_row_s", "total_s", "peak_rss_mb")},
            "rows": runs[0]["rows"]}  # fmt: skip


def main() -> None:
    global CATALOG_URL, CUSTODIAN_KEY
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", default="1e6", help="catalog size, e.g. 1e5 or 1e6")
    parser.add_argument("--catalog-url", default="",
                        help="a PostgreSQL URL for the catalog (its database is dropped and "
                             "recreated on a build); default SQLite in the library")  # fmt: skip
    parser.add_argument("--reps", type=int, default=3, help="change/idempotent/revert rounds")
    parser.add_argument("--count-reps", type=int, default=7, help="library count calls")
    parser.add_argument("--cli-reps", type=int, default=3, help="CLI count runs (0: skip)")
    parser.add_argument("--dates-reps", type=int, default=1, help="vector-dates CLI runs (0: skip)")
    parser.add_argument("--no-cli-apply", action="store_true", help="skip the CLI apply round")
    parser.add_argument("--profile", action="store_true", help="cProfile one change apply")
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached library")
    parser.add_argument("--build-only", action="store_true", help="build (or find) and stop")
    parser.add_argument("--pg-dump", action="store_true",
                        help="also keep a pg_dump -Fc of the built catalog under bench/cache/")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    CATALOG_URL = args.catalog_url
    n_faces = int(float(args.faces))
    kind = "pg-" if CATALOG_URL else ""
    root = common.CACHE / f"policy-{kind}{size_label(n_faces)}"
    if CATALOG_URL:
        # The vector indexes at 10^7 are another benchmark's (bench_scale.py): here policy
        # apply's catalog work is timed alone, and no index is opened, built or synced.
        Library.sync_indexes = lambda self, force=False: None
    started = time.perf_counter()
    meta, cached = cached_library(root, n_faces, args.seed, args.rebuild)
    if CATALOG_URL and args.pg_dump and not (root / "catalog.dump").exists():
        t0 = time.perf_counter()
        subprocess.run(["pg_dump", "-Fc", "-f", str(root / "catalog.dump"),
                        make_url(CATALOG_URL).render_as_string(hide_password=False)
                        .replace("+psycopg", "")], check=True)  # fmt: skip
        print(f"pg_dump -Fc in {time.perf_counter() - t0:.0f} s")
    if args.build_only:
        print(json.dumps(meta["build"], indent=2, default=common._json_default))
        return
    if not meta.get("custodian_key"):
        meta["custodian_key"] = custodian_key(root / "library")
        (root / "bench.json").write_text(json.dumps(meta, indent=2, default=common._json_default))
    CUSTODIAN_KEY = meta["custodian_key"]
    if not meta.get("settled"):
        print("settle: the first policy apply, a full re-decision")
        settle(root, meta)
    ensure_baseline(root, meta)
    print(
        f"library {root / 'library'}: {meta['rows']['faces']:,} faces, "
        f"{meta['blocked_faces']:,} blocked; changes move "
        + ", ".join(f"{c['expected_moved']:,} ({k})" for k, c in meta["changes"].items())
    )
    loads = {"start": os.getloadavg()}
    print("discovery count --blocked -j US-IL")
    count = time_count(root / "library", meta, args.count_reps, args.cli_reps)
    loads["after_count"] = os.getloadavg()
    dates = None
    if args.dates_reps:
        print("discovery vector-dates --blocked -j US-IL (CLI, streamed)")
        dates = time_vector_dates(root / "library", meta, args.dates_reps)
        loads["after_vector_dates"] = os.getloadavg()
    apply = {"rows": [], "cli_rows": [], "summary": {}, "sites_import_s": []}
    if args.reps:
        print("policy apply")
        apply = time_apply(root, meta, args.reps, via_cli=not args.no_cli_apply)
    report = {
        "benchmark": "policy",
        "machine": common.machine(),
        "args": vars(args),
        "library": meta,
        "cached": cached,
        "count": count,
        "vector_dates": dates,
        "apply": apply,
        "targets": {"count_s": TARGET_COUNT_S, "apply_s": TARGET_APPLY_S},
    }
    if args.profile:
        print("profile")
        report["profile"] = profile_apply(root, meta, top=40)
    loads["end"] = os.getloadavg()
    report["load_average"] = loads
    report["total_s"] = time.perf_counter() - started
    report["table_md"] = summary_table(report)
    path = common.write_results("policy", report)
    print("\n" + report["table_md"])
    print(f"\ntotal {report['total_s']:.0f} s; results in {path}")


if __name__ == "__main__":
    main()
