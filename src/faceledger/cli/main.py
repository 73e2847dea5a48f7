"""The faceledger command line: thin commands over :mod:`faceledger.app.library` and friends."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from faceledger import __version__
from faceledger.app.library import Library
from faceledger.app.limits import THRESHOLD_MAX, TOP_K_MAX
from faceledger.cli.common import (
    JsonOpt,
    cli_errors,
    emit,
    err,
    exit_codes_help,
    fail,
    new_table,
    open_library,
    out,
    print_mapping,
    print_table,
    progress_bars,
    progress_columns,
    set_no_wrap,
    show,
    state,
)
from faceledger.config import Settings
from faceledger.errors import FaceledgerError, InputError

__all__ = ["app"]

app = typer.Typer(
    help="Face search over photo collections you hold, with provenance, blocking and an audit "
    "log built in.\n\nStart with `faceledger init`, then `faceledger ingest FOLDER`, then "
    "`faceledger search PHOTO`.\n\n" + exit_codes_help(),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
show_app = typer.Typer(
    help="Show one stored photo or face with its provenance.", no_args_is_help=True
)
app.add_typer(show_app, name="show")


def _print_version(value: bool | None) -> None:
    if value:
        out.print(f"faceledger {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    library: Annotated[
        Path | None,
        typer.Option(
            "--library",
            "-L",
            envvar="FACELEDGER_LIBRARY",
            help="Library directory (catalog, indexes, photos). Default ./faceledger-library.",
        ),
    ] = None,
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as",
            envvar="FACELEDGER_USER",
            help="Act as this user (default: the library's owner).",
        ),
    ] = None,
    no_wrap: Annotated[
        bool,
        typer.Option(
            "--no-wrap", help="Keep each table row on one line, however long (for pasting)."
        ),
    ] = False,
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the version and exit.",
        ),
    ] = None,
) -> None:
    """Global options shared by every command."""
    try:
        settings = Settings.from_env(library=library)
    except FaceledgerError as exc:
        raise fail(exc, False) from None
    set_no_wrap(no_wrap)
    state(ctx).update(settings=settings, **{"as": as_user})


@app.command()
@cli_errors
def init(
    ctx: typer.Context,
    owner: Annotated[str, typer.Option(help="Name of the owner (an admin) created now.")] = "owner",
    key_file: Annotated[Path | None, typer.Option(
        "--key-file", help="Encrypt face vectors and index files with the key in this file "
        "(created if missing; must be outside the library). Later commands need it too, via "
        "FACELEDGER_KEY_FILE.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a library (or upgrade an existing one's schema). Safe to run again."""
    from faceledger.app.governance import keys

    settings = state(ctx)["settings"]
    if key_file is not None:
        settings = keys.key_file_for_init(settings, key_file)
    with progress_bars(as_json, counts=False) as bar:  # an upgrade's first fold of the vault
        lib = Library.create(settings, owner=owner, on_progress=bar("vault counts"))
    data = {
        "library": str(settings.library.resolve()),
        "catalog": settings.catalog_url,
        "owner": lib.catalog.get_meta("owner"),
        "policy": str(lib.policy_path),
    }
    lib.close()
    emit(
        data,
        as_json,
        lambda d: out.print(
            f"Library ready at [bold]{d['library']}[/] (owner: {d['owner']}).\n"
            f"Policy file: {d['policy']}\nNext: faceledger ingest FOLDER"
        ),
    )


@app.command()
@cli_errors
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Image files or folders (searched recursively).", show_default=False),
    ] = None,
    manifest: Annotated[
        list[Path] | None,
        typer.Option(
            "--manifest",
            "-m",
            help="CSV or JSONL manifest: path, source_url, page_url, website, "
            "retrieved_at, uploader_region, caption. Repeatable.",
        ),
    ] = None,
    warc: Annotated[
        list[Path] | None,
        typer.Option(
            "--warc", "-w", help="WARC/ARC file: each image record becomes a photo. Repeatable."
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="Encoding of manifest rows that are not UTF-8 (e.g. cp1252, latin-1).",
        ),
    ] = None,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="Also accept absolute manifest paths inside this folder (besides the "
            "manifest's own folder).",
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Where faces are computed: local (a process per core) or ray (Ray Data; "
            "needs the 'ray' extra). Default: FACELEDGER_INGEST_ENGINE, else local.",
            show_default=False,
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="With --engine ray: the Ray cluster to join (default: RAY_ADDRESS, else a "
            "local Ray on 127.0.0.1 for this run).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add photos with their provenance: detect faces, store vectors, index them.

    Reruns skip photos already stored (by SHA-256) and only add new provenance; a run that was
    killed can simply be run again. Bad items are reported one by one; the run goes on, and
    exits 1 if any item failed. A path that does not exist is a usage error (2): nothing is
    read and no run is recorded. Progress shows a total and an ETA when the sources can be
    counted cheaply (folders, manifests), photos/s and faces/s; the summary, time per stage.
    """
    from faceledger.app.ingest import ingest as run_ingest

    if not (paths or manifest or warc):
        raise typer.BadParameter("give at least one PATH, --manifest or --warc")
    lib, actor = open_library(ctx)
    columns = progress_columns("ingest", rates=True)
    with Progress(*columns, console=err, transient=True, disable=as_json) as progress:
        task = progress.add_task("", total=None, rates="")

        def tick(name: str, so_far) -> None:
            wall = so_far.elapsed() or 1e-9
            progress.update(
                task,
                completed=so_far.items_done,
                description=Path(name.split("#")[0]).name[-40:],
                rates=f"{so_far.photos / wall:.1f} photos/s {so_far.faces / wall:.1f} faces/s",
            )

        summary = run_ingest(
            lib,
            actor,
            paths or [],
            manifest or [],
            warc or [],
            on_item=tick,
            encoding=encoding,
            root=root,
            engine=engine,
            ray_address=ray_address,
            on_total=lambda total: progress.update(task, total=total),
        )
    emit(summary.as_dict(), as_json, _print_ingest)
    if summary.errors:
        raise typer.Exit(InputError.exit_code)


def _print_ingest(s: dict) -> None:
    out.print(
        f"Run {s['run_id']}: {s['photos_new']} new photos, {s['photos_already_stored']} already "
        f"stored, {s['sources_added']} provenance rows added; {s['faces']} faces "
        + (f"({s['faces_searchable']} searchable, {s['faces_blocked']} blocked by policy)."
           if "faces_blocked" in s else "searchable.")
    )
    stages = ", ".join(f"{k} {v:.1f}" for k, v in s["stage_seconds"].items())
    out.print(
        f"{s['wall_s']:.1f} s on the {s['engine']} engine: {s['photos_per_s'] or 0:.1f} photos/s, "
        f"{s['faces_per_s'] or 0:.1f} faces/s. Time per stage (s, summed over workers): {stages}."
    )
    if s["errors"]:
        table = new_table("item", "error", title=f"{len(s['errors'])} items failed")
        for e in s["errors"]:
            table.add_row(e["item"], f"{e['error']}: {e['message']}")
        show(table)
    if s["warnings"]:
        table = new_table("item", "warning", title=f"{len(s['warnings'])} decoder warnings")
        for w in s["warnings"]:
            table.add_row(w["item"], w["message"])
        show(table)


@app.command()
@cli_errors
def search(
    ctx: typer.Context,
    images: Annotated[list[Path], typer.Argument(help="Probe photos (read into memory only).")],
    top_k: Annotated[
        int, typer.Option("--top-k", "-k", min=1, max=TOP_K_MAX, help="Matches to return per face.")
    ] = 10,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            "-t",
            min=0.0,
            max=THRESHOLD_MAX,
            help="Largest distance reported as a match (default from settings: 0.6).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find stored faces that match the faces in the probe photos.

    The probe images and their vectors are held in memory only: nothing about them is written
    to the catalog or the library directory. Each search is an entry in the audit log. Exits 1
    when a probe cannot be decoded (the other probes are still answered).
    """
    from faceledger.app.search import Probe, search_faces

    lib, actor = open_library(ctx)
    probes = []
    for image in images:
        try:
            probes.append(Probe(str(image), image.read_bytes()))
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {image}: {exc.strerror}") from None
    results = search_faces(lib, actor, probes, top_k=top_k, threshold=threshold)
    emit(results, as_json, _print_search)
    if any(entry.get("error") for entry in results):
        raise typer.Exit(InputError.exit_code)


def _print_search(results: list[dict]) -> None:
    for entry in results:
        if entry.get("error"):
            out.print(f"[bold]{entry['probe']}[/]: [red]{entry['error']}[/]")
            continue
        out.print(f"[bold]{entry['probe']}[/]: {len(entry['faces'])} face(s)")
        for n, face in enumerate(entry["faces"], 1):
            if not face["matches"]:
                out.print(f"  face {n}: no match")
                continue
            table = new_table(
                "distance",
                "face",
                "photo",
                "source",
                "retrieved",
                "vector collected",
                title=f"face {n}",
            )
            for m in face["matches"]:
                retrieved = next(
                    (p["retrieved_at"] for p in m["provenance"] if p["retrieved_at"]), None
                )
                table.add_row(
                    f"{m['distance']:.3f}",
                    str(m["face_id"]),
                    str(m["photo_id"]),
                    str(m["source"]),
                    str(retrieved or "-"),
                    str(m["vector_collected_at"]),
                )
            show(table)


@show_app.command("photo")
@cli_errors
def show_photo(
    ctx: typer.Context,
    photo_id: Annotated[int, typer.Argument(help="Photo id.")],
    as_json: JsonOpt = False,
) -> None:
    """A photo: hashes, EXIF time and GPS, every provenance row, jurisdictions, faces."""
    lib, actor = open_library(ctx)
    emit(lib.show_photo(actor, photo_id), as_json, print_mapping)


@show_app.command("face")
@cli_errors
def show_face(
    ctx: typer.Context,
    face_id: Annotated[int, typer.Argument(help="Face id.")],
    history: Annotated[bool, typer.Option(
        "--history", help="Also every move of the face (the index change log), with the "
        "periods it was searchable, in the vault or destroyed.")] = False,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """A face: its box, landmarks, detector score, model and when its vector was collected."""
    from faceledger.app.history import face_history

    lib, actor = open_library(ctx)
    data = face_history(lib, actor, face_id) if history else lib.show_face(actor, face_id)
    emit(data, as_json, _print_history if history else print_mapping)


def _print_history(d: dict) -> None:
    if d["face"]:
        print_mapping(d["face"])
    out.print(f"[bold]place now[/]: {d['place']}", highlight=False)
    print_table(d["periods"], ["place", "from", "until", "seq"], f"where face {d['face_id']} was")


@app.command()
@cli_errors
def stats(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Counts of photos, provenance rows, websites, faces, runs and errors."""
    lib, actor = open_library(ctx)
    emit(lib.stats(actor), as_json, print_mapping)


@app.command()
@cli_errors
def reindex(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Rebuild the searchable and vault indexes from the catalog (the source of truth).

    A bar shows the searchable faces read so far of their total and an ETA (minutes at 10^7
    faces). The vault is rebuilt too, but its size is a count of blocked faces: no bar or
    answer gives it (the audit entry keeps it for those with vault access)."""
    lib, actor = open_library(ctx)
    with progress_bars(as_json) as bar:
        done = lib.reindex(actor, on_progress=bar)
    emit(done, as_json, print_mapping)


@app.command()
@cli_errors
def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Run the web service: a JSON API (docs at /docs) and a search page at /.

    Callers authenticate with an API key (`faceledger users key NAME`) and act as its user;
    --as does not apply.
    """
    import uvicorn

    from faceledger.service import create_app

    settings = state(ctx)["settings"]
    web = create_app(settings)
    err.print(f"Serving {settings.library} on http://{host}:{port}/ (API docs at /docs)")
    uvicorn.run(web, host=host, port=port)


# Command groups that live in modules of their own (in the order `--help` lists them).
from faceledger.cli import discovery, governance, policy  # noqa: E402

for group in (policy, discovery, governance):
    group.register(app)
