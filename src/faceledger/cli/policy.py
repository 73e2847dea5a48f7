"""CLI for jurisdictions and blocking: the sites registry, the policy, opt-outs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceledger.cli.common import (
    JsonOpt,
    cli_errors,
    emit,
    open_library,
    out,
    print_mapping,
    print_table,
)
from faceledger.ids import checked_id

__all__ = ["register"]

sites_app = typer.Typer(
    help="The sites registry: publisher, region and terms of each website.", no_args_is_help=True
)
policy_app = typer.Typer(
    help="The policy file: blocking, customer and retention rules.", no_args_is_help=True
)
optout_app = typer.Typer(
    help="Opt-out requests matched by face (the selfie is never stored).", no_args_is_help=True
)

@sites_app.command("import")
@cli_errors
def sites_import(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or JSONL: domain, publisher, publisher_region, terms_url, terms_retrieved_at"
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Add or update websites; then run `faceledger policy apply` to re-decide blocking."""
    from faceledger.app.sites import import_sites

    lib, actor = open_library(ctx)
    emit(
        import_sites(lib, actor, file),
        as_json,
        lambda d: out.print(
            f"{d['added']} websites added, {d['updated']} updated. "
            "Run `faceledger policy apply` to re-decide blocking."
        ),
    )


@sites_app.command("list")
@cli_errors
def sites_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every website with its publisher, region, terms and number of provenance rows."""
    from faceledger.app.sites import list_sites

    lib, actor = open_library(ctx)
    emit(
        list_sites(lib, actor),
        as_json,
        lambda rows: print_table(
            rows, ["domain", "publisher", "publisher_region", "terms_url", "sources"]
        ),
    )


@policy_app.command("show")
@cli_errors
def policy_show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The policy in force (the last one applied), and whether policy.yaml has unapplied edits."""
    lib, actor = open_library(ctx)
    emit(lib.policy_summary(actor), as_json, print_mapping)


@policy_app.command("apply")
@cli_errors
def policy_apply(
    ctx: typer.Context,
    full: Annotated[bool, typer.Option(
        "--full", help="re-decide every photo, not only those the changes since the last "
        "apply can affect")] = False,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Put policy.yaml in force and re-decide the faces it and the sites registry move
    (idempotent; only the photos the changes since the last apply can affect)."""
    from faceledger.app.policy import apply_policy

    lib, actor = open_library(ctx)
    emit(
        apply_policy(lib, actor, full=full),
        as_json,
        lambda d: out.print(
            f"Policy version {d['policy_version']}: {d['blocked']} faces moved to the vault, "
            f"{d['unblocked']} made searchable again ("
            + ("every photo re-decided" if d.get("full")
               else f"{d.get('photos_redecided', 0)} photos re-decided") + ")."
        ),
    )  # fmt: skip


@policy_app.command("publish")
@cli_errors
def policy_publish(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the .md and .html files.")],
    organisation: Annotated[str, typer.Option(
        "--organisation", help="Name the policy speaks for.")] = "the operator",
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Render the public retention and destruction policy (BIPA 15(a)) as Markdown and HTML."""
    from faceledger.app.publish import publish_policy

    lib, actor = open_library(ctx)
    emit(publish_policy(lib, actor, out_dir, organisation), as_json, lambda d: out.print(
        f"Wrote {d['markdown']} and {d['html']}"))


@optout_app.command("submit")
@cli_errors
def optout_submit(
    ctx: typer.Context,
    photo: Annotated[Path, typer.Option("--photo", help="The person's selfie (memory only).")],
    region: Annotated[str, typer.Option("--region", help="Where they live, e.g. US-IL.")],
    name: Annotated[str, typer.Option("--name", help="Their name, for the record.")],
    email: Annotated[str | None, typer.Option("--email", help="Contact address.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Block every stored face that matches the selfie, now and on later ingests."""
    from faceledger.app.optout import submit_optout

    lib, actor = open_library(ctx)
    emit(
        submit_optout(lib, actor, photo, region, name, email),
        as_json,
        lambda d: out.print(
            f"Opt-out {d['optout_id']}: {d['status']}; {len(d['matched_faces'])} faces matched, "
            f"{d['newly_blocked']} newly blocked."
        ),
    )


@optout_app.command("list")
@cli_errors
def optout_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every opt-out request with its status."""
    from faceledger.app.optout import list_optouts

    lib, actor = open_library(ctx)
    emit(
        list_optouts(lib, actor),
        as_json,
        lambda rows: print_table(
            rows, ["id", "name", "region", "status", "matched_faces", "submitted_at"]
        ),
    )


@optout_app.command("show")
@cli_errors
def optout_show(
    ctx: typer.Context,
    optout_id: Annotated[int, typer.Argument(help="Opt-out id.")],
    as_json: JsonOpt = False,
) -> None:
    """One opt-out request and the faces it matched."""
    from faceledger.app.optout import show_optout

    lib, actor = open_library(ctx)
    emit(show_optout(lib, actor, checked_id("opt-out", optout_id)), as_json, print_mapping)


def register(app: typer.Typer) -> None:
    """Add the sites, policy and optout command groups to ``app``."""
    app.add_typer(sites_app, name="sites")
    app.add_typer(policy_app, name="policy")
    app.add_typer(optout_app, name="optout")
