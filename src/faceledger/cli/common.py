"""Pieces every CLI module shares: consoles, --json, error handling, opening the library."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from faceledger.app.library import Actor, Library
from faceledger.errors import FaceledgerError

__all__ = [
    "state",
    "out",
    "err",
    "JsonOpt",
    "cli_errors",
    "emit",
    "open_library",
    "print_mapping",
    "print_table",
]

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def state(ctx: typer.Context) -> dict[str, Any]:
    """The per-invocation state: settings and the --as user."""
    return ctx.ensure_object(dict)


def cli_errors(fn: Callable) -> Callable:
    """Turn faceledger errors into one clear line on stderr and a non-zero exit status."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FaceledgerError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON or through the human renderer."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        human(data)


def open_library(ctx: typer.Context) -> tuple[Library, Actor]:
    """The library named by --library/FACELEDGER_LIBRARY and the acting user (--as)."""
    st = state(ctx)
    lib = Library.open(st["settings"])
    ctx.call_on_close(lib.close)
    return lib, lib.actor(st["as"])


def print_mapping(data: dict, indent: int = 0) -> None:
    """Print a nested mapping as indented key: value lines."""
    pad = "  " * indent
    for key, value in data.items():
        if isinstance(value, dict):
            out.print(f"{pad}[bold]{key}[/]:")
            print_mapping(value, indent + 1)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out.print(f"{pad}[bold]{key}[/]: {len(value)}")
            for item in value:
                print_mapping(item, indent + 1)
                out.print()
        else:
            out.print(f"{pad}[bold]{key}[/]: {value}", highlight=False)


def print_table(rows: list[dict], columns: list[str], title: str = "") -> None:
    """Print dict rows as a table of the given columns (or say there are none)."""
    if not rows:
        out.print(f"No {title or 'rows'}.")
        return
    table = Table(*columns, title=title or None, title_justify="left")
    for row in rows:
        table.add_row(*("-" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)
