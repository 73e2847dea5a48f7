"""CLI for the discovery answers: nexus, usage, compliance (in the `discovery` group)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer

from faceledger.cli.common import (
    JsonOpt,
    PhotosFile,
    cli_errors,
    emit,
    open_library,
    out,
    print_table,
)

__all__ = ["register"]

Since = Annotated[str | None, typer.Option(
    "--since", help="Start of the period (ISO 8601, e.g. 2026-01-31 or 2026-01-31T12:00:00+00:00;"
    " no zone means UTC). Default: the beginning.")]  # fmt: skip
Until = Annotated[str | None, typer.Option(
    "--until", help="End of the period (ISO 8601; no zone means UTC). Default: now.")]  # fmt: skip


@cli_errors
def discovery_nexus(
    ctx: typer.Context,
    jurisdiction: Annotated[str, typer.Option(
        "--jurisdiction", "-j", help="The region the ties are counted for (a country code "
        "covers its states).")] = "US-IL",
    photos: PhotosFile = None,
    matter: Annotated[str | None, typer.Option(
        "--matter", "-m", help="The photos every `discovery locate` for this matter found.")]
    = None,
    csv_file: Annotated[Path | None, typer.Option(
        "--csv", help="Also write the per-photo table to this CSV file ('-': stdout).")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Per photo: GPS, uploader, publisher, subject and ingest facts tying it to a
    jurisdiction, and how many photos 0, 1, 2, 3+ signals tie (custodians).

    Without --photos or --matter: every photo a stored signal ties to the jurisdiction."""
    from faceledger.app.nexus import nexus
    from faceledger.photo_lists import read_photo_ids

    lib, actor = open_library(ctx)
    ids = read_photo_ids(photos) if photos is not None else None
    data = nexus(lib, actor, jurisdiction, photo_ids=ids, matter=matter)
    if csv_file is not None:
        _write_csv(data["photos"], csv_file)

    def human(d: dict) -> None:
        rows = [{**r, "signals": " ".join(r["signals"]) or "none",
                 "gps": " ".join(r["gps_regions"]), "uploader": " ".join(r["uploader_regions"]),
                 "publisher": " ".join(r["publisher_regions"]),
                 "subject": " ".join(r["subject_regions"]),
                 "runs": " ".join(str(run) for run, _ in r["ingest_runs"]),
                 "operator": r["operator_region"]} for r in d["photos"]]  # fmt: skip
        columns = ["photo_id", "signals", "gps", "uploader", "publisher", "subject", "runs",
                   "operator"]  # fmt: skip
        print_table(rows, columns, f"photos and their ties to {d['jurisdiction']}")
        s = d["summary"]
        out.print(f"{s['photos']} photos; tied by 0/1/2/3+ signals: "
                  + ", ".join(f"{k}: {v}" for k, v in s["by_signal_count"].items())
                  + "; by signal: " + ", ".join(f"{k} {v}" for k, v in s["by_signal"].items()),
                  highlight=False)  # fmt: skip

    if csv_file is None or str(csv_file) != "-":
        emit(data, as_json, human)


_CSV_COLUMNS = ["photo_id", "signal_count", "signals", "taken_at", "gps", "gps_regions",
                "uploader_regions", "websites", "publisher_regions", "subject_regions",
                "optouts", "subjects", "consents", "ingest_runs", "operator_region",
                "source_urls"]  # fmt: skip


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(
            ":".join(str(x) for x in v) if isinstance(v, list | tuple)
            else str(v.get("optout_id", v.get("id"))) if isinstance(v, dict) else str(v)
            for v in value
        )  # fmt: skip
    return str(value)


def _write_csv(rows: list[dict], path: Path) -> None:
    from faceledger.errors import UsageError

    try:
        handle = sys.stdout if str(path) == "-" else path.open("w", newline="", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from exc
    writer = csv.writer(handle)
    writer.writerow(_CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in _CSV_COLUMNS])
    if handle is not sys.stdout:
        handle.close()


@cli_errors
def discovery_usage(
    ctx: typer.Context,
    since: Since = None,
    until: Until = None,
    period: Annotated[str, typer.Option("--period", help="Group by day or month.")] = "month",
    customer_type: Annotated[str | None, typer.Option(
        "--customer-type", help="Only government, private or staff (no customer type).")]
    = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user.")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Who searched, for which customer type and region, per period: searches, probes and
    matches, from the audit log (custodians, auditors); --json lists each row's entries."""
    from faceledger.app.compliance import parse_time
    from faceledger.app.usage import usage

    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    lib, actor = open_library(ctx)
    data = usage(lib, actor, start, end, period, customer_type, user)

    def human(d: dict) -> None:
        print_table(d["rows"], ["period", "user", "class", "region", "searches", "probes",
                                "matches"], f"searches by {d['period']}")  # fmt: skip
        for cls, t in d["totals"].items():
            out.print(f"{cls}: {t['searches']} searches, {t['probes']} probes, "
                      f"{t['matches']} matches", highlight=False)  # fmt: skip

    emit(data, as_json, human)


@cli_errors
def discovery_compliance(
    ctx: typer.Context,
    rule: Annotated[str, typer.Option(
        "--rule", help="jurisdiction-blocked=REGION, no-private-search or retention-met.")],
    since: Since = None,
    until: Until = None,
    sign_key: Annotated[Path | None, typer.Option(
        "--sign-key", help="Ed25519 private key (as for `audit head --sign-key`): sign the "
        "answer for a declaration.")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Whether a rule held over a period, proved from the change log and the audit log; exits
    0 when it held, 1 when not (custodians, auditors). Refuses when either log fails its
    hash chain, naming the first broken entry."""
    from faceledger.app.compliance import compliance, parse_time

    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    lib, actor = open_library(ctx)
    data = compliance(lib, actor, rule, start, end, sign_key)

    def human(d: dict) -> None:
        verdict = "[green]held[/]" if d["held"] else "[bold red]did not hold[/]"
        out.print(f"{d['rule']} from {d['since'] or 'the beginning'} until {d['until']}: "
                  f"{verdict}", highlight=False)  # fmt: skip
        for v in d["violations"]:
            out.print("  " + ", ".join(f"{k} {v[k]}" for k in v), highlight=False, soft_wrap=True)
        c = d["checked"]
        out.print(f"checked: audit log {c['audit_log']['entries']} entries, change log "
                  f"{c['change_log']['entries']} entries", highlight=False)  # fmt: skip
        h = d["audit_head"]
        out.print(f"audit head: entry {h['id']} sha256 {h['hash']} at {h['at']}", highlight=False)
        if d.get("signature"):
            out.print(f"signed with key {d['key_id']}", highlight=False)

    emit(data, as_json, human)
    if not data["held"]:
        raise typer.Exit(1)


def register(group: typer.Typer) -> None:
    """Add nexus, usage and compliance to the discovery command group."""
    group.command("nexus")(discovery_nexus)
    group.command("usage")(discovery_usage)
    group.command("compliance")(discovery_compliance)
