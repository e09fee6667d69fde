"""What the engine writes down about a job: its output lines, its own notes, its ending."""

from __future__ import annotations

import shlex
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelops.domain.errors import InvalidTransition
from modelops.domain.jobs import Job, JobStatus, LogLevel
from modelops.domain.logs import LogClassifier
from modelops.ports import Executor, ExecutorOutcome, UnitOfWorkFactory

ENGINE_ACTOR = "engine"
# Phases of a job in the engine's memory (not statuses): inputs being prepared, process
# running, process ended and being recorded.
PREPARING, RUNNING_PHASE, ENDING = "preparing", "running", "ending"


def now() -> datetime:
    return datetime.now(UTC)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def command_text(argv: list[str]) -> str:
    return " ".join(arg if arg == "{python}" else shlex.quote(arg) for arg in argv)


@dataclass
class ActiveJob:
    """What the engine holds in memory for a job it is running (rebuilt on recovery)."""

    job: Job
    phase: str = PREPARING
    worker_ref: str | None = None
    cursor: str | None = None
    stop_sent: bool = False
    timed_out: bool = False
    classifiers: dict[str, LogClassifier] = field(default_factory=dict)

    @property
    def deadline(self) -> float | None:
        job = self.job
        if job.timeout_seconds is None or job.started_at is None:
            return None
        return job.started_at.timestamp() + job.timeout_seconds

    def classify(self, stream: str, text: str) -> LogLevel:
        return self.classifiers.setdefault(stream, LogClassifier()).classify(text)


class JobRecorder:
    """Writes a job's logs and endings; every terminal change carries its closing log line."""

    def __init__(self, *, uow: UnitOfWorkFactory, executor: Executor) -> None:
        self.uow = uow
        self.executor = executor

    def pump(self, active: ActiveJob, *, final: bool = False) -> None:
        """Move new output lines of a job into the database, classified, with the cursor."""
        assert active.worker_ref is not None
        while True:
            batch = self.executor.stream_logs(active.worker_ref, cursor=active.cursor, final=final)
            if batch.lines or batch.cursor != active.cursor:
                read_at = now()
                rows = [(read_at, stream, active.classify(stream, text), text) for stream, text in batch.lines]
                with self.uow() as uow:
                    uow.jobs.append_logs(active.job.id, rows, cursor=batch.cursor)
                active.cursor = batch.cursor
            if not (final and batch.more):
                return

    def system_log(self, job_id: int, level: LogLevel, text: str) -> None:
        with self.uow() as uow:
            uow.jobs.append_logs(job_id, [(now(), "system", level, text)])

    def end(
        self, job_id: int, target: JobStatus, *, error: str | None = None,
        detail: dict[str, Any] | None = None, fields: dict[str, Any] | None = None,
    ) -> None:
        """Move a job to a terminal status with its closing log line, in one transaction. If
        a stop won the race the job ends cancelled instead."""
        values = dict(fields or {})
        event = dict(detail or {})
        if error is not None:
            values["error"] = error
            event["error"] = error
        with self.uow() as uow:
            try:
                job = uow.jobs.transition(job_id, target, actor=ENGINE_ACTOR, detail=event, fields=values)
            except InvalidTransition:
                current = uow.jobs.get(job_id).status
                if current is JobStatus.RUNNING and target is JobStatus.CANCELLED:
                    # The executor stopped a job nobody asked to stop: record the stop.
                    uow.jobs.transition(job_id, JobStatus.CANCELLING, actor=ENGINE_ACTOR,
                                        detail={"reason": "stopped by the executor"})
                elif current is not JobStatus.CANCELLING:
                    return
                values.pop("error", None)
                values.pop("result", None)
                job = uow.jobs.transition(job_id, JobStatus.CANCELLED, actor=ENGINE_ACTOR,
                                          detail={"reason": "stop requested"}, fields=values)
            level = LogLevel.INFO if job.status in (JobStatus.COMPLETED, JobStatus.CANCELLED) else LogLevel.ERROR
            text = f"job {job.status.value}" + (f": {job.error}" if job.error else "")
            uow.jobs.append_logs(job_id, [(now(), "system", level, text)])

    def failure_reason(self, job_id: int, outcome: ExecutorOutcome) -> str:
        if outcome.signal is not None:
            return f"killed by signal {outcome.signal} ({_signal_name(outcome.signal)})"
        with self.uow() as uow:
            last = uow.jobs.last_error(job_id)
        return last or f"exited with code {outcome.exit_code}"
