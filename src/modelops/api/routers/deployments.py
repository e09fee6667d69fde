"""Deployments: create (deploy), list, details, retire, schedule, Run now, runs and Jobs tab."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from modelops.api.deps import ContainerDep, PrincipalDep
from modelops.api.routers.jobs import job_read
from modelops.api.schemas import ListOf
from modelops.api.schemas_jobs import JobRead
from modelops.api.schemas_lifecycle import (
    BatchRunRead,
    DeployedRead,
    DeploymentCreate,
    DeploymentRead,
    RetiredRead,
    RetireRequest,
    RunNowRequest,
    ScheduleRead,
    ScheduleUpdate,
    ScheduleView,
    StartedRunRead,
    deployment_read,
    run_read,
)

router = APIRouter(prefix="/projects/{project}/deployments", tags=["deployments"])


@router.post("", response_model=DeployedRead, status_code=201, responses={
    409: {"description": "the version is not approved, or the model is already in production "
                         "(deploy with replace or side_by_side)"},
})
async def deploy(project: str, body: DeploymentCreate, container: ContainerDep, principal: PrincipalDep) -> DeployedRead:
    """Deploy an approved version (a DEPLOYMENT job records it)."""
    done = await run_in_threadpool(lambda: container.lifecycle.deployments.deploy(
        principal=principal, project=project, **body.model_dump(),
    ))
    return DeployedRead(
        deployment=deployment_read(done.deployment), job=job_read(done.job),
        replaced=deployment_read(done.replaced) if done.replaced else None,
        retirement_job=job_read(done.retirement_job) if done.retirement_job else None,
    )


@router.get("", response_model=ListOf[DeploymentRead])
def list_deployments(
    project: str, container: ContainerDep, principal: PrincipalDep, package: str | None = None,
    status: str | None = None,
) -> ListOf[DeploymentRead]:
    found = container.lifecycle.deployments.list(principal=principal, project=project, package=package, status=status)
    return ListOf(data=[deployment_read(d) for d in found], count=len(found))


@router.get("/{deployment}", response_model=DeploymentRead)
def show_deployment(project: str, deployment: str, container: ContainerDep, principal: PrincipalDep) -> DeploymentRead:
    """A deployment's details, by name or id."""
    return deployment_read(container.lifecycle.deployments.get(principal=principal, project=project, deployment=deployment))


@router.post("/{deployment}/retire", response_model=RetiredRead, status_code=201)
async def retire(
    project: str, deployment: str, body: RetireRequest, container: ContainerDep, principal: PrincipalDep,
) -> RetiredRead:
    """Take it out of production, with a reason (a RETIREMENT job records it); its schedule ends."""
    retired, job = await run_in_threadpool(lambda: container.lifecycle.deployments.retire(
        principal=principal, project=project, deployment=deployment, reason=body.reason,
    ))
    return RetiredRead(deployment=deployment_read(retired), job=job_read(job))


@router.get("/{deployment}/jobs", response_model=ListOf[JobRead])
def deployment_jobs(
    project: str, deployment: str, container: ContainerDep, principal: PrincipalDep, limit: int = 200,
) -> ListOf[JobRead]:
    """The Jobs tab: the deployment's deployment, batch prediction and retirement jobs."""
    jobs = container.lifecycle.deployments.jobs(principal=principal, project=project, deployment=deployment, limit=limit)
    return ListOf(data=[job_read(j) for j in jobs], count=len(jobs))


def _schedule_view(container: ContainerDep, principal: PrincipalDep, project: str, deployment: str, count: int) -> ScheduleView:
    view = container.lifecycle.deployments.schedule(principal=principal, project=project, deployment=deployment, count=count)
    found = view.deployment
    tz = ZoneInfo(found.schedule.timezone) if found.schedule else None
    return ScheduleView(
        deployment=found.name,
        schedule=ScheduleRead(cron=found.schedule.cron, timezone=found.schedule.timezone) if found.schedule else None,
        next_run_at=found.next_run_at, upcoming=view.upcoming,
        upcoming_local=[t.astimezone(tz).isoformat() for t in view.upcoming] if tz else [],
    )


@router.get("/{deployment}/schedule", response_model=ScheduleView)
def show_schedule(
    project: str, deployment: str, container: ContainerDep, principal: PrincipalDep, count: int = 5,
) -> ScheduleView:
    """The batch schedule and its next ``count`` firing times."""
    return _schedule_view(container, principal, project, deployment, count)


@router.put("/{deployment}/schedule", response_model=ScheduleView)
def set_schedule(
    project: str, deployment: str, body: ScheduleUpdate, container: ContainerDep, principal: PrincipalDep,
) -> ScheduleView:
    """Set the cron schedule (null cron clears it)."""
    container.lifecycle.deployments.set_schedule(
        principal=principal, project=project, deployment=deployment, cron=body.cron, timezone=body.timezone,
    )
    return _schedule_view(container, principal, project, deployment, 5)


@router.delete("/{deployment}/schedule", response_model=ScheduleView)
def clear_schedule(project: str, deployment: str, container: ContainerDep, principal: PrincipalDep) -> ScheduleView:
    container.lifecycle.deployments.set_schedule(
        principal=principal, project=project, deployment=deployment, cron=None,
    )
    return _schedule_view(container, principal, project, deployment, 1)


@router.post("/{deployment}/runs", response_model=StartedRunRead, status_code=201)
def run_now(
    project: str, deployment: str, container: ContainerDep, principal: PrincipalDep,
    body: RunNowRequest | None = None,
) -> StartedRunRead:
    """Run now: queue a BATCH_PREDICTION job of the deployed version."""
    options = body or RunNowRequest()
    started = container.lifecycle.batch.run_now(
        principal=principal, project=project, deployment=deployment, **options.model_dump(),
    )
    return StartedRunRead(run=run_read(started.run), job=job_read(started.job))


@router.get("/{deployment}/runs", response_model=ListOf[BatchRunRead])
def list_runs(
    project: str, deployment: str, container: ContainerDep, principal: PrincipalDep, limit: int = 200,
) -> ListOf[BatchRunRead]:
    runs = container.lifecycle.batch.runs(principal=principal, project=project, deployment=deployment, limit=limit)
    return ListOf(data=[run_read(r) for r in runs], count=len(runs))


@router.get("/{deployment}/runs/{job_id}", response_model=StartedRunRead)
def show_run(project: str, deployment: str, job_id: int, container: ContainerDep, principal: PrincipalDep) -> StartedRunRead:
    """One batch run with its job: rows, output dataset version and drift figures."""
    run, job = container.lifecycle.batch.run(principal=principal, project=project, deployment=deployment, job_id=job_id)
    return StartedRunRead(run=run_read(run), job=job_read(job))
