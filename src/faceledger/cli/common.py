"""Pieces every CLI module shares: consoles, --json, error handling, opening the library."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from faceledger.app.library import Actor, Library
from faceledger.errors import EXIT_CODES, FaceledgerError, UsageError
from faceledger.records import OnProgress

__all__ = [
    "PhotosFile",
    "state",
    "out",
    "err",
    "JsonOpt",
    "cli_errors",
    "exit_codes_help",
    "new_table",
    "set_no_wrap",
    "show",
    "emit",
    "open_library",
    "print_mapping",
    "print_table",
    "progress_bars",
    "progress_columns",
]

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def state(ctx: typer.Context) -> dict[str, Any]:
    """The per-invocation state: settings and the --as user."""
    return ctx.ensure_object(dict)


def exit_codes_help() -> str:
    """The exit statuses, as a paragraph of ``--help``."""
    return "Exit status: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items()) + "."


def fail(exc: Exception, as_json: bool) -> typer.Exit:
    """Report an error (one line on stderr; with --json also on stdout) and the exit to raise."""
    message = exc.format_message() if isinstance(exc, typer.BadParameter) else str(exc)
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if as_json:
        kind = type(exc).__name__
        body = {"error": {"type": kind, "message": message}}
        sys.stdout.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    code = exc.exit_code if isinstance(exc, FaceledgerError) else UsageError.exit_code
    return typer.Exit(code)


def cli_errors(fn: Callable) -> Callable:
    """Turn faceledger errors into one clear line on stderr and their exit status.

    With --json the error is also on stdout as ``{"error": {"type": …, "message": …}}``.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FaceledgerError as exc:
            raise fail(exc, bool(kwargs.get("as_json"))) from None
        except typer.BadParameter as exc:
            if not kwargs.get("as_json"):
                raise
            raise fail(exc, True) from None

    return wrapper


#: --no-wrap of the invocation running now (the root callback sets it each time).
_NO_WRAP: ContextVar[bool] = ContextVar("faceledger_no_wrap", default=False)


def set_no_wrap(no_wrap: bool) -> None:
    """Record this invocation's --no-wrap for the tables it prints."""
    _NO_WRAP.set(no_wrap)


def _wrapping() -> bool:
    return not _NO_WRAP.get()


def new_table(*columns: str, **options: Any) -> Table:
    """A table whose long values fold onto more lines (never cut), or stay whole (--no-wrap)."""
    table = Table(title_justify="left", **options)
    wrap = _wrapping()
    for column in columns:
        if wrap:
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, no_wrap=True, overflow="ignore")
    return table


def show(renderable: Any) -> None:
    """Print a table on stdout; with --no-wrap as wide as its longest row."""
    if _wrapping():
        out.print(renderable)
    else:  # a console of its own: any terminal width would cut the rows again
        Console(width=1_000_000, soft_wrap=True).print(renderable)


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON or through the human renderer."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        human(data)


def emit_json_stream(rows: Iterable[Any]) -> None:
    """Print ``rows`` as one JSON array as they come, a row a line (valid JSON when complete,
    and readable line by line: each line but the brackets is one row and a comma)."""
    write = sys.stdout.write
    write("[")
    first = True
    for row in rows:
        write(("\n" if first else ",\n") + json.dumps(row, default=str, ensure_ascii=False))
        first = False
    write("\n]\n" if not first else "]\n")
    sys.stdout.flush()


def print_table_stream(rows: Iterable[dict], columns: list[str], title: str = "",
                       part: int = 1_000) -> None:  # fmt: skip
    """Print dict rows as tables of ``part`` rows each as they come (the header on the first)."""
    batch: list[dict] = []
    shown = 0
    for row in rows:
        batch.append(row)
        if len(batch) == part:
            _table_part(batch, columns, header=not shown)
            shown += len(batch)
            batch = []
    if batch or not shown:
        if not batch:
            out.print(f"No {title or 'rows'}.")
            return
        _table_part(batch, columns, header=not shown)


def _table_part(rows: list[dict], columns: list[str], header: bool) -> None:
    table = new_table(*columns, show_header=header)
    for row in rows:
        table.add_row(*("-" if row.get(c) is None else str(row.get(c)) for c in columns))
    show(table)


def open_library(ctx: typer.Context) -> tuple[Library, Actor]:
    """The library named by --library/FACELEDGER_LIBRARY and the acting user (--as).

    Acting as anyone but the owner needs that user's API key: FACELEDGER_API_KEY, or a hidden
    prompt when the command runs at a terminal.
    """
    from faceledger.app.governance.users import acting_user

    st = state(ctx)
    lib = Library.open(st["settings"])
    ctx.call_on_close(lib.close)
    name = st["as"]
    key = st["settings"].api_key
    if name and not key and name != lib.owner() and sys.stdin.isatty():
        key = typer.prompt(f"API key of {name}", hide_input=True, default="", show_default=False)
    return lib, acting_user(lib, name, key)


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
            # One line however long (the terminal wraps it): a path or URL pastes whole.
            out.print(f"{pad}[bold]{key}[/]: {value}", highlight=False, soft_wrap=True)


def print_table(rows: list[dict], columns: list[str], title: str = "") -> None:
    """Print dict rows as a table of the given columns (or say there are none)."""
    if not rows:
        out.print(f"No {title or 'rows'}.")
        return
    table = new_table(*columns, title=title or None)
    for row in rows:
        table.add_row(*("-" if row.get(c) is None else str(row.get(c)) for c in columns))
    show(table)


#: A list of photos: ids one per line, or what `discovery locate --json` wrote.
PhotosFile = Annotated[
    Path | None,
    typer.Option(
        "--photos", help="Photo ids, one per line, or the JSON of `discovery locate --json`."
    ),
]


def progress_columns(label: str, rates: bool = False, counts: bool = True) -> tuple[Any, ...]:
    """The columns of a long operation's bar: its count of a total (a percentage without
    ``counts``), the time so far and an ETA; with ``rates``, also the task's ``rates`` field
    and its description (ingest)."""
    columns: list[Any] = [SpinnerColumn(), TextColumn(f"[bold]{label}"),
                          BarColumn(bar_width=None),
                          MofNCompleteColumn() if counts else TaskProgressColumn()]  # fmt: skip
    if rates:
        columns.append(TextColumn("{task.fields[rates]}"))
    columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    if rates:
        columns.append(TextColumn("{task.description}"))
    return tuple(columns)


@contextmanager
def progress_bars(as_json: bool, counts: bool = True) -> Iterator[Callable[[str], OnProgress]]:
    """Transient bars on stderr (none with --json) of :func:`progress_columns`, one per part
    of a long operation; yields ``bar(label)``, which adds a bar and returns its
    ``tick(done, total)``: the callback the library's long operations take. Without
    ``counts`` the bars show a percentage (for ticks in thousandths, see ``Library.create``)."""
    columns = progress_columns("{task.description}", counts=counts)
    with Progress(*columns, console=err, transient=True, disable=as_json) as progress:

        def bar(label: str) -> OnProgress:
            task = progress.add_task(label, total=None)
            return lambda done, total: progress.update(task, completed=done, total=total)

        yield bar
