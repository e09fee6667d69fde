"""Jobs of a project: the list with filters and stop buttons, one job's details with its events
timeline and live logs, and the small JSON endpoints the job page's script polls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from modelops.bootstrap import Container
from modelops.domain.entities import Principal
from modelops.domain.errors import NotFound
from modelops.domain.jobs import Job, JobEvent, JobKind, JobStatus, LogLine
from modelops.domain.logs import parse_level
from modelops.web.labels import ACTIVE, job_target, job_url, kind_label, run_url
from modelops.web.rendering import duration, iso, render, segment, when_text
from modelops.web.routing import ActorDep, ContainerDep, UserDep, WebRoute, flash, redirect

router = APIRouter(route_class=WebRoute)

LOG_PAGE = 1000


def _project_job(container: Container, user: Principal, project: str, job_id: int) -> Job:
    """The job, if it belongs to this project: other projects' jobs do not exist from here."""
    found = container.projects.get(principal=user, name=project)
    job = container.jobs.get(principal=user, job_id=job_id)
    if job.project_id != found.id:
        raise NotFound(f"job {job_id} not found in project '{project}'")
    return job


def job_row(project: str, job: Job) -> dict[str, Any]:
    return {
        "job": job, "kind": kind_label(job.kind), "target": job_target(project, job),
        "url": job_url(project, job.id), "run_url": run_url(project, job),
        "active": job.status in ACTIVE,
    }


@router.get("/projects/{project}/jobs")
def jobs_page(
    request: Request, project: str, container: ContainerDep, user: UserDep,
    kind: Annotated[str, Query()] = "", status: Annotated[str, Query()] = "",
) -> Response:
    found = container.projects.get(principal=user, name=project)
    jobs = container.jobs.list(
        principal=user, project=project, kinds=[kind] if kind else [],
        statuses=[status] if status else [], limit=500,
    )
    rows = [job_row(project, job) for job in jobs]
    return render(
        request, "jobs.html", project=found, rows=rows, kind=kind, status=status,
        kinds=[(k.value, kind_label(k)) for k in JobKind], statuses=[s.value for s in JobStatus],
        any_active=any(r["active"] for r in rows), active_nav="jobs",
    )


@router.post("/projects/{project}/jobs/stop-all")
def stop_all(request: Request, project: str, container: ContainerDep, user: ActorDep) -> Response:
    stopped = container.jobs.stop_all_for_project(principal=user, project=project)
    flash(request, "ok", f"Stop requested for {len(stopped)} job(s)." if stopped
          else "No queued or running job to stop.")
    return redirect(f"/ui/projects/{segment(project)}/jobs")


@router.get("/projects/{project}/jobs/{job_id}")
def job_page(request: Request, project: str, job_id: int, container: ContainerDep, user: UserDep) -> Response:
    job = _project_job(container, user, project, job_id)
    found = container.projects.get(principal=user, name=project)
    events = container.jobs.events(principal=user, job_id=job_id)
    return render(
        request, "job.html", project=found, row=job_row(project, job), job=job, events=events,
        active_nav="jobs",
    )


@router.post("/projects/{project}/jobs/{job_id}/stop")
def stop_job(
    request: Request, project: str, job_id: int, container: ContainerDep, user: ActorDep,
    back: Annotated[str, Query()] = "",
) -> Response:
    _project_job(container, user, project, job_id)
    container.jobs.stop(principal=user, job_id=job_id)
    flash(request, "ok", f"Stop requested for job {job_id}.")
    target = job_url(project, job_id) if back != "list" else f"/ui/projects/{segment(project)}/jobs"
    return redirect(target)


# --------------------------------------------------------------------------- JSON for job.js


def event_json(event: JobEvent, *, with_detail: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": event.id, "at": iso(event.at), "at_text": when_text(event.at),
        "from_status": event.from_status.value if event.from_status else None,
        "to_status": event.to_status.value, "actor": event.actor,
    }
    if with_detail:
        data["detail"] = event.detail
    return data


def line_json(line: LogLine) -> dict[str, Any]:
    return {
        "seq": line.seq, "at": iso(line.at), "stream": line.stream, "level": line.level.value,
        "text": line.text,
    }


def state_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "status": job.status.value, "terminal": job.terminal,
        "started_at": when_text(job.started_at), "ended_at": when_text(job.ended_at), "error": job.error,
        "exit_code": job.exit_code,
        "duration": duration(job.started_at, job.ended_at) if job.started_at else "—",
    }


@router.get("/api/projects/{project}/jobs/{job_id}/logs")
def logs_json(
    project: str, job_id: int, container: ContainerDep, user: UserDep, after: int = 0,
    level: str = "",
) -> JSONResponse:
    """The job's state, then its lines after ``after``: read in this order, a terminal job's
    lines are complete, so the page stops polling once it got a short page of a terminal job."""
    _project_job(container, user, project, job_id)
    job, lines = container.jobs.logs_with_status(
        principal=user, job_id=job_id, after_seq=max(after, 0),
        min_level=parse_level(level) if level else None, limit=LOG_PAGE,
    )
    return JSONResponse({
        "job": state_json(job), "lines": [line_json(line) for line in lines],
        "more": len(lines) >= LOG_PAGE,
    })


@router.get("/api/projects/{project}/jobs/{job_id}/events")
def events_json(project: str, job_id: int, container: ContainerDep, user: UserDep) -> JSONResponse:
    job = _project_job(container, user, project, job_id)
    events = container.jobs.events(principal=user, job_id=job_id)
    return JSONResponse({"job": state_json(job), "events": [event_json(e) for e in events]})


@router.get("/api/projects/{project}/jobs/{job_id}/events/{event_id}")
def event_detail_json(
    project: str, job_id: int, event_id: int, container: ContainerDep, user: UserDep
) -> JSONResponse:
    _project_job(container, user, project, job_id)
    event = container.jobs.event(principal=user, job_id=job_id, event_id=event_id)
    return JSONResponse(event_json(event, with_detail=True))


@router.post("/api/projects/{project}/jobs/{job_id}/stop")
def stop_json(project: str, job_id: int, container: ContainerDep, user: ActorDep) -> JSONResponse:
    """The job page's Stop button (a fetch carrying the CSRF token in its header)."""
    _project_job(container, user, project, job_id)
    return JSONResponse({"job": state_json(container.jobs.stop(principal=user, job_id=job_id))})


@router.get("/api/projects/{project}/jobs")
def job_states_json(
    project: str, container: ContainerDep, user: UserDep,
    ids: Annotated[str, Query(max_length=2000)] = "",
) -> JSONResponse:
    """Statuses of some jobs of the project, for the list page's live status cells."""
    wanted = {int(part) for part in ids.split(",") if part.strip().isdigit()}
    jobs = container.jobs.list(principal=user, project=project, limit=500)
    return JSONResponse({"jobs": [state_json(j) for j in jobs if j.id in wanted]})
