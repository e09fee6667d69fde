"""Start the platform: migrate, make the first admin token, bind, serve, run background parts."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from rich.console import Console

from modelops.api.app import create_app
from modelops.bootstrap import Container, build_container
from modelops.services.auth import write_secret_file
from modelops.settings import Settings


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, *, console: Console | None = None) -> None:
    console = console or Console(stderr=True)
    container = build_container(settings)
    new_secret = container.auth.ensure_admin_token(token_file=settings.admin_token_file)
    sock = bind_socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}"
    app = create_app(container)
    app.router.lifespan_context = _lifespan(container)
    write_secret_file(
        settings.server_file, json.dumps({"url": url, "pid": os.getpid()})
    )
    console.print(f"[bold green]modelops[/] listening on [bold]{url}[/]  (API docs: {url}/docs)")
    console.print(f"dashboard: sign in at [bold]{url}/ui/login[/] with a token")
    console.print(f"data directory: {settings.resolved_home}")
    console.print(f"metadata: {_redact(settings.resolved_database_url)}")
    if new_secret:
        console.print(f"first start: admin token written to {settings.admin_token_file} (mode 0600)")
    else:
        console.print(f"admin token file: {settings.admin_token_file}")
    console.print("CLI ready: [bold].venv/bin/modelops --help[/] (it finds this server and token)")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        container.close()
        try:
            current = json.loads(settings.server_file.read_text())
            if current.get("pid") == os.getpid():
                settings.server_file.unlink()
        except (OSError, ValueError):
            pass


def run_worker(settings: Settings, *, console: Console | None = None) -> None:
    """The background parts alone (job engine, schedulers), until SIGTERM or SIGINT."""
    console = console or Console(stderr=True)
    container = build_container(settings)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    try:
        container.start_background()
        parts = ", ".join(type(part).__name__ for part in container.background) or "nothing"
        console.print(f"[bold green]modelops worker[/] running: {parts}", soft_wrap=True)
        console.print(f"job engine: {settings.resolved_engine_name}", soft_wrap=True, markup=False)
        console.print(f"metadata: {_redact(settings.resolved_database_url)}", soft_wrap=True,
                      markup=False)
        done.wait()
    finally:
        container.close()


def _lifespan(container: Container):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        container.start_background()
        try:
            yield
        finally:
            container.stop_background()

    return lifespan


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
