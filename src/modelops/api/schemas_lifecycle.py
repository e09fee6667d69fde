"""Request and response bodies of approval, deployment, batch run and audit endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from modelops.api.schemas import ModelVersionRead
from modelops.api.schemas_jobs import JobRead
from modelops.domain.audit import AuditEvent, DeployedVersion
from modelops.domain.deployments import BatchRun, Deployment


class DecisionRequest(BaseModel):
    reason: str = Field(description="why; kept with the version, its job and the audit trail")


class DecisionRead(BaseModel):
    job: JobRead
    version: ModelVersionRead


class DeploymentCreate(BaseModel):
    package: str
    version: str = Field(description="an approved version, e.g. '1.1'")
    name: str | None = Field(default=None, description="default: '<package>-<version>'")
    mode: str = Field(default="batch", description="batch (real-time endpoints come later)")
    replace: bool = Field(default=False, description="retire the model's production deployment in the same step")
    side_by_side: bool = Field(default=False, description="keep the production deployment running as well")
    reason: str = ""
    description: str = ""
    dataset: str | None = Field(default=None, description="input data of batch runs")
    dataset_version: int | None = Field(default=None, description="pin a version; default: newest at each run")
    folder: str = ""
    output_dataset: str | None = Field(default=None, description="default: '<deployment>-predictions'")
    chunk_rows: int | None = Field(default=None, description="rows scored at a time (memory bound)")
    cron: str | None = Field(default=None, description="five fields, e.g. '0 3 * * *'")
    timezone: str | None = Field(default=None, description="IANA zone of the cron times, e.g. 'Europe/Paris'")


class BatchInputRead(BaseModel):
    dataset: str
    dataset_version: int | None
    folder: str
    output_dataset: str
    chunk_rows: int


class ScheduleRead(BaseModel):
    cron: str
    timezone: str


class DeploymentRead(BaseModel):
    id: int
    name: str
    description: str
    package: str
    version: str
    model_version_id: int
    mode: str
    status: str
    primary: bool = Field(description="the model's production deployment: its version is the champion")
    input: BatchInputRead | None
    schedule: ScheduleRead | None
    next_run_at: datetime | None
    deployed_at: datetime
    deployed_by: str
    deploy_job_id: int | None
    retired_at: datetime | None
    retired_by: str | None
    retire_reason: str | None
    retire_job_id: int | None


def deployment_read(d: Deployment) -> DeploymentRead:
    batch = d.batch_input
    return DeploymentRead(
        id=d.id, name=d.name, description=d.description, package=d.package, version=d.version,
        model_version_id=d.model_version_id, mode=d.mode.value, status=d.status.value,
        primary=d.primary,
        input=BatchInputRead(dataset=batch.dataset, dataset_version=batch.version, folder=batch.folder,
                             output_dataset=batch.output_dataset, chunk_rows=batch.chunk_rows)
        if batch else None,
        schedule=ScheduleRead(cron=d.schedule.cron, timezone=d.schedule.timezone) if d.schedule else None,
        next_run_at=d.next_run_at, deployed_at=d.deployed_at, deployed_by=d.deployed_by,
        deploy_job_id=d.deploy_job_id, retired_at=d.retired_at, retired_by=d.retired_by,
        retire_reason=d.retire_reason, retire_job_id=d.retire_job_id,
    )


class DeployedRead(BaseModel):
    deployment: DeploymentRead
    job: JobRead
    replaced: DeploymentRead | None = None
    retirement_job: JobRead | None = None


class RetireRequest(BaseModel):
    reason: str = Field(description="why it leaves production; required")


class RetiredRead(BaseModel):
    deployment: DeploymentRead
    job: JobRead


class ScheduleUpdate(BaseModel):
    cron: str | None = Field(description="five fields; null clears the schedule")
    timezone: str | None = Field(default=None, description="IANA zone, default UTC")


class ScheduleView(BaseModel):
    deployment: str
    schedule: ScheduleRead | None
    next_run_at: datetime | None
    upcoming: list[datetime] = Field(description="next firing times, UTC")
    upcoming_local: list[str] = Field(description="the same times in the schedule's zone")


class RunNowRequest(BaseModel):
    dataset: str | None = Field(default=None, description="default: the deployment's input dataset")
    dataset_version: int | None = None
    folder: str | None = None
    timeout_seconds: float | None = Field(default=None, gt=0)


class BatchRunRead(BaseModel):
    id: int
    deployment_id: int
    job_id: int
    trigger: str
    scheduled_at: datetime | None
    created_at: datetime
    input_dataset_version_id: int | None
    parameters: dict[str, Any]
    output_dataset_version_id: int | None
    output_version: int | None
    rows: int | None
    drift: dict[str, Any] | None


def run_read(run: BatchRun) -> BatchRunRead:
    return BatchRunRead(**{**run.__dict__, "trigger": run.trigger.value})


class StartedRunRead(BaseModel):
    run: BatchRunRead
    job: JobRead


class ChampionRead(BaseModel):
    package: str
    champion: str | None = Field(description="the version of the model's production deployment")
    deployment: DeploymentRead | None


class AuditEventRead(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: int
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str
    job_id: int | None


def event_read(e: AuditEvent) -> AuditEventRead:
    return AuditEventRead(**{**e.__dict__, "action": e.action.value, "target_type": e.target_type.value})


class DeployedVersionRead(BaseModel):
    deployment_id: int
    deployment: str
    version: str
    model_version_id: int
    primary: bool
    since: datetime


class DeployedAtRead(BaseModel):
    package: str
    at: datetime
    champion: str | None = Field(description="the production version at that time")
    deployments: list[DeployedVersionRead]


def deployed_at_read(package: str, at: datetime, found: list[DeployedVersion]) -> DeployedAtRead:
    primary = next((d for d in found if d.primary), None)
    return DeployedAtRead(
        package=package, at=at, champion=primary.version if primary else None,
        deployments=[DeployedVersionRead(**d.__dict__) for d in found],
    )
