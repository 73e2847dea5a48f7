"""CLI for discovery: counts, sources, vector dates, people, locate, productions, reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceledger.cli.common import (
    JsonOpt,
    PhotosFile,
    cli_errors,
    emit,
    emit_json_stream,
    open_library,
    out,
    print_table,
    print_table_stream,
    progress_bars,
)
from faceledger.ids import checked_id

__all__ = ["register", "discovery_app"]

discovery_app = typer.Typer(
    help="Answers for litigation and audits: counts, sources, dates.", no_args_is_help=True
)

Jurisdiction = Annotated[
    str | None,
    typer.Option(
        "--jurisdiction", "-j", help="Region code such as US-IL (a country code covers its states)."
    ),
]
Blocked = Annotated[
    bool | None,
    typer.Option(
        "--blocked/--searchable",
        help="Only blocked faces (custodians) or only searchable ones; "
        "default: both for custodians, searchable for everyone else.",
    ),
]


@discovery_app.command("count")
@cli_errors
def discovery_count(
    ctx: typer.Context,
    blocked: Blocked = None,
    jurisdiction: Jurisdiction = None,
    signal: Annotated[
        str | None, typer.Option("--signal", "-s", help="gps, uploader, publisher or subject.")
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Also count the ties themselves and fail if the vault's kept counts differ "
            "(seconds at 10^7 faces; `discovery recount` rebuilds them).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """How many photos, faces and source URLs: in total and per signal.

    A blocked count of one region (--blocked -j US-IL) reads the vault's kept counts, which
    the catalog keeps current on every write: milliseconds at any size.
    """
    from faceledger.app.answers import answer

    lib, actor = open_library(ctx)
    data = answer(lib, actor, "count", blocked=blocked, jurisdiction=jurisdiction,
                  signal=signal, verify=verify)  # fmt: skip

    def human(d: dict) -> None:
        rows = [{"signal": "all", **d["total"]}]
        rows += [{"signal": s, **c} for s, c in d["by_signal"].items()]
        scope = "blocked" if d["blocked"] else "searchable" if d["blocked"] is False else "all"
        print_table(
            rows,
            ["signal", "photos", "faces", "source_urls"],
            f"{scope} faces" + (f" tied to {d['jurisdiction']}" if d["jurisdiction"] else ""),
        )
        out.print(f"Per signal: {d['by_signal_means']}.")

    emit(data, as_json, human)


@discovery_app.command("recount")
@cli_errors
def discovery_recount(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Rebuild the vault's kept counts from the faces, ties and provenance (custodians).

    Needed only when `discovery count --verify` finds them differing from the ties, i.e. when
    their tables were edited by hand; the catalog keeps them current otherwise.
    """
    from faceledger.app.answers import recount

    lib, actor = open_library(ctx)
    with progress_bars(as_json) as bar:
        data = recount(lib, actor, on_progress=bar("recount"))
    emit(data, as_json,
         lambda d: out.print(f"Kept counts rebuilt from {d['vault_photos']:,} vault photos."))


def _listing(ctx: typer.Context, question: str, columns: list[str], blocked: bool | None,
             jurisdiction: str | None, as_json: bool) -> None:  # fmt: skip
    from faceledger.app.answers import answer

    lib, actor = open_library(ctx)
    rows = answer(lib, actor, question, blocked=blocked, jurisdiction=jurisdiction)
    emit(rows, as_json, lambda r: print_table(r, columns))


@discovery_app.command("sources")
@cli_errors
def discovery_sources(
    ctx: typer.Context,
    blocked: Blocked = None,
    jurisdiction: Jurisdiction = None,
    matter: Annotated[
        str | None,
        typer.Option("--matter", "-m", help="Apply this matter's protective orders (redaction)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Source URLs, page URLs, websites, terms of service, publishers and their regions."""
    from faceledger.app.discovery import sources

    columns = ["photo_id", "source_url", "page_url", "website", "publisher", "publisher_region",
               "terms_url"]  # fmt: skip
    lib, actor = open_library(ctx)
    rows = sources(lib, actor, matter=matter, blocked=blocked, jurisdiction=jurisdiction)
    emit(rows, as_json, lambda r: print_table(r, columns))


@discovery_app.command("vector-dates")
@cli_errors
def discovery_vector_dates(
    ctx: typer.Context,
    blocked: Blocked = None,
    jurisdiction: Jurisdiction = None,
    as_json: JsonOpt = False,
) -> None:
    """Per face: id, photo, source URL, retrieval date, vector collection date and model.

    Rows are written as the catalog yields them (a JSON array, one row a line, with --json; a
    table in parts of a thousand rows otherwise), so 10^7 faces never sit in memory.
    """
    from faceledger.app.answers import stream_vector_dates

    columns = ["face_id", "photo_id", "source_url", "retrieved_at", "vector_collected_at", "model"]
    lib, actor = open_library(ctx)
    rows = stream_vector_dates(lib, actor, blocked=blocked, jurisdiction=jurisdiction)
    if as_json:
        emit_json_stream(rows)
    else:
        print_table_stream(rows, columns, title="face vector dates")


@discovery_app.command("people")
@cli_errors
def discovery_people(
    ctx: typer.Context,
    blocked: Blocked = None,
    jurisdiction: Jurisdiction = None,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", "-t", help="Distance threshold (default 0.6, dlib's)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Estimate how many distinct people the faces show, with a range (custodians)."""
    from faceledger.app.discovery import people
    from faceledger.discovery.people import DEFAULT_THRESHOLD

    lib, actor = open_library(ctx)
    data = people(
        lib,
        actor,
        blocked=blocked,
        jurisdiction=jurisdiction,
        threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
    )
    emit(
        data,
        as_json,
        lambda d: out.print(
            f"About {d['estimate']} people (range {d['low']}-{d['high']}) among {d['faces']} "
            f"faces; thresholds {d['thresholds']['strict']}/{d['thresholds']['threshold']}/"
            f"{d['thresholds']['loose']}."
        ),
    )


@discovery_app.command("locate")
@cli_errors
def discovery_locate(
    ctx: typer.Context,
    matter: Annotated[str, typer.Option("--matter", "-m", help="The matter this is for.")],
    photo: Annotated[
        list[Path] | None,
        typer.Option("--photo", help="Reference photo of the person (memory only; repeatable)."),
    ] = None,
    face: Annotated[
        int | None, typer.Option("--face", help="Start from a stored face id (no new vector).")
    ] = None,
    include_vault: Annotated[
        bool, typer.Option("--include-vault", help="Also search blocked faces.")
    ] = False,
    authority_file: Annotated[
        Path | None,
        typer.Option("--authority-file", help="Consent or court order relied on (hash recorded)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every photo of a person, with provenance and vector dates (attested custodians)."""
    from faceledger.app.discovery import locate
    from faceledger.app.search import Probe
    from faceledger.errors import UsageError

    lib, actor = open_library(ctx)
    probes = []
    for path in photo or []:
        try:
            probes.append(Probe(path.name, path.read_bytes()))
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    authority_text = None
    if authority_file is not None:
        try:
            authority_text = authority_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {authority_file}: {exc}") from exc
    data = locate(
        lib,
        actor,
        matter,
        probes=probes,
        face_id=None if face is None else checked_id("face", face),
        include_vault=include_vault,
        authority_text=authority_text,
        authority_name=authority_file.name if authority_file else None,
    )
    probes.clear()

    def human(d: dict) -> None:
        rows = [
            {
                "photo_id": p["photo_id"],
                "distance": p["best_distance"],
                "blocked": p["blocked"],
                "source": next(
                    (s.get("source_url") or s.get("locator") for s in p["provenance"]), None
                ),
                "vector_collected_at": ", ".join(
                    sorted({x["vector_collected_at"] for x in p["faces"]})
                ),
            }
            for p in d["photos"]
        ]
        print_table(
            rows,
            ["photo_id", "distance", "blocked", "source", "vector_collected_at"],
            f"{len(rows)} photos for matter {d['matter']}",
        )

    emit(data, as_json, human)


@discovery_app.command("produce")
@cli_errors
def discovery_produce(
    ctx: typer.Context,
    matter: Annotated[str, typer.Option("--matter", "-m", help="The matter produced for.")],
    prefix: Annotated[str, typer.Option("--prefix", help="Bates prefix, e.g. ABC.")],
    out_dir: Annotated[Path, typer.Option("--out", help="New (or empty) production folder.")],
    photos: PhotosFile = None,
    jurisdiction: Jurisdiction = None,
    blocked: Blocked = None,
    profile: Annotated[
        str,
        typer.Option("--profile", help="Load-file profile: relativity (ASCII 020 / þ / ®) or "
                     "concordance-unicode (¶ / þ)."),
    ] = "relativity",
    as_json: JsonOpt = False,
) -> None:
    """Natives and JPEG page images under Bates numbers, DAT, OPT and face-level load files, a
    cover sheet, a redaction log and a SHA-256 manifest (custodians)."""
    from faceledger.app.discovery import produce
    from faceledger.errors import InputError
    from faceledger.photo_lists import read_photo_ids

    if photos is not None and (jurisdiction is not None or blocked is not None):
        raise InputError("give --photos FILE or --jurisdiction/--blocked, not both")
    lib, actor = open_library(ctx)
    data = produce(
        lib,
        actor,
        matter,
        prefix,
        out_dir,
        photo_ids=read_photo_ids(photos) if photos is not None else None,
        jurisdiction=jurisdiction,
        blocked=blocked,
        load_profile=profile,
    )
    emit(
        data,
        as_json,
        lambda d: out.print(
            f"Production {d['production_id']} of matter {d['matter']} ({d['profile']}): "
            f"{d['documents']} "
            f"documents, {d['first_bates']}-{d['last_bates']}, in {d['out_dir']}."
        ),
    )


@discovery_app.command("report")
@cli_errors
def discovery_report(
    ctx: typer.Context,
    matter: Annotated[str, typer.Option("--matter", help="The matter the report is for.")],
    out_file: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Also write this PDF.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Plots and tables: faces by jurisdiction and signal, vector dates by month, websites."""
    from faceledger.app.discovery import report

    lib, actor = open_library(ctx)
    emit(report(lib, actor, matter, out_file, pdf), as_json,
         lambda d: out.print(f"Wrote {d['html']}" + (f" and {d['pdf']}" if d.get("pdf") else "")))


# -- the production register, protective orders, vector export (issue 15) --------------------
productions_app = typer.Typer(help="The production register: list and verify productions.",
                              no_args_is_help=True)  # fmt: skip
discovery_app.add_typer(productions_app, name="productions")
order_app = typer.Typer(help="Protective orders of a matter.", no_args_is_help=True)
discovery_app.add_typer(order_app, name="order")


@productions_app.command("list")
@cli_errors
def productions_list(
    ctx: typer.Context,
    matter: Annotated[str | None, typer.Option("--matter", "-m", help="Only this matter.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every production: matter, volume, Bates range, documents, who made it and when."""
    from faceledger.app.discovery import list_productions

    lib, actor = open_library(ctx)
    columns = ["production_id", "matter", "volume", "first_bates", "last_bates", "documents",
               "profile", "produced_by", "produced_at", "audit_head_id", "redactions"]  # fmt: skip
    emit(list_productions(lib, actor, matter), as_json, lambda r: print_table(r, columns))


@productions_app.command("verify")
@cli_errors
def productions_verify(
    ctx: typer.Context,
    folder: Annotated[
        Path, typer.Argument(help="The production folder.", exists=True, file_okay=False)
    ],
    as_json: JsonOpt = False,
) -> None:
    """Check a production: hashes, Bates continuity, counts, the register, its audit head."""
    from faceledger.app.discovery import verify_production_dir

    lib, actor = open_library(ctx)
    data = verify_production_dir(lib, actor, folder)

    def human(d: dict) -> None:
        if d["ok"]:
            out.print(f"Production {d['volume']} is intact: {d['documents']} documents, "
                      f"{d['first_bates']}-{d['last_bates']}.")  # fmt: skip
        for problem in d["problems"]:
            out.print(f"problem: {problem}")

    emit(data, as_json, human)
    if not data["ok"]:
        raise typer.Exit(1)


@order_app.command("record")
@cli_errors
def order_record(
    ctx: typer.Context,
    matter: Annotated[str, typer.Option("--matter", "-m", help="The matter of the order.")],
    redact: Annotated[
        list[str],
        typer.Option("--redact", help="Site sensitivity to redact (repeatable, or a,b): "
                     "dating, health, sexual-orientation, religion, politics, union, ethnicity, "
                     "criminal."),
    ],
    order_file: Annotated[Path, typer.Option("--file", help="The order (its hash is kept).")],
    as_json: JsonOpt = False,
) -> None:
    """Record a protective order: the matter's productions, reports, exports and source
    listings then redact the URLs and names of the sites it covers."""
    from faceledger.app.discovery import record_order
    from faceledger.errors import UsageError

    try:
        data = order_file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {order_file}: {exc.strerror}") from exc
    categories = [c for value in redact for c in value.split(",")]
    lib, actor = open_library(ctx)
    result = record_order(lib, actor, matter, categories, data, order_file.name)
    emit(result, as_json, lambda d: out.print(
        f"Order {d['order_id']} of {d['matter']}: redacting {', '.join(d['categories'])} "
        f"({d['sites_redacted']} sites in the registry)."))  # fmt: skip


@discovery_app.command("export-vectors")
@cli_errors
def discovery_export_vectors(
    ctx: typer.Context,
    matter: Annotated[str, typer.Option("--matter", "-m", help="The matter exported for.")],
    out_dir: Annotated[Path, typer.Option("--out", help="New (or empty) export folder.")],
    photos: PhotosFile = None,
    jurisdiction: Jurisdiction = None,
    blocked: Blocked = None,
    age_recipient: Annotated[
        str | None,
        typer.Option("--age-recipient", help="Encrypt to this age public key (age1...)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The face vectors themselves, as Parquet with a README and SHA-256 manifest (custodians)."""
    from faceledger.app.discovery import export_vectors
    from faceledger.errors import InputError
    from faceledger.photo_lists import read_photo_ids

    if photos is not None and (jurisdiction is not None or blocked is not None):
        raise InputError("give --photos FILE or --jurisdiction/--blocked, not both")
    lib, actor = open_library(ctx)
    data = export_vectors(
        lib, actor, matter, out_dir,
        photo_ids=read_photo_ids(photos) if photos is not None else None,
        jurisdiction=jurisdiction, blocked=blocked, age_recipient=age_recipient,
    )  # fmt: skip
    emit(data, as_json, lambda d: out.print(
        f"Exported {d['faces']} face vectors of {d['photos']} photos to {d['data']}"
        + (" (encrypted)." if d["encrypted"] else ".")))  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the discovery command group to ``app``."""
    from faceledger.cli import answers  # nexus, usage, compliance: a module of their own

    answers.register(discovery_app)
    app.add_typer(discovery_app, name="discovery")
