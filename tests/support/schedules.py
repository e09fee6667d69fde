"""A deployment with an hourly schedule on a real server, and moving its clock: shared by the
scheduler tests. Waiting for real cron minutes would take minutes, so a test moves the
schedule's next firing time into the past through the store's own compare-and-set, exactly as
if that much time had passed, and lets the servers' schedulers find it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelops.adapters.sql.engine import build_engine
from modelops.adapters.sql.uow import SqlUnitOfWorkFactory
from modelops.client import ModelOpsClient
from modelops.services.schedules import upcoming
from support.lifecycle import evaluated_on_server


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
