"""`discovery count --blocked -j REGION` from the vault's kept counts (migration 0012), against
the statement that counts the ties themselves (``tie_counts``, the method before it), measured
in the same run on one catalog, in alternating turns. Every turn checks that both give the
same figures.

1. ``fold``: the first count after an upgrade (or after ``--recount``), which folds the whole
   vault into the kept counts;
2. ``count``: ``--reps`` library calls (``answer``: authorisation, the count, the audit entry)
   and as many runs of the statement;
3. ``moves``: for each K in ``--moves``, K vault faces are moved out of the vault and back
   (``UPDATE faces SET blocked``), each followed by a count, which folds those K changes;
4. ``writers``: what the triggers cost a writer: ``--writer-rows`` ties and provenance rows
   inserted by ``executemany`` with the triggers on and off, in a transaction rolled back.

With ``--rebuild N`` it measures only ``discovery recount`` (``answers.recount``: the kept
counts forgotten, every vault photo marked and folded in one transaction), N times, with the
progress callback the CLI's bar uses: each run's seconds, its ticks, and when the first came.

    PYTHONPATH=src:bench .venv/bin/python bench/bench_vault_counts.py \\
        --catalog-url "postgresql+psycopg://postgres@/pgcount_1e7?host=/tmp/mypg&port=54330"

The catalog is any faceledger catalog (``bench_policy.py --build-only`` builds one of 10^7
faces); it is upgraded to the newest schema first. Moves and writes are undone.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime

import common
from sqlalchemy import func, insert, select, text, update

from faceledger.app.answers import answer, recount
from faceledger.app.library import Library
from faceledger.catalog import schema as t
from faceledger.catalog import vault_counts
from faceledger.catalog.discovery import Selection, tie_counts
from faceledger.catalog.store import Catalog
from faceledger.config import Settings
from faceledger.policy import SIGNALS


def _timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _spread(values: list[float]) -> dict:
    return {"p50_s": statistics.median(values), "min_s": min(values), "max_s": max(values),
            "runs_s": values}  # fmt: skip


def _figures(result: dict) -> dict:
    return {"total": result["total"], "by_signal": result["by_signal"]}


def main() -> None:
    """Run the four measures and write bench/results/vault-counts-*.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog-url", required=True)
    parser.add_argument("--region", default="US-IL")
    parser.add_argument("--actor", default="custodian", help="a custodian with an attestation")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--moves", default="1000,10000,100000")
    parser.add_argument("--writer-rows", type=int, default=100_000)
    parser.add_argument("--recount", action="store_true", help="time a fold of the whole vault")
    parser.add_argument("--rebuild", type=int, default=0, metavar="N",
                        help="only time N runs of `discovery recount`, with its progress")
    args = parser.parse_args()

    started = time.perf_counter()
    Catalog(args.catalog_url).create()
    upgrade_s = time.perf_counter() - started
    env = {"FACELEDGER_DATABASE_URL": args.catalog_url}
    lib = Library.open(Settings.from_env(environ=env, library=tempfile.mkdtemp()))
    engine = lib.catalog.engine
    actor = lib.actor(args.actor)
    selection = Selection(True, args.region, None, True, lib.policy.blocking)
    report: dict = {"benchmark": "vault-counts", "machine": common.machine(), "args": vars(args),
                    "upgrade_s": upgrade_s}  # fmt: skip

    def library_count() -> dict:
        return answer(lib, actor, "count", blocked=True, jurisdiction=args.region)

    def statement() -> dict:
        with engine.begin() as conn:
            return tie_counts(conn, selection, list(SIGNALS))

    def pending() -> int:
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(t.vault_count_pending))

    if args.rebuild:
        report["rebuild"] = [_rebuild(lib, actor) for _ in range(args.rebuild)]
        lib.close()
        print(f"results in {common.write_results('vault-counts-rebuild', report)}")
        return

    # 1. the whole vault folded in
    if args.recount:
        with engine.begin() as conn:
            vault_counts.recount(conn)
    marks = pending()
    fold_s, first = _timed(library_count)
    report["fold"] = {"pending_marks": marks, "seconds": fold_s}
    print(f"fold of {marks:,} pending marks (first count): {fold_s:.2f} s")

    # 2. the count, in alternating turns with the statement
    kept_s, statement_s = [], []
    for _ in range(args.reps):
        took, kept = _timed(library_count)
        kept_s.append(took)
        took, peer = _timed(statement)
        statement_s.append(took)
        if _figures(kept) != peer:
            raise SystemExit(f"kept counts {_figures(kept)} differ from the statement's {peer}")
    report["count"] = {"kept": _spread(kept_s), "statement": _spread(statement_s),
                       "ratio_p50": statistics.median(statement_s) / statistics.median(kept_s),
                       "result": _figures(first), "load_1m": os.getloadavg()[0]}  # fmt: skip
    print(f"count: kept {statistics.median(kept_s) * 1e3:.1f} ms p50 "
          f"({min(kept_s) * 1e3:.1f}-{max(kept_s) * 1e3:.1f}); statement "
          f"{statistics.median(statement_s):.2f} s ({min(statement_s):.2f}-"
          f"{max(statement_s):.2f}); {report['count']['ratio_p50']:.0f}x")  # fmt: skip

    # 3. moves out of the vault and back, each folded by the next count
    report["moves"] = []
    for k in [int(float(v)) for v in args.moves.split(",") if v]:
        with engine.connect() as conn:
            ids = conn.scalars(select(t.faces.c.id).where(t.faces.c.status == "active",
                                                          t.faces.c.blocked)
                               .order_by(t.faces.c.id).limit(k)).all()  # fmt: skip
        row = {"faces": len(ids)}
        for label, blocked in (("out", False), ("back", True)):
            took, _ = _timed(lambda b=blocked, chosen=ids: _move(engine, chosen, b))
            row[f"move_{label}_s"] = took
            row[f"pending_{label}"] = pending()
            took, kept = _timed(library_count)
            row[f"count_after_{label}_s"] = took
            if label == "out":
                if _figures(kept) != statement():
                    raise SystemExit("after the moves the kept counts differ from the statement")
                row["faces_after_out"] = kept["total"]["faces"]
            elif _figures(kept) != _figures(first):
                raise SystemExit("after moving the faces back the counts differ from before")
        report["moves"].append(row)
        print(f"moves of {len(ids):,} faces: count after {row['count_after_out_s']:.2f} s "
              f"(out), {row['count_after_back_s']:.2f} s (back); the UPDATEs "
              f"{row['move_out_s']:.1f} s, {row['move_back_s']:.1f} s")  # fmt: skip

    # 4. what the triggers add to a writer
    if args.writer_rows:
        report["writers"] = _writer_overhead(engine, args.writer_rows)
    report["total_s"] = time.perf_counter() - started
    lib.close()
    print(f"results in {common.write_results('vault-counts', report)}")


def _rebuild(lib: Library, actor) -> dict:
    """One ``discovery recount`` as the library call, with the CLI's progress callback."""
    ticks: list[tuple[float, int, int]] = []
    started = time.perf_counter()
    done = recount(lib, actor, on_progress=lambda n, total: ticks.append(
        (time.perf_counter() - started, n, total)))  # fmt: skip
    seconds = time.perf_counter() - started
    gaps = [b[0] - a[0] for a, b in zip(ticks[1:], ticks[2:], strict=False)]
    row = {"seconds": seconds, "vault_photos": done["vault_photos"], "ticks": len(ticks),
           "first_tick_s": ticks[0][0], "last": ticks[-1][1:],
           "gap_p50_s": statistics.median(gaps) if gaps else None,
           "load_1m": os.getloadavg()[0]}  # fmt: skip
    print(f"recount of {row['vault_photos']:,} vault photos: {seconds:.1f} s, {len(ticks)} "
          f"ticks, the first at {row['first_tick_s']:.1f} s, then every "
          f"{row['gap_p50_s'] or 0:.2f} s (p50)")  # fmt: skip
    return row


def _move(engine, ids: list[int], blocked: bool) -> None:
    with engine.begin() as conn:
        for start in range(0, len(ids), 10_000):
            conn.execute(update(t.faces).where(t.faces.c.id.in_(ids[start:start + 10_000]))
                         .values(blocked=blocked))  # fmt: skip


def _writer_overhead(engine, rows: int) -> dict:
    """Seconds to insert ``rows`` ties and ``rows`` provenance rows, triggers on and off,
    alternating, each in a transaction rolled back (PostgreSQL: ALTER TABLE ... DISABLE
    TRIGGER; SQLite cannot disable one, so only the 'on' figure is taken there)."""
    now = datetime.now(UTC)
    with engine.connect() as conn:
        photo_ids = conn.scalars(select(t.photos.c.id).order_by(t.photos.c.id).limit(rows)).all()
    ties = [{"photo_id": p, "face_id": 0, "region": "ZZ-BENCH", "signal": "gps"}
            for p in photo_ids]  # fmt: skip
    sources = [{"photo_id": p, "kind": "manifest", "locator": f"bench-{p}", "added_at": now,
                "source_url": f"https://bench.example/{p}",
                "source_url_digest": hashlib.sha256(f"https://bench.example/{p}".encode())
                .digest()} for p in photo_ids]  # fmt: skip
    postgres = engine.dialect.name == "postgresql"
    out: dict = {"rows": len(photo_ids), "on_s": [], "off_s": []}
    for _turn in range(3):
        for state in ("on", "off") if postgres else ("on",):
            with engine.connect() as conn:
                tx = conn.begin()
                if state == "off":
                    conn.execute(text("ALTER TABLE jurisdictions "
                                      "DISABLE TRIGGER vault_counts_ties"))
                    conn.execute(text("ALTER TABLE photo_sources DISABLE TRIGGER "
                                      "vault_counts_sources_insert"))  # fmt: skip
                started = time.perf_counter()
                conn.execute(insert(t.jurisdictions), ties)
                conn.execute(insert(t.photo_sources), sources)
                out[f"{state}_s"].append(time.perf_counter() - started)
                tx.rollback()
    for state in ("on", "off"):
        if out[f"{state}_s"]:
            print(f"writers, triggers {state}: {statistics.median(out[f'{state}_s']):.2f} s for "
                  f"{len(photo_ids):,} ties + {len(photo_ids):,} provenance rows "
                  f"(runs {', '.join(f'{v:.2f}' for v in out[f'{state}_s'])})")
    if out["off_s"]:
        out["ratio_p50"] = statistics.median(out["on_s"]) / statistics.median(out["off_s"])
        print(f"  the triggers cost x{out['ratio_p50']:.2f}")
    return out


if __name__ == "__main__":
    main()
