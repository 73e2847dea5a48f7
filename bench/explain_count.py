"""`EXPLAIN (ANALYZE, BUFFERS)` of `discovery count --blocked -j US-IL` on a PostgreSQL catalog.

The statement is the one ``catalog.discovery.count`` runs (caught on its way to the database,
with any ``SET LOCAL`` it issues first), explained in the same transaction; then the count is
timed as a library call. ``--set NAME=VALUE`` adds session settings before it, to try one.

    PYTHONPATH=src:bench .venv/bin/python bench/explain_count.py \\
        --catalog-url "postgresql+psycopg://postgres@/pgscale_1e7?host=/tmp/mypg&port=54330"
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from sqlalchemy import text

from faceledger.app.library import Library
from faceledger.catalog.discovery import Selection, count
from faceledger.config import Settings

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Print the plan, then the library-call times of the count."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalog-url", required=True)
    parser.add_argument("--library", type=Path, default=HERE / "cache/policy-pg-1e7/library")
    parser.add_argument("--region", default="US-IL")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE, SET first")
    args = parser.parse_args()
    env = {"FACELEDGER_DATABASE_URL": args.catalog_url}
    lib = Library.open(Settings.from_env(environ=env, library=args.library))
    engine = lib.catalog.engine
    selection = Selection(True, args.region, None, True, lib.policy.blocking)
    with engine.connect() as conn:
        for setting in args.set:
            name, value = setting.split("=", 1)
            conn.execute(text(f"SET {name} = '{value}'"))
        original = conn.execute

        def explain(statement, *a, **kw):
            if "per_face" in str(statement):
                sql = statement.compile(dialect=conn.dialect,
                                        compile_kwargs={"literal_binds": True})
                for (line,) in original(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")):
                    print(line)
            return original(statement, *a, **kw)

        conn.execute = explain
        count(conn, selection)
        conn.execute = original
        conn.rollback()
        times = []
        for _ in range(args.reps):
            for setting in args.set:
                name, value = setting.split("=", 1)
                conn.execute(text(f"SET {name} = '{value}'"))
            started = time.perf_counter()
            result = count(conn, selection)
            times.append(time.perf_counter() - started)
            conn.rollback()
    lib.close()
    print(result["total"])
    runs = ", ".join(f"{s:.3f}" for s in times)
    print(f"count: p50 {statistics.median(times):.3f} s, runs {runs}, "
          f"1-min load {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
