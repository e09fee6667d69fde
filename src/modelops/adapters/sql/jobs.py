"""SQL job store: the durable queue, compare-and-set transitions with their events, and logs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from modelops.adapters.sql import convert
from modelops.adapters.sql import tables as t
from modelops.adapters.sql.stores import _SqlStore
from modelops.domain.errors import InvalidTransition, NotFound
from modelops.domain.jobs import (
    Job,
    JobEvent,
    JobKind,
    JobStatus,
    LogLevel,
    LogLine,
    check_job_transition,
)

# Timestamps set by reaching a status, so the job row tells its own story.
_STAMPS = {
    JobStatus.QUEUED: "queued_at",
    JobStatus.RUNNING: "started_at",
    JobStatus.COMPLETED: "ended_at",
    JobStatus.FAILED: "ended_at",
    JobStatus.TIMED_OUT: "ended_at",
    JobStatus.CANCELLED: "ended_at",
}

_LEVELS = [level for level in LogLevel]


class SqlJobStore(_SqlStore):
    def add(
        self, *, project_id: int, kind: JobKind, actor: str, parameters: dict[str, Any],
        target_type: str | None, target_id: int | None, timeout_seconds: float | None,
    ) -> Job:
        row = t.JobRow(
            project_id=project_id, kind=kind.value, status=JobStatus.CREATED.value, actor=actor,
            parameters=parameters, target_type=target_type, target_id=target_id,
            timeout_seconds=timeout_seconds,
        )
        self.session.add(row)
        self.session.flush()
        self._event(row.id, None, JobStatus.CREATED, actor, {"kind": kind.value})
        return self.transition(row.id, JobStatus.QUEUED, actor=actor)

    def _row(self, job_id: int) -> t.JobRow:
        row = self.session.get(t.JobRow, job_id, populate_existing=True)
        if row is None:
            raise NotFound(f"job {job_id} not found")
        return row

    def get(self, job_id: int) -> Job:
        return convert.job(self._row(job_id))

    def list(
        self, *, project_id: int | None = None, kinds: Sequence[JobKind] = (),
        statuses: Sequence[JobStatus] = (), limit: int = 200,
    ) -> list[Job]:
        query = select(t.JobRow).order_by(t.JobRow.id.desc()).limit(limit)
        if project_id is not None:
            query = query.where(t.JobRow.project_id == project_id)
        if kinds:
            query = query.where(t.JobRow.kind.in_([k.value for k in kinds]))
        if statuses:
            query = query.where(t.JobRow.status.in_([s.value for s in statuses]))
        return [convert.job(r) for r in self.session.scalars(query)]

    def transition(
        self, job_id: int, to: JobStatus, *, actor: str, detail: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Job:
        while True:
            current = JobStatus(
                self.session.scalar(select(t.JobRow.status).where(t.JobRow.id == job_id))
                or _missing(job_id)
            )
            check_job_transition(current, to, job_id=job_id)
            values: dict[str, Any] = dict(fields or {})
            values["status"] = to.value
            stamp = _STAMPS.get(to)
            if stamp and stamp not in values:
                values[stamp] = t.utcnow()
            # Compare-and-set on the status we read: a concurrent winner makes this match
            # nothing, and the loop re-reads and lets the table refuse the loser.
            result = self.session.execute(
                update(t.JobRow)
                .where(t.JobRow.id == job_id, t.JobRow.status == current.value)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                self._event(job_id, current, to, actor, detail or {})
                return convert.job(self._row(job_id))

    def _event(
        self, job_id: int, from_status: JobStatus | None, to: JobStatus, actor: str,
        detail: dict[str, Any],
    ) -> None:
        self.session.add(
            t.JobEventRow(
                job_id=job_id, from_status=from_status.value if from_status else None,
                to_status=to.value, actor=actor, detail=detail,
            )
        )
        self.session.flush()

    def update_fields(self, job_id: int, fields: dict[str, Any]) -> None:
        self.session.execute(
            update(t.JobRow).where(t.JobRow.id == job_id).values(**fields)
            .execution_options(synchronize_session=False)
        )

    def claim_next_queued(self, *, actor: str, exclude_kinds: Sequence[JobKind] = ()) -> Job | None:
        query = (
            select(t.JobRow.id)
            .where(t.JobRow.status == JobStatus.QUEUED.value)
            .order_by(t.JobRow.id)
            .limit(5)
        )
        if exclude_kinds:
            query = query.where(t.JobRow.kind.not_in([k.value for k in exclude_kinds]))
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for job_id in list(self.session.scalars(query)):
            try:
                return self.transition(job_id, JobStatus.RUNNING, actor=actor)
            except InvalidTransition:
                continue  # another worker took it
        return None

    def events(self, job_id: int) -> list[JobEvent]:
        self._row(job_id)
        rows = self.session.scalars(
            select(t.JobEventRow).where(t.JobEventRow.job_id == job_id).order_by(t.JobEventRow.id)
        )
        return [convert.job_event(r) for r in rows]

    def event(self, job_id: int, event_id: int) -> JobEvent:
        row = self.session.get(t.JobEventRow, event_id)
        if row is None or row.job_id != job_id:
            raise NotFound(f"event {event_id} of job {job_id} not found")
        return convert.job_event(row)

    def append_logs(self, job_id: int, lines: Sequence[tuple[datetime, str, LogLevel, str]]) -> None:
        if not lines:
            return
        last = self.session.scalar(
            update(t.JobRow)
            .where(t.JobRow.id == job_id)
            .values(log_seq=t.JobRow.log_seq + len(lines))
            .returning(t.JobRow.log_seq)
        )
        if last is None:
            raise NotFound(f"job {job_id} not found")
        first = last - len(lines) + 1
        self.session.execute(
            insert(t.JobLogRow),
            [
                {"job_id": job_id, "seq": first + i, "at": at, "stream": stream,
                 "level": level.value, "text": text}
                for i, (at, stream, level, text) in enumerate(lines)
            ],
        )

    def logs(
        self, job_id: int, *, after_seq: int = 0, min_level: LogLevel | None = None,
        limit: int = 1000,
    ) -> list[LogLine]:
        query = (
            select(t.JobLogRow)
            .where(t.JobLogRow.job_id == job_id, t.JobLogRow.seq > after_seq)
            .order_by(t.JobLogRow.seq)
            .limit(limit)
        )
        if min_level is not None:
            query = query.where(t.JobLogRow.level.in_([lv.value for lv in _LEVELS if lv.rank >= min_level.rank]))
        return [convert.log_line(r) for r in self.session.scalars(query)]


def _missing(job_id: int) -> str:
    raise NotFound(f"job {job_id} not found")
