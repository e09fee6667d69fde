"""Fires scheduled pipelines: once at a given time, or at every match of a cron expression.

Each firing happens in one transaction that moves the pipeline's next firing time by
compare-and-set, queues the run's job and inserts the run keyed by (pipeline, scheduled
time). Two schedulers (two servers on one database) that see the same due pipeline therefore
fire it once: the loser's compare-and-set matches nothing, and should it not, the unique key
refuses its run. A server that was down fires a missed time once when it is back, then
continues from the present, rather than replaying every missed time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from modelops.domain.errors import AlreadyExists, InvalidInput, ModelOpsError
from modelops.domain.pipelines import Pipeline, PipelineRun, RunTrigger, Schedule, ScheduleKind
from modelops.ports import UnitOfWorkFactory
from modelops.services.schedules import next_fire_time

if TYPE_CHECKING:
    from modelops.services.pipelines import PipelineService

log = logging.getLogger(__name__)
SCHEDULER_ACTOR = "scheduler"


def next_cron_time(expression: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that the five-field expression matches (UTC)."""
    return next_fire_time(expression, "UTC", after)  # the platform's one cron rule


def first_run_at(schedule: Schedule, *, now: datetime) -> datetime | None:
    if schedule.kind is ScheduleKind.ONCE:
        return schedule.run_at
    if schedule.kind is ScheduleKind.CRON:
        assert schedule.cron is not None
        return next_cron_time(schedule.cron, now)
    return None


def following_run_at(pipeline: Pipeline, *, fired: datetime, now: datetime) -> datetime | None:
    """When a pipeline fires next after firing for ``fired``; None once it is done."""
    if pipeline.schedule.kind is not ScheduleKind.CRON or not pipeline.schedule.cron:
        return None
    return next_cron_time(pipeline.schedule.cron, max(fired, now))


class PipelineScheduler:
    """A background part of the server: looks for due pipelines every ``interval`` seconds."""

    def __init__(
        self, *, uow: UnitOfWorkFactory, pipelines: PipelineService, interval: float = 1.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.uow = uow
        self.pipelines = pipelines
        self.interval = interval
        self.clock = clock or (lambda: datetime.now(UTC))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: datetime | None = None) -> list[PipelineRun]:
        """Fire every pipeline due at ``now``; returns the runs this scheduler fired."""
        now = now or self.clock()
        with self.uow() as uow:
            due = uow.pipelines.due(now)
        fired = []
        for pipeline in due:
            run = self._fire(pipeline, now)
            if run is not None:
                fired.append(run)
        if fired:
            self.pipelines.wake()
        return fired

    def _fire(self, pipeline: Pipeline, now: datetime) -> PipelineRun | None:
        scheduled = pipeline.next_run_at
        assert scheduled is not None
        try:
            following = following_run_at(pipeline, fired=scheduled, now=now)
        except InvalidInput:
            following = None  # an expression that no longer parses stops its schedule
        try:
            with self.uow() as uow:
                if not uow.pipelines.advance(pipeline.id, expected=scheduled, next_run_at=following):
                    return None  # another scheduler fired it (or it was deleted) meanwhile
                return self.pipelines.submit_run(
                    uow, pipeline=pipeline, trigger=RunTrigger.SCHEDULE, scheduled_at=scheduled,
                    actor=SCHEDULER_ACTOR,
                )
        except AlreadyExists:
            return None
        except ModelOpsError as exc:
            # The run cannot be queued (its dataset is gone, …): skip this time, keep the
            # schedule, so one bad firing neither blocks the loop nor repeats every tick.
            log.warning("pipeline %s: scheduled run at %s skipped: %s", pipeline.name, scheduled, exc)
            with self.uow() as uow:
                uow.pipelines.advance(pipeline.id, expected=scheduled, next_run_at=following)
            return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # a database hiccup must not end the scheduler
                log.exception("pipeline scheduler tick failed")

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="pipeline-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
