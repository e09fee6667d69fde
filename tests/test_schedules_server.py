"""The deployment scheduler in real server processes: a restart fires the ticks it missed once,
and two servers on one database (SQLite file or PostgreSQL) never fire a tick twice.

Waiting for real cron minutes would take minutes, so a test moves the schedule's next firing
time into the past through the store's own compare-and-set, exactly as if that much time had
passed, and lets the servers' schedulers find it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import RunningServer, start_server
from support.schedules import (
    deploy_hourly,
    hourly_cron,
    move_next_run,
    past_ticks,
    scheduled_runs,
    wait_for,
)


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
