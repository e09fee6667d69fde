"""The deployment scheduler in real server processes: a restart fires the ticks it missed once,
and two servers on one database (SQLite file or PostgreSQL) never fire a tick twice.

Waiting for real cron minutes would take minutes, so a test moves the schedule's next firing
time into the past through the store's own compare-and-set, exactly as if that much time had
passed, and lets the servers' schedulers find it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import RunningServer, start_server
from support.lifecycle import evaluated_on_server

from modelops.adapters.sql.engine import build_engine
from modelops.adapters.sql.uow import SqlUnitOfWorkFactory
from modelops.client import ModelOpsClient
from modelops.services.schedules import upcoming


def hourly_cron() -> str:
    """Hourly, half an hour away from now: it never fires by itself while a test runs."""
    return f"{(datetime.now(UTC).minute + 30) % 60} * * * *"


def deploy_hourly(client: ModelOpsClient, tmp_path: Path, cron: str) -> None:
    version = evaluated_on_server(client, "sched", tmp_path)
    client.lifecycle.approve("sched", "tiny", version, reason="ok")
    client.deployments.create("sched", "tiny", version, name="nightly", dataset="iris", folder="test",
                              cron=cron)


def past_ticks(cron: str, count: int) -> list[datetime]:
    """``count`` genuine firing times of ``cron`` from about four hours ago, all past."""
    return upcoming(cron, "UTC", after=datetime.now(UTC) - timedelta(hours=4), count=count)


def move_next_run(database_url: str, when: datetime) -> None:
    """Set the schedule's next firing time, as if the clock had moved past it."""
    engine = build_engine(database_url)
    try:
        with SqlUnitOfWorkFactory(engine)() as uow:
            found = uow.deployments.find(uow.projects.get("sched").id, "nightly")
            assert found.next_run_at is not None
            assert uow.deployments.advance(found.id, expected=found.next_run_at, next_run_at=when)
    finally:
        engine.dispose()


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def scheduled_runs(client: ModelOpsClient) -> list[str]:
    return sorted(r["scheduled_at"] for r in client.deployments.runs("sched", "nightly") if r["scheduled_at"])


def test_a_restarted_server_runs_the_missed_ticks_once(tmp_path: Path) -> None:
    home, cron = tmp_path / "home", hourly_cron()
    first = start_server(home)
    try:
        with first.client() as client:
            deploy_hourly(client, tmp_path, cron)
    finally:
        first.stop()
    # As if the server had been down for hours: three or four ticks of the schedule were missed.
    missed = past_ticks(cron, 1)[0]
    move_next_run(f"sqlite:///{home / 'modelops.db'}", missed)
    second = start_server(home)
    try:
        with second.client() as client:
            wait_for(lambda: len(scheduled_runs(client)) == 1)
            (run,) = client.deployments.runs("sched", "nightly")
            assert datetime.fromisoformat(run["scheduled_at"]) == missed
            job = client.jobs.wait(run["job_id"], timeout=120)
            assert job["status"] == "completed" and job["actor"] == "scheduler"
            upcoming = datetime.fromisoformat(client.deployments.get("sched", "nightly")["next_run_at"])
            assert upcoming > datetime.now(UTC)  # coalesced: on from the present, no stampede
            time.sleep(2.5)  # a few more scheduler ticks
            assert len(scheduled_runs(client)) == 1
    finally:
        second.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_servers_on_one_database_fire_each_tick_once(backend: str, tmp_path: Path,
                                                         request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite"
           else str(request.getfixturevalue("pg_schema_url")))
    shared = {"MODELOPS_DATABASE_URL": url, "MODELOPS_ARTIFACTS_URL": str(tmp_path / "artifacts")}
    servers: list[RunningServer] = []
    try:
        servers.append(start_server(tmp_path / "a", extra_env=shared))
        # The first server made the admin token in the shared database; the second reuses it.
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "admin.token").write_text(servers[0].token)
        servers.append(start_server(tmp_path / "b", extra_env=shared))
        with servers[0].client() as client:
            cron = hourly_cron()
            deploy_hourly(client, tmp_path, cron)
            ticks = past_ticks(cron, 2)
            for done, tick in enumerate(ticks, start=1):
                move_next_run(url, tick)  # both schedulers see it due at their next tick
                wait_for(lambda n=done: len(scheduled_runs(client)) >= n)
            time.sleep(1.5)  # let both schedulers tick a few more times
            assert [datetime.fromisoformat(t) for t in scheduled_runs(client)] == ticks
            started = client.audit.list("sched", actions=["batch_run_started"])
            assert len(started) == 2 and {e["actor"] for e in started} == {"scheduler"}
    finally:
        for running in servers:
            running.stop()
