"""Scheduling and the pipeline store on SQLite and PostgreSQL: firing exactly once per
scheduled time, even with two schedulers on one database, and version status changes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pipeline_helpers import IRIS_DATA, tiny_package

from modelops.adapters.sql.engine import build_engine
from modelops.adapters.sql.uow import SqlUnitOfWorkFactory
from modelops.archives import pack_zip
from modelops.bootstrap import Container
from modelops.domain.entities import Principal
from modelops.domain.errors import AlreadyExists, InvalidInput, InvalidTransition
from modelops.domain.jobs import JobKind
from modelops.domain.model_status import ModelStatus
from modelops.domain.pipelines import PipelineRun, RunTrigger
from modelops.domain.roles import Role
from modelops.services.pipeline_scheduler import PipelineScheduler
from modelops.services.pipelines import PipelineService

ADMIN = Principal(token_id=0, name="tester", role=Role.ADMIN)
T0 = datetime(2030, 1, 31, 10, 2, 30, tzinfo=UTC)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2030, 1, 31, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def seeded(container: Container, tmp_path: Path) -> Container:
    container.projects.create(principal=ADMIN, name="p")
    package_zip, data_zip = tmp_path / "tiny.zip", tmp_path / "data.zip"
    pack_zip(tiny_package(tmp_path), package_zip)
    pack_zip(IRIS_DATA, data_zip)
    container.packages.upload(principal=ADMIN, project="p", name="tiny", archive=package_zip)
    container.datasets.upload_version(principal=ADMIN, project="p", name="data", archive=data_zip)
    container.pipelines.clock = lambda: T0
    return container


@pytest.fixture
def second_scheduler(seeded: Container, database_url: str) -> Iterator[PipelineScheduler]:
    """A scheduler of another server: its own connection pool on the same database."""
    engine = build_engine(database_url)
    uow = SqlUnitOfWorkFactory(engine)
    try:
        yield PipelineScheduler(uow=uow, pipelines=PipelineService(uow=uow, artifacts=seeded.artifacts))
    finally:
        engine.dispose()


def create(container: Container, name: str, **schedule: object) -> None:
    container.pipelines.create(
        principal=ADMIN, project="p", name=name, pipeline_type="training", package="tiny",
        version="1.0", dataset="data", **schedule,  # type: ignore[arg-type]
    )


def race(schedulers: list[PipelineScheduler], now: datetime) -> list[PipelineRun]:
    """Tick every scheduler at the same moment, each in its own thread."""
    barrier = threading.Barrier(len(schedulers))
    fired: list[PipelineRun] = []
    errors: list[BaseException] = []

    def tick(scheduler: PipelineScheduler) -> None:
        barrier.wait()
        try:
            fired.extend(scheduler.tick(now))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=tick, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return fired


def runs_of(container: Container, name: str) -> list[PipelineRun]:
    return [d.run for d in container.pipelines.list_runs(principal=ADMIN, project="p", pipeline=name)]


def test_two_schedulers_fire_each_cron_time_exactly_once(
    seeded: Container, second_scheduler: PipelineScheduler
) -> None:
    create(seeded, "every5", schedule="cron", cron="*/5 * * * *")
    pipeline = seeded.pipelines.get(principal=ADMIN, project="p", name="every5")
    assert pipeline.next_run_at == at(10, 5)
    first = PipelineScheduler(uow=seeded.uow, pipelines=seeded.pipelines)
    schedulers = [first, second_scheduler]

    assert race(schedulers, at(10, 4, 59)) == []
    fired = race(schedulers, at(10, 5, 1))
    assert [r.scheduled_at for r in fired] == [at(10, 5)]
    assert race(schedulers, at(10, 5, 2)) == []
    assert seeded.pipelines.get(principal=ADMIN, project="p", name="every5").next_run_at == at(10, 10)
    assert [r.scheduled_at for r in race(schedulers, at(10, 10))] == [at(10, 10)]

    # Down from 10:10 to 11:00: the missed time fires once, then the schedule resumes from now.
    assert [r.scheduled_at for r in race(schedulers, at(11, 0, 7))] == [at(10, 15)]
    assert seeded.pipelines.get(principal=ADMIN, project="p", name="every5").next_run_at == at(11, 5)

    runs = runs_of(seeded, "every5")
    assert sorted(r.scheduled_at for r in runs if r.scheduled_at) == [at(10, 5), at(10, 10), at(10, 15)]
    assert {r.trigger for r in runs} == {RunTrigger.SCHEDULE}
    with seeded.uow() as uow:
        jobs = uow.jobs.list(project_id=uow.projects.get("p").id, kinds=[JobKind.TRAINING])
    assert sorted(j.id for j in jobs) == sorted(r.job_id for r in runs)  # one job per run


def test_a_once_schedule_fires_once_and_is_done(seeded: Container) -> None:
    # Given with a +02:00 offset: stored and compared as the same instant in UTC.
    paris_summer = timezone(timedelta(hours=2))
    create(seeded, "later", schedule="once", run_at=(T0 + timedelta(hours=1)).astimezone(paris_summer))
    assert seeded.pipelines.get(principal=ADMIN, project="p", name="later").next_run_at == T0 + timedelta(hours=1)
    scheduler = PipelineScheduler(uow=seeded.uow, pipelines=seeded.pipelines)
    assert scheduler.tick(T0 + timedelta(minutes=59)) == []
    assert scheduler.tick(T0) == []
    assert len(scheduler.tick(T0 + timedelta(hours=2))) == 1
    assert scheduler.tick(T0 + timedelta(hours=3)) == []
    assert seeded.pipelines.get(principal=ADMIN, project="p", name="later").next_run_at is None
    (run,) = runs_of(seeded, "later")
    assert run.scheduled_at == T0 + timedelta(hours=1)


def test_the_database_refuses_a_second_run_for_one_scheduled_time(seeded: Container) -> None:
    create(seeded, "manual", schedule="once", run_at=T0 + timedelta(hours=1))
    with seeded.uow() as uow:
        pipeline = uow.pipelines.get(uow.projects.get("p").id, "manual")
        seeded.pipelines.submit_run(uow, pipeline=pipeline, trigger=RunTrigger.SCHEDULE,
                                    scheduled_at=T0, actor="a")
    with pytest.raises(AlreadyExists), seeded.uow() as uow:
        seeded.pipelines.submit_run(uow, pipeline=pipeline, trigger=RunTrigger.SCHEDULE,
                                    scheduled_at=T0, actor="b")
    # The loser's job went with its transaction: one run, one job.
    assert len(runs_of(seeded, "manual")) == 1
    with seeded.uow() as uow:
        assert len(uow.jobs.list(kinds=[JobKind.TRAINING])) == 1
    # Manual runs carry no scheduled time and never collide.
    for _ in range(2):
        seeded.pipelines.run_now(principal=ADMIN, project="p", name="manual")
    assert len(runs_of(seeded, "manual")) == 3


def test_deleting_a_pipeline_keeps_its_runs_and_ends_its_schedule(seeded: Container) -> None:
    create(seeded, "gone", schedule="cron", cron="0 * * * *")
    seeded.pipelines.run_now(principal=ADMIN, project="p", name="gone")
    seeded.pipelines.delete(principal=ADMIN, project="p", name="gone")
    scheduler = PipelineScheduler(uow=seeded.uow, pipelines=seeded.pipelines)
    assert scheduler.tick(T0 + timedelta(days=1)) == []
    (detail,) = seeded.pipelines.list_runs(principal=ADMIN, project="p")
    assert detail.run.pipeline == "gone" and detail.run.pipeline_id is None
    create(seeded, "gone")  # the name is free again


def test_version_status_changes_follow_the_transition_table(seeded: Container) -> None:
    with seeded.uow() as uow:
        package = uow.packages.get(uow.projects.get("p").id, "tiny")
        version = uow.packages.get_version(package.id, 1, 0)
        assert version.status == ModelStatus.UPLOADED
        moved = uow.packages.transition_version(
            version.id, ModelStatus.EVALUATED, fields={"metrics": {"score": 0.5}}
        )
        assert moved.status == ModelStatus.EVALUATED and moved.metrics == {"score": 0.5}
        with pytest.raises(InvalidInput, match="needs a reason"):
            uow.packages.transition_version(version.id, ModelStatus.APPROVED)
        uow.packages.transition_version(version.id, ModelStatus.REJECTED, reason="too weak")
    with pytest.raises(InvalidTransition, match="'rejected'; cannot move to 'evaluated'"), seeded.uow() as uow:
        uow.packages.transition_version(version.id, ModelStatus.EVALUATED)
    with seeded.uow() as uow:
        assert uow.packages.get_version_by_id(version.id).status == ModelStatus.REJECTED
    # An evaluation pipeline of a rejected version is refused when it is created.
    with pytest.raises(InvalidTransition):
        seeded.pipelines.create(
            principal=ADMIN, project="p", name="late", pipeline_type="evaluation", package="tiny",
            version="1.0", dataset="data",
        )
