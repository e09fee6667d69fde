"""What every CLI command shares: the client, --json output, and errors as clean messages."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from modelops.client import ApiError, ModelOpsClient

console = Console()
err_console = Console(stderr=True)


class State:
    url: str | None = None
    token: str | None = None


state = State()


def client() -> ModelOpsClient:
    return ModelOpsClient(state.url, state.token)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn API and input errors into one red line and exit code 1 (2 for usage)."""
    try:
        yield
    except ApiError as exc:
        err_console.print(f"[red]error:[/] {exc.detail}" + (f" ({exc.status})" if exc.status else ""))
        raise typer.Exit(1) from None
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


def command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: run a command body inside cli_errors()."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with cli_errors():
            return func(*args, **kwargs)

    return wrapper


JsonOpt = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")
