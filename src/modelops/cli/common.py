"""What every CLI command shares: the client, --json output, tables, progress, clean errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from modelops.client import ApiError, ModelOpsClient
from modelops.client.resources import ProgressCallback

console = Console()
err_console = Console(stderr=True)


class State:
    url: str | None = None
    token: str | None = None


state = State()


def client() -> ModelOpsClient:
    return ModelOpsClient(state.url, state.token)


def print_json(data: Any) -> None:
    """JSON on stdout and nothing else, so ``| jq`` always works."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one red line on stderr; the caller raises the returned Exit."""
    # soft_wrap: a long server message stays one line even when stderr is 80 columns wide.
    err_console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def _api_message(exc: ApiError) -> str:
    if exc.status == 0:
        return exc.detail
    message = f"{exc.detail} ({exc.status})"
    if exc.status == 401:
        message += "; set MODELOPS_TOKEN or pass --token with a valid token"
    return message


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn API, network and local file errors into one red line and exit code 1."""
    try:
        yield
    except ApiError as exc:
        raise fail(_api_message(exc)) from None
    except httpx.HTTPError as exc:  # anything the client did not already translate
        raise fail(f"request to the modelops server failed: {exc}") from None
    except OSError as exc:
        # FileNotFoundError & co. carry the path; str() alone may lack it.
        where = f"{exc.filename}: " if exc.filename and str(exc.filename) not in str(exc) else ""
        raise fail(f"{where}{exc.strerror or exc}") from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


def command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: run a command body inside cli_errors()."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with cli_errors():
            return func(*args, **kwargs)

    return wrapper


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
ProjectArg = Annotated[str, typer.Argument(metavar="PROJECT", help="The project's name.")]


@contextmanager
def transfer_progress(label: str, *, enabled: bool = True) -> Iterator[ProgressCallback]:
    """A progress callback that draws a byte bar on stderr, or does nothing.

    The bar is drawn only when stderr is a terminal: piped or logged output stays clean."""
    if not enabled or not err_console.is_terminal:
        yield lambda _done, _total: None
        return
    # Imported here: most commands never draw a bar, and every import slows each invocation.
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # unreachable; keeps mypy sure of the return


def when(timestamp: str | None) -> str:
    """A server timestamp as 'YYYY-MM-DD HH:MM' (the full value is in --json)."""
    if not timestamp:
        return ""
    try:
        return datetime.fromisoformat(timestamp).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return timestamp


def new_table(*columns: str, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    return table


def add_row(table: Table, *values: object) -> None:
    """A row of plain text: user-written notes and descriptions are never read as markup."""
    table.add_row(*(Text(str(value)) for value in values))


def print_fields(title: str, fields: list[tuple[str, object]]) -> None:
    """A record as aligned 'label  value' lines under a bold title."""
    console.print(f"[bold]{escape(title)}[/]")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column(overflow="fold")
    for label, value in fields:
        table.add_row(label, Text(str(value)))
    console.print(table)
