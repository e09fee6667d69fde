"""SQL job store: the durable queue, compare-and-set transitions with their events, and logs."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Interval, Table, Update, bindparam, func, literal, select

from modelops.adapters.sql import convert
from modelops.adapters.sql import tables as t
from modelops.adapters.sql.stores import _SqlStore
from modelops.domain.errors import InvalidTransition, NotFound
from modelops.domain.jobs import (
    Engine,
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

# The engine's hot path (claim, transition, events, logs) runs prebuilt statements with bound
# parameters: building and cache-keying a statement costs more CPU than running it.
# Table-level (Core) statements, not ORM-enabled ones: the ORM's bulk-update machinery costs
# more than the statement itself.
# Declarative ``__table__`` is typed as a FromClause; these are plain Tables (insert/update).
_JOBS = cast(Table, t.JobRow.__table__)
_JOB_COLUMNS = tuple(_JOBS.columns)
_ENGINES = cast(Table, t.EngineRow.__table__)
_LIVE = (JobStatus.RUNNING.value, JobStatus.CANCELLING.value)
_INSERT_EVENT = cast(Table, t.JobEventRow.__table__).insert()
_INSERT_LOGS = cast(Table, t.JobLogRow.__table__).insert()
_QUEUED_IDS = (
    select(_JOBS.c.id).where(_JOBS.c.status == JobStatus.QUEUED.value).order_by(_JOBS.c.id)
    .limit(bindparam("b_limit"))
)
_BUMP_LOG_SEQ = (
    _JOBS.update().where(_JOBS.c.id == bindparam("b_id"))
    .values(log_seq=_JOBS.c.log_seq + bindparam("b_count"))
    .returning(_JOBS.c.log_seq)
)
_BUMP_LOG_SEQ_AND_CURSOR = _BUMP_LOG_SEQ.values(log_cursor=bindparam("b_cursor"))


@functools.lru_cache(maxsize=64)
def _compare_and_set(keys: tuple[str, ...]) -> Update:
    """``UPDATE jobs SET <keys> WHERE id = :b_id AND status = :b_from RETURNING *``."""
    return (
        _JOBS.update()
        .where(_JOBS.c.id == bindparam("b_id"), _JOBS.c.status == bindparam("b_from"))
        .values({key: bindparam(f"v_{key}", type_=_JOBS.c[key].type) for key in keys})
        .returning(*_JOB_COLUMNS)
    )


class SqlJobStore(_SqlStore):
    def add(
        self, *, project_id: int, kind: JobKind, actor: str, parameters: dict[str, Any],
        target_type: str | None, target_id: int | None, timeout_seconds: float | None,
    ) -> Job:
        # Born queued: created and queued are two events of one insert, which keeps submit
        # cheap. The transition table still has the last word on the second step. Core
        # statements, not ORM flushes: this is the hot path of every submit.
        check_job_transition(JobStatus.CREATED, JobStatus.QUEUED, job_id=0)
        now = t.utcnow()
        values: dict[str, Any] = {
            "project_id": project_id, "kind": kind.value, "status": JobStatus.QUEUED.value,
            "actor": actor, "parameters": parameters, "target_type": target_type,
            "target_id": target_id, "timeout_seconds": timeout_seconds, "created_at": now,
            "queued_at": now, "log_seq": 0, "result": {},
        }
        job_id = self.session.execute(_JOBS.insert().values(**values).returning(_JOBS.c.id)).scalar_one()
        self.session.execute(
            _INSERT_EVENT,
            [
                {"job_id": job_id, "at": now, "from_status": None,
                 "to_status": JobStatus.CREATED.value, "actor": actor, "detail": {"kind": kind.value}},
                {"job_id": job_id, "at": now, "from_status": JobStatus.CREATED.value,
                 "to_status": JobStatus.QUEUED.value, "actor": actor, "detail": {}},
            ],
        )
        return Job(
            id=job_id, project_id=project_id, kind=kind, status=JobStatus.QUEUED, actor=actor,
            created_at=now, parameters=dict(parameters), target_type=target_type,
            target_id=target_id, timeout_seconds=timeout_seconds, queued_at=now,
        )

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
        fields: dict[str, Any] | None = None, expected: JobStatus | None = None,
    ) -> Job:
        while True:
            # ``expected`` saves the first read when the caller knows the likely status; a
            # wrong guess only costs a second round.
            current = expected or JobStatus(
                self.session.scalar(select(t.JobRow.status).where(t.JobRow.id == job_id))
                or _missing(job_id)
            )
            expected = None
            check_job_transition(current, to, job_id=job_id)
            values: dict[str, Any] = dict(fields or {})
            values["status"] = to.value
            stamp = _STAMPS.get(to)
            if stamp and stamp not in values:
                values[stamp] = t.utcnow()
            # Compare-and-set on the status we read: a concurrent winner makes this match
            # nothing, and the loop re-reads and lets the table refuse the loser. RETURNING
            # hands back the new row without another read.
            keys = tuple(sorted(values))
            params = {f"v_{key}": values[key] for key in keys}
            row = self.session.execute(
                _compare_and_set(keys), {"b_id": job_id, "b_from": current.value, **params}
            ).one_or_none()
            if row is not None:
                self._event(job_id, current, to, actor, detail or {})
                return convert.job(cast(t.JobRow, row))

    def _event(
        self, job_id: int, from_status: JobStatus | None, to: JobStatus, actor: str,
        detail: dict[str, Any],
    ) -> None:
        self.session.execute(
            _INSERT_EVENT,
            {"job_id": job_id, "from_status": from_status.value if from_status else None,
             "to_status": to.value, "actor": actor, "detail": detail, "at": t.utcnow()},
        )

    def claim_queued(
        self, *, actor: str, limit: int, engine: str | None = None,
        work_dirs: Callable[[int], str] | None = None,
    ) -> builtins.list[Job]:
        query = _QUEUED_IDS
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed = []
        for job_id in list(self.session.scalars(query, {"b_limit": limit})):
            fields: dict[str, Any] = {"engine": engine}
            if work_dirs is not None:
                fields["work_dir"] = work_dirs(job_id)
            try:
                claimed.append(self.transition(
                    job_id, JobStatus.RUNNING, actor=actor, expected=JobStatus.QUEUED,
                    fields=fields, detail={"engine": engine} if engine else None,
                ))
            except InvalidTransition:
                continue  # stopped or taken meanwhile
        return claimed

    # ------------------------------------------------------------------ engine ownership

    def _now(self) -> Any:
        """The database's clock on PostgreSQL, so engines on machines whose clocks disagree
        still agree on whose heartbeat is old; SQLite lives on one machine."""
        if self._dialect() == "postgresql":
            return func.now()
        return t.utcnow()

    def _ago(self, seconds: float) -> Any:
        if self._dialect() == "postgresql":
            return func.now() - literal(timedelta(seconds=seconds), type_=Interval())
        return t.utcnow() - timedelta(seconds=seconds)

    def _dialect(self) -> str:
        bind = self.session.bind
        return bind.dialect.name if bind is not None else ""

    def lock_engine(self, name: str) -> Engine | None:
        """The engine row of ``name``, locked until the transaction ends (None if it is new)."""
        row = self.session.get(t.EngineRow, name, populate_existing=True, with_for_update=True)
        if row is None:
            return None
        silent = self.session.scalar(select(self._now() - t.EngineRow.heartbeat_at).where(
            t.EngineRow.name == name)) if self._dialect() == "postgresql" else t.utcnow() - row.heartbeat_at
        return _engine(row, silent)

    def register_engine(
        self, *, name: str, instance: str, host: str, pid: int, process_started: float
    ) -> None:
        """Record that engine ``name`` runs now as ``instance`` (call after ``lock_engine``)."""
        values = {"instance": instance, "host": host, "pid": pid, "process_started": process_started,
                  "started_at": self._now(), "heartbeat_at": self._now()}
        if self.session.get(t.EngineRow, name) is None:
            self.session.execute(_ENGINES.insert().values(name=name, **values))
        else:
            self.session.execute(_ENGINES.update().where(_ENGINES.c.name == name).values(**values))

    def beat(self, *, name: str, instance: str) -> bool:
        """Refresh the engine's heartbeat; False if another process now holds the name."""
        result = self.session.execute(
            _ENGINES.update()
            .where(_ENGINES.c.name == name, _ENGINES.c.instance == instance)
            .values(heartbeat_at=self._now())
        )
        return bool(getattr(result, "rowcount", 0))

    def owned(self, engine: str) -> builtins.list[Job]:
        """Running and stopping jobs of ``engine``. Jobs claimed before engines had names become
        this engine's first (compare-and-set: one engine takes each)."""
        self.session.execute(
            _JOBS.update().where(_JOBS.c.engine.is_(None), _JOBS.c.status.in_(_LIVE)).values(engine=engine)
        )
        query = select(t.JobRow).where(t.JobRow.status.in_(_LIVE), t.JobRow.engine == engine).order_by(t.JobRow.id)
        return [convert.job(r) for r in self.session.scalars(query, execution_options={"populate_existing": True})]

    def still_owned(self, engine: str, job_ids: Sequence[int]) -> set[int]:
        if not job_ids:
            return set()
        query = select(t.JobRow.id).where(t.JobRow.id.in_(list(job_ids)), t.JobRow.engine == engine)
        return set(self.session.scalars(query))

    def _alive_engines(self, lost_after: float) -> Any:
        return select(_ENGINES.c.name).where(_ENGINES.c.heartbeat_at >= self._ago(lost_after))

    def orphaned(self, *, engine: str, lost_after: float) -> builtins.list[Job]:
        """Running and stopping jobs of other engines silent for ``lost_after`` seconds (or that
        no engine row names)."""
        query = (
            select(t.JobRow)
            .where(
                t.JobRow.status.in_(_LIVE), t.JobRow.engine.is_not(None), t.JobRow.engine != engine,
                t.JobRow.engine.not_in(self._alive_engines(lost_after)),
            )
            .order_by(t.JobRow.id)
        )
        return [convert.job(r) for r in self.session.scalars(query)]

    def adopt(self, job_id: int, *, from_engine: str, to_engine: str, lost_after: float) -> Job | None:
        """Compare-and-set the job's engine, if its engine is still silent: one adopter wins."""
        row = self.session.execute(
            _JOBS.update()
            .where(_JOBS.c.id == job_id, _JOBS.c.engine == from_engine, _JOBS.c.status.in_(_LIVE),
                   _JOBS.c.engine.not_in(self._alive_engines(lost_after)))
            .values(engine=to_engine)
            .returning(*_JOB_COLUMNS)
        ).one_or_none()
        return None if row is None else convert.job(cast(t.JobRow, row))

    def forget_engines(self, *, silent_for: float) -> int:
        """Delete the rows of engines silent that long that hold no running job."""
        holding = select(_JOBS.c.engine).where(_JOBS.c.status.in_(_LIVE), _JOBS.c.engine.is_not(None))
        result = self.session.execute(
            _ENGINES.delete().where(_ENGINES.c.heartbeat_at < self._ago(silent_for),
                                    _ENGINES.c.name.not_in(holding))
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def record_worker(self, job_id: int, *, engine: str, worker_ref: str) -> bool:
        """Store the worker of a job this engine still holds; False if another engine has it."""
        result = self.session.execute(
            _JOBS.update()
            .where(_JOBS.c.id == job_id, _JOBS.c.engine == engine, _JOBS.c.status.in_(_LIVE))
            .values(worker_ref=worker_ref)
        )
        return bool(getattr(result, "rowcount", 0))

    def mark_finishing(self, job_id: int) -> bool:
        """Compare-and-set on a running job: from now on its results are being registered and a
        stop is refused. False if the job is no longer running (a stop got there first)."""
        result = self.session.execute(
            _JOBS.update().where(_JOBS.c.id == job_id, _JOBS.c.status == JobStatus.RUNNING.value)
            .values(finishing=True)
        )
        return bool(getattr(result, "rowcount", 0))

    def events(self, job_id: int) -> builtins.list[JobEvent]:
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

    def append_logs(
        self, job_id: int, lines: Sequence[tuple[datetime, str, LogLevel, str]], *,
        cursor: str | None = None,
    ) -> None:
        if not lines and cursor is None:
            return
        # Numbering and the read position move in one statement, in the transaction that
        # inserts the lines: concurrent writers get disjoint sequence numbers.
        params: dict[str, Any] = {"b_id": job_id, "b_count": len(lines)}
        if cursor is not None:
            params["b_cursor"] = cursor
        statement = _BUMP_LOG_SEQ if cursor is None else _BUMP_LOG_SEQ_AND_CURSOR
        last = self.session.scalar(statement, params)
        if last is None:
            raise NotFound(f"job {job_id} not found")
        if not lines:
            return
        first = last - len(lines) + 1
        self.session.execute(
            _INSERT_LOGS,
            [
                {"job_id": job_id, "seq": first + i, "at": at, "stream": stream,
                 "level": level.value, "text": text}
                for i, (at, stream, level, text) in enumerate(lines)
            ],
        )

    def log_cursor(self, job_id: int) -> str | None:
        return self._row(job_id).log_cursor

    def last_error(self, job_id: int) -> str | None:
        """The text of the job's last error-level line (a traceback's last one is its exception)."""
        return self.session.scalar(
            select(t.JobLogRow.text)
            .where(t.JobLogRow.job_id == job_id, t.JobLogRow.level == LogLevel.ERROR.value)
            .order_by(t.JobLogRow.seq.desc())
            .limit(1)
        )

    def logs(
        self, job_id: int, *, after_seq: int = 0, min_level: LogLevel | None = None,
        limit: int = 1000,
    ) -> builtins.list[LogLine]:
        query = (
            select(t.JobLogRow)
            .where(t.JobLogRow.job_id == job_id, t.JobLogRow.seq > after_seq)
            .order_by(t.JobLogRow.seq)
            .limit(limit)
        )
        if min_level is not None:
            query = query.where(t.JobLogRow.level.in_([lv.value for lv in _LEVELS if lv.rank >= min_level.rank]))
        return [convert.log_line(r) for r in self.session.scalars(query)]


def _engine(row: t.EngineRow, silent: timedelta | None) -> Engine:
    return Engine(name=row.name, instance=row.instance, host=row.host, pid=row.pid,
                  process_started=row.process_started, started_at=row.started_at, heartbeat_at=row.heartbeat_at,
                  silent_seconds=None if silent is None else silent.total_seconds())


def _missing(job_id: int) -> str:
    raise NotFound(f"job {job_id} not found")
