"""Jobs: submit, list, show, events, logs (paged or followed live) and stop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from modelops.api.deps import ContainerDep, PrincipalDep
from modelops.api.schemas import ListOf
from modelops.api.schemas_jobs import JobEventRead, JobRead, JobSubmit, LogLineRead
from modelops.domain.jobs import Job, LogLevel, LogLine
from modelops.domain.logs import parse_level

router = APIRouter(tags=["jobs"])

FOLLOW_POLL_SECONDS = 0.25


def job_read(job: Job) -> JobRead:
    return JobRead.model_validate({**job.__dict__, "terminal": job.terminal})


def _level(level: str | None) -> LogLevel | None:
    return parse_level(level) if level else None


@router.post("/projects/{project}/jobs", response_model=JobRead, status_code=201)
def submit_job(project: str, body: JobSubmit, container: ContainerDep, principal: PrincipalDep) -> JobRead:
    job = container.jobs.submit(
        principal=principal, project=project, kind=body.kind, parameters=body.parameters,
        timeout_seconds=body.timeout_seconds,
    )
    return job_read(job)


@router.get("/projects/{project}/jobs", response_model=ListOf[JobRead])
def list_jobs(
    project: str, container: ContainerDep, principal: PrincipalDep,
    kind: Annotated[list[str], Query(description="only these kinds (repeatable)")] = [],  # noqa: B006
    status: Annotated[list[str], Query(description="only these statuses (repeatable)")] = [],  # noqa: B006
    limit: int = 200,
) -> ListOf[JobRead]:
    jobs = container.jobs.list(
        principal=principal, project=project, kinds=kind, statuses=status, limit=limit
    )
    return ListOf(data=[job_read(j) for j in jobs], count=len(jobs))


@router.post("/projects/{project}/jobs/stop", response_model=ListOf[JobRead])
def stop_project_jobs(project: str, container: ContainerDep, principal: PrincipalDep) -> ListOf[JobRead]:
    """Stop every queued and running job of the project; lists the jobs this request stopped."""
    jobs = container.jobs.stop_all_for_project(principal=principal, project=project)
    return ListOf(data=[job_read(j) for j in jobs], count=len(jobs))


@router.get("/jobs/{job_id}", response_model=JobRead)
def show_job(job_id: int, container: ContainerDep, principal: PrincipalDep) -> JobRead:
    return job_read(container.jobs.get(principal=principal, job_id=job_id))


@router.post("/jobs/{job_id}/stop", response_model=JobRead)
def stop_job(job_id: int, container: ContainerDep, principal: PrincipalDep) -> JobRead:
    """Stop a queued or running job: 409 if it already ended or is already being stopped."""
    return job_read(container.jobs.stop(principal=principal, job_id=job_id))


@router.get("/jobs/{job_id}/events", response_model=ListOf[JobEventRead])
def list_events(job_id: int, container: ContainerDep, principal: PrincipalDep) -> ListOf[JobEventRead]:
    events = container.jobs.events(principal=principal, job_id=job_id)
    return ListOf(data=[JobEventRead.model_validate(e) for e in events], count=len(events))


@router.get("/jobs/{job_id}/events/{event_id}", response_model=JobEventRead)
def show_event(job_id: int, event_id: int, container: ContainerDep, principal: PrincipalDep) -> JobEventRead:
    return JobEventRead.model_validate(
        container.jobs.event(principal=principal, job_id=job_id, event_id=event_id)
    )


@router.get("/jobs/{job_id}/logs", response_model=ListOf[LogLineRead])
def list_logs(
    job_id: int, container: ContainerDep, principal: PrincipalDep, after: int = 0,
    level: Annotated[str | None, Query(description="minimum level: debug, info, warning, error")] = None,
    limit: int = 1000,
) -> ListOf[LogLineRead]:
    lines = container.jobs.logs(
        principal=principal, job_id=job_id, after_seq=after, min_level=_level(level), limit=limit
    )
    return ListOf(data=[LogLineRead.model_validate(line) for line in lines], count=len(lines))


@router.get(
    "/jobs/{job_id}/logs/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def follow_logs(
    job_id: int, request: Request, container: ContainerDep, principal: PrincipalDep,
    after: int = 0,
    level: Annotated[str | None, Query(description="minimum level: debug, info, warning, error")] = None,
) -> StreamingResponse:
    """Newline-delimited JSON: ``{"type": "log", ...}`` per line as it is stored, then one
    ``{"type": "end", "status": ...}`` once the job has ended and every line was sent."""
    min_level = _level(level)
    # Fail before streaming starts, so an unknown job is a plain 404.
    await run_in_threadpool(lambda: container.jobs.get(principal=principal, job_id=job_id))

    def fetch(after_seq: int) -> tuple[Job, list[LogLine]]:
        return container.jobs.logs_with_status(
            principal=principal, job_id=job_id, after_seq=after_seq, min_level=min_level
        )

    async def records() -> AsyncIterator[str]:
        cursor = after
        while True:
            job, lines = await run_in_threadpool(fetch, cursor)
            for line in lines:
                cursor = line.seq
                record = LogLineRead.model_validate(line).model_dump(mode="json")
                yield json.dumps({"type": "log", **record}) + "\n"
            if len(lines) >= 1000:
                continue  # a full page: more is waiting
            if job.terminal:
                end = {"type": "end", "status": job.status.value, "error": job.error,
                       "exit_code": job.exit_code, "signal": job.signal}
                yield json.dumps(end) + "\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(FOLLOW_POLL_SECONDS)

    return StreamingResponse(records(), media_type="application/x-ndjson")
