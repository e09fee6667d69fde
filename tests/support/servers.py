"""A server shared by one test module, plain HTTP helpers, and probes of its data directory.

Tests that share a server use their own project names, so none depends on another's data.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from conftest import RunningServer, start_server

API = "/api/v1"


@contextmanager
def shared_server(base: Path, **extra_env: str) -> Iterator[RunningServer]:
    running = start_server(base / "home", extra_env=extra_env)
    try:
        yield running
    finally:
        running.stop()


def api(server: RunningServer, token: str | None = "default", *, timeout: float = 60) -> httpx.Client:
    """An httpx client on the API root; ``token=None`` sends no Authorization header."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {server.token if token == 'default' else token}"
    return httpx.Client(base_url=server.url + API, headers=headers, timeout=timeout)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_project(client: httpx.Client, prefix: str = "p") -> str:
    name = unique(prefix)
    response = client.post("/projects", json={"name": name})
    assert response.status_code == 201, response.text
    return name


def make_token(server: RunningServer, role: str) -> str:
    with api(server) as client:
        response = client.post("/tokens", json={"name": unique(role), "role": role})
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


# --------------------------------------------------------------------------- data directory probes


def blob_names(home: Path) -> set[str]:
    """Every blob in the local artifact store of a server's data directory."""
    root = home / "artifacts" / "blobs"
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def leftovers(home: Path) -> list[str]:
    """Files or folders left in the upload scratch space or the artifact store's temp folder."""
    found: list[str] = []
    for folder in (home / "work" / "scratch", home / "artifacts" / "tmp"):
        if folder.exists():
            found += [str(p.relative_to(home)) for p in folder.iterdir()]
    return found


def row_count(home: Path, table: str) -> int:
    """Rows in a table of the server's SQLite metadata file, read directly, not through the API."""
    with sqlite3.connect(home / "modelops.db") as db:
        (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    return int(count)
