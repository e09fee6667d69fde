"""Shared fixtures: real SQLite files and real PostgreSQL schemas (one per test), real servers.

PostgreSQL tests read MODELOPS_TEST_DATABASE_URL and skip, with the reason, without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelops.bootstrap import Container, build_container
from modelops.client import ModelOpsClient
from modelops.settings import Settings

PG_ENV = "MODELOPS_TEST_DATABASE_URL"
REPO = Path(__file__).resolve().parent.parent
MODELOPS_BIN = str(Path(sys.executable).with_name("modelops"))


def pg_base_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    base = pg_base_url()
    if not base:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL to test against")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Parametrises a test over both metadata backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", max_concurrent_jobs=2)


@pytest.fixture
def container(tmp_path: Path, database_url: str) -> Iterator[Container]:
    """A fully built container (migrated) on SQLite and on PostgreSQL."""
    built = build_container(Settings(home=tmp_path / "home", database_url=database_url))
    try:
        yield built
    finally:
        built.close()


@dataclass
class RunningServer:
    url: str
    token: str
    home: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str]

    def client(self, token: str | None = None) -> ModelOpsClient:
        return ModelOpsClient(self.url, token or self.token)

    def cli(self, *args: str, token: str | None = None, timeout: float = 120,
            input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real ``modelops`` command against this server."""
        env = dict(self.env, MODELOPS_URL=self.url, MODELOPS_TOKEN=token or self.token,
                   COLUMNS="200", NO_COLOR="1")
        return subprocess.run([MODELOPS_BIN, *args], env=env, capture_output=True, text=True,
                              timeout=timeout, input=input.decode() if input else None)

    def stop(self, sig: int = 15) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(home: Path, *, extra_env: dict[str, str] | None = None,
                 timeout: float = 30) -> RunningServer:
    """Start ``modelops up --port 0`` as a real process and wait until it answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELOPS_")}
    # Let the server and CLI processes reuse compiled bytecode: recompiling ~130 modules per
    # CLI call costs about a second of CPU each.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({"MODELOPS_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    env.update(extra_env or {})
    server_file = home / "server.json"
    if server_file.exists():
        server_file.unlink()
    log = open(home.parent / f"server-{uuid.uuid4().hex[:6]}.log", "wb")  # noqa: SIM115
    home.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([MODELOPS_BIN, "up", "--port", "0"], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early; see {log.name}:\n" + Path(log.name).read_text())
        try:
            info = json.loads(server_file.read_text())
            if info.get("pid") == process.pid:
                import httpx

                url = info["url"]
                if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                    token = (home / "admin.token").read_text().strip()
                    return RunningServer(url=url, token=token, home=home, process=process, env=env)
        except (OSError, ValueError, KeyError):
            pass
        except Exception:  # connection refused while starting
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start in time:\n" + Path(log.name).read_text())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A real server process on SQLite in a fresh data directory."""
    running = start_server(tmp_path / "home")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[object]:
    """Factory for servers with extra environment (e.g. PostgreSQL), all stopped at the end."""
    started: list[RunningServer] = []

    def factory(home: Path | None = None, **extra_env: str) -> RunningServer:
        running = start_server(home or tmp_path / f"home-{len(started)}", extra_env=extra_env)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop()
