"""Cron schedules with a time zone, and the deployment scheduler on SQLite and PostgreSQL:
one run per scheduled time, missed times coalesced, two schedulers never fire a time twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.lifecycle import ADMIN, approve, seed_container

from modelops.adapters.sql.engine import build_engine
from modelops.adapters.sql.uow import SqlUnitOfWorkFactory
from modelops.bootstrap import Container
from modelops.domain.errors import InvalidInput
from modelops.services.batch_prediction import DeploymentScheduler
from modelops.services.schedules import following, next_fire_time, upcoming

T0 = datetime(2030, 1, 31, 10, 2, 30, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- cron with a time zone


def test_a_daily_paris_time_follows_daylight_saving() -> None:
    winter = upcoming("0 3 * * *", "Europe/Paris", after=utc(2030, 3, 29, 12), count=3)
    assert winter == [utc(2030, 3, 30, 2), utc(2030, 3, 31, 1), utc(2030, 4, 1, 1)]


def test_a_repeated_hour_fires_once_and_a_skipped_one_fires_after_the_jump() -> None:
    autumn = upcoming("30 2 * * *", "Europe/Paris", after=utc(2030, 10, 26, 12), count=2)
    assert autumn == [utc(2030, 10, 27, 0, 30), utc(2030, 10, 28, 1, 30)]  # 02:30 happens twice
    spring = next_fire_time("30 2 * * *", "Europe/Paris", utc(2030, 3, 30, 12))
    assert spring == utc(2030, 3, 31, 1, 30)  # 02:30 does not exist: 03:30 local


def test_missed_times_collapse_into_the_next_one_from_now() -> None:
    assert following("0 * * * *", "UTC", fired=utc(2030, 1, 1, 0), now=utc(2030, 1, 1, 5, 10)) == utc(2030, 1, 1, 6)


@pytest.mark.parametrize(("cron", "zone", "message"), [
    ("0 3 * *", "UTC", "five fields"), ("0 3 * * * *", "UTC", "five fields"),
    ("61 * * * *", "UTC", "invalid cron"), ("0 3 * * *", "Mars/Olympus", "unknown time zone"),
])
def test_bad_schedules_are_refused(cron: str, zone: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        next_fire_time(cron, zone, T0)


# --------------------------------------------------------------------------- the deployment scheduler


@pytest.fixture
def deployed(container: Container, tmp_path: Path) -> Container:
    """Deployment 'tiny-1.0' scoring iris every ten minutes (UTC), deployed at T0."""
    (version,) = seed_container(container, tmp_path)
    approve(container, version)
    container.lifecycle.deployments.clock = lambda: T0
    container.lifecycle.deployments.deploy(principal=ADMIN, project="p", package="tiny", version="1.0",
                                           dataset="iris", folder="test", cron="*/10 * * * *")
    return container


@pytest.fixture
def other_scheduler(deployed: Container, database_url: str) -> Iterator[DeploymentScheduler]:
    """The scheduler of a second server: its own connection pool on the same database."""
    engine = build_engine(database_url)
    try:
        yield DeploymentScheduler(uow=SqlUnitOfWorkFactory(engine))
    finally:
        engine.dispose()


def runs(container: Container) -> list[datetime | None]:
    found = container.lifecycle.batch.runs(principal=ADMIN, project="p", deployment="tiny-1.0")
    return sorted(r.scheduled_at for r in found if r.scheduled_at)


def next_run(container: Container) -> datetime | None:
    return container.lifecycle.deployments.get(principal=ADMIN, project="p", deployment="tiny-1.0").next_run_at


def test_a_due_time_fires_one_queued_batch_job_with_its_audit_event(deployed: Container) -> None:
    scheduler = deployed.lifecycle.scheduler
    assert next_run(deployed) == utc(2030, 1, 31, 10, 10)
    assert scheduler.tick(utc(2030, 1, 31, 10, 9, 59)) == []
    (fired,) = scheduler.tick(utc(2030, 1, 31, 10, 10, 1))
    assert fired.run.scheduled_at == utc(2030, 1, 31, 10, 10) and fired.job.status.value == "queued"
    assert fired.job.parameters["dataset_version"] == 1 and fired.job.actor == "scheduler"
    assert scheduler.tick(utc(2030, 1, 31, 10, 10, 2)) == []
    assert next_run(deployed) == utc(2030, 1, 31, 10, 20)
    (event,) = deployed.lifecycle.audit.list(principal=ADMIN, project="p", actions=["batch_run_started"])
    assert event.actor == "scheduler" and event.job_id == fired.job.id


def test_times_missed_while_down_run_once_then_the_schedule_goes_on(deployed: Container) -> None:
    back = utc(2030, 1, 31, 13, 37)  # down for more than three hours: ~20 missed times
    fired = deployed.lifecycle.scheduler.tick(back)
    assert [f.run.scheduled_at for f in fired] == [utc(2030, 1, 31, 10, 10)]
    assert next_run(deployed) == utc(2030, 1, 31, 13, 40)
    assert deployed.lifecycle.scheduler.tick(back + timedelta(seconds=5)) == []


def test_two_schedulers_on_one_database_fire_each_time_once(
    deployed: Container, other_scheduler: DeploymentScheduler
) -> None:
    start = threading.Barrier(2)
    fired: list[object] = []

    def tick(scheduler: DeploymentScheduler, now: datetime) -> None:
        start.wait()
        fired.extend(scheduler.tick(now))

    for minute in (10, 20, 30):
        now = utc(2030, 1, 31, 10, minute, 1)
        threads = [threading.Thread(target=tick, args=(s, now)) for s in (deployed.lifecycle.scheduler, other_scheduler)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        start.reset()
    assert runs(deployed) == [utc(2030, 1, 31, 10, m) for m in (10, 20, 30)]
    assert len(fired) == 3


def test_a_stale_scheduler_is_stopped_by_the_unique_run_key(deployed: Container) -> None:
    scheduler = deployed.lifecycle.scheduler
    scheduler.tick(utc(2030, 1, 31, 10, 10, 1))
    with deployed.uow() as uow:  # as if a scheduler had read the old time before the advance
        found = uow.deployments.find(uow.projects.get("p").id, "tiny-1.0")
        assert uow.deployments.advance(found.id, expected=utc(2030, 1, 31, 10, 20),
                                       next_run_at=utc(2030, 1, 31, 10, 10))
    assert scheduler.tick(utc(2030, 1, 31, 10, 10, 5)) == []
    assert runs(deployed) == [utc(2030, 1, 31, 10, 10)]


def test_retiring_ends_the_schedule(deployed: Container) -> None:
    deployed.lifecycle.deployments.retire(principal=ADMIN, project="p", deployment="tiny-1.0", reason="done")
    assert deployed.lifecycle.scheduler.tick(utc(2030, 2, 1)) == []
    view = deployed.lifecycle.deployments.schedule(principal=ADMIN, project="p", deployment="tiny-1.0")
    assert view.upcoming == [] and runs(deployed) == []
