"""Jobs: submit, read (status, events, logs) and stop. The engine does the running.

Viewers read; members submit and stop. A submitted job is committed ``queued`` before the
call returns, so a server restart loses none.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from modelops.domain.entities import Principal
from modelops.domain.errors import Conflict, InvalidInput
from modelops.domain.jobs import (
    ACTIVE_JOB_STATUSES,
    Job,
    JobEvent,
    JobKind,
    JobStatus,
    LogLevel,
    LogLine,
)
from modelops.domain.roles import Role, require_role
from modelops.ports import UnitOfWorkFactory
from modelops.services.job_kinds import CheckedParameters, JobKindRegistry

MAX_LOG_PAGE = 5000


class EngineSignals(Protocol):
    """What the service needs from the running engine: a nudge and the stop guard."""

    def wake(self) -> None: ...
    def stop_guard(self, job_id: int) -> AbstractContextManager[None]: ...


def parse_kinds(values: Sequence[str]) -> list[JobKind]:
    return [_parse(JobKind, v, "job kind") for v in values]


def parse_statuses(values: Sequence[str]) -> list[JobStatus]:
    return [_parse(JobStatus, v, "job status") for v in values]


def _parse(enum: Any, value: str, what: str) -> Any:
    try:
        return enum(value.strip().lower())
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise InvalidInput(f"unknown {what} {value!r}: choose one of {choices}") from None


class JobService:
    def __init__(
        self, *, uow: UnitOfWorkFactory, registry: JobKindRegistry,
        engine: EngineSignals | None = None, default_timeout: float | None = None,
    ) -> None:
        self.uow = uow
        self.registry = registry
        self.engine = engine
        self.default_timeout = default_timeout
        self._project_ids: dict[str, int] = {}

    def submit(
        self, *, principal: Principal, project: str, kind: str | JobKind,
        parameters: dict[str, Any] | None = None, timeout_seconds: float | None = None,
    ) -> Job:
        """Validate and persist a job as ``queued``; the engine picks it up at once."""
        require_role(principal.role, Role.MEMBER)
        job_kind = kind if isinstance(kind, JobKind) else _parse(JobKind, kind, "job kind")
        handler = self.registry.get(job_kind)
        if handler is None:
            available = ", ".join(k.value for k in self.registry.kinds()) or "none"
            raise InvalidInput(f"job kind '{job_kind}' cannot be run here; available: {available}")
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, dict):
            raise InvalidInput("parameters must be a JSON object")
        if timeout_seconds is not None and not timeout_seconds > 0:
            raise InvalidInput("timeout_seconds must be a positive number of seconds")
        validate = getattr(handler, "validate", None)
        for _attempt in range(2):
            project_id = self._project_ids.get(project)
            if project_id is None:
                with self.uow() as uow:
                    project_id = uow.projects.get(project).id
            checked: CheckedParameters = (
                validate(project_id=project_id, parameters=parameters)
                if validate is not None else CheckedParameters(parameters=parameters)
            )
            with self.uow() as uow:
                if uow.projects.get(project).id != project_id:  # re-created meanwhile
                    self._project_ids.pop(project, None)
                    continue
                job = uow.jobs.add(
                    project_id=project_id, kind=job_kind, actor=principal.name,
                    parameters=checked.parameters, target_type=checked.target_type,
                    target_id=checked.target_id,
                    timeout_seconds=timeout_seconds if timeout_seconds is not None else self.default_timeout,
                )
            # The project now holds a job, so it cannot be deleted: its name means this id
            # for good, and later submits skip the lookup transaction.
            self._project_ids[project] = project_id
            break
        else:  # pragma: no cover - needs a project re-created twice during one submit
            raise Conflict(f"project '{project}' changed while the job was submitted; try again")
        if self.engine is not None:
            self.engine.wake()
        return job

    def get(self, *, principal: Principal, job_id: int) -> Job:
        with self.uow() as uow:
            return uow.jobs.get(job_id)

    def list(
        self, *, principal: Principal, project: str, kinds: Sequence[str] = (),
        statuses: Sequence[str] = (), limit: int = 200,
    ) -> list[Job]:
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        parsed_kinds, parsed_statuses = parse_kinds(kinds), parse_statuses(statuses)
        with self.uow() as uow:
            project_id = uow.projects.get(project).id
            return uow.jobs.list(
                project_id=project_id, kinds=parsed_kinds, statuses=parsed_statuses, limit=limit
            )

    def events(self, *, principal: Principal, job_id: int) -> builtins.list[JobEvent]:
        with self.uow() as uow:
            return uow.jobs.events(job_id)

    def event(self, *, principal: Principal, job_id: int, event_id: int) -> JobEvent:
        with self.uow() as uow:
            uow.jobs.get(job_id)
            return uow.jobs.event(job_id, event_id)

    def logs(
        self, *, principal: Principal, job_id: int, after_seq: int = 0,
        min_level: LogLevel | None = None, limit: int = 1000,
    ) -> builtins.list[LogLine]:
        if not 1 <= limit <= MAX_LOG_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_LOG_PAGE}")
        if after_seq < 0:
            raise InvalidInput("after must be 0 or a log line's sequence number")
        with self.uow() as uow:
            uow.jobs.get(job_id)
            return uow.jobs.logs(job_id, after_seq=after_seq, min_level=min_level, limit=limit)

    def logs_with_status(
        self, *, principal: Principal, job_id: int, after_seq: int,
        min_level: LogLevel | None, limit: int = 1000,
    ) -> tuple[Job, builtins.list[LogLine]]:
        """The job, then its lines after ``after_seq``: read in this order, a terminal job's
        lines are complete (its last lines are stored before it ends)."""
        with self.uow() as uow:
            job = uow.jobs.get(job_id)
            return job, uow.jobs.logs(job_id, after_seq=after_seq, min_level=min_level, limit=limit)

    def stop(self, *, principal: Principal, job_id: int) -> Job:
        """Request a stop: ``cancelling`` now, ``cancelled`` once the process tree is gone (a
        queued job is cancelled at once). Racing requests: one wins, the others get 409."""
        require_role(principal.role, Role.MEMBER)
        with self._guard(job_id), self.uow() as uow:
            job = uow.jobs.transition(
                job_id, JobStatus.CANCELLING, actor=principal.name,
                detail={"reason": "stop requested"},
            )
            if job.finishing:  # its engine (maybe another server's) is registering its results
                raise Conflict(
                    f"job {job_id} has already ended and is registering its results; "
                    "it can no longer be stopped"
                )
            if job.started_at is None:  # never claimed: there is no process to wait for
                job = uow.jobs.transition(
                    job_id, JobStatus.CANCELLED, actor=principal.name,
                    detail={"reason": "stopped before it started"},
                )
        if self.engine is not None:
            self.engine.wake()
        return job

    def stop_all_for_project(self, *, principal: Principal, project: str) -> builtins.list[Job]:
        """Stop every queued or running job of a project; returns the jobs this call stopped."""
        require_role(principal.role, Role.MEMBER)
        with self.uow() as uow:
            project_id = uow.projects.get(project).id
            candidates = uow.jobs.list(
                project_id=project_id,
                statuses=[s for s in ACTIVE_JOB_STATUSES if s is not JobStatus.CANCELLING],
                limit=100_000,
            )
        stopped = []
        for job in sorted(candidates, key=lambda j: j.id):
            try:
                stopped.append(self.stop(principal=principal, job_id=job.id))
            except Conflict:
                continue  # ended or stopped meanwhile
        return stopped

    def _guard(self, job_id: int) -> AbstractContextManager[None]:
        return self.engine.stop_guard(job_id) if self.engine is not None else nullcontext()
