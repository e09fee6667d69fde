"""Deployments: put an approved version into production, replace or retire it, schedule its
batch scoring, and read its details and its Jobs tab.

Every change to the deployments of one model serialises on that model's row lock, so "at most
one active production deployment per model" holds under concurrent requests (and a partial
unique index backs it). Deploy and retire are jobs of their own kinds, recorded in the same
transaction as the change (see ``services.lifecycle``), each with one audit event.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelops.domain.audit import AuditAction, AuditEntry, AuditTarget
from modelops.domain.deployments import (
    DEPLOYMENT_TARGET,
    CronSchedule,
    Deployment,
    DeploymentStatus,
    check_chunk_rows,
    default_output_dataset,
    parse_mode,
)
from modelops.domain.entities import Principal
from modelops.domain.errors import Conflict, InvalidInput
from modelops.domain.jobs import Job
from modelops.domain.lifecycle import ACTION_RULES, LifecycleAction, clean_reason
from modelops.domain.manifest import normalise_folder
from modelops.domain.model_status import ModelStatus
from modelops.domain.names import validate_name
from modelops.domain.roles import Role, require_role
from modelops.domain.versions import parse_version
from modelops.ports import UnitOfWork, UnitOfWorkFactory
from modelops.services.audit import record
from modelops.services.byom_kinds import data_entries, is_imported
from modelops.services.lifecycle import record_instant_job
from modelops.services.schedules import check_cron, next_fire_time, upcoming, zone

DEFAULT_UPCOMING = 5


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deployed:
    deployment: Deployment
    job: Job
    replaced: Deployment | None = None
    retirement_job: Job | None = None


@dataclass(frozen=True)
class ScheduleView:
    deployment: Deployment
    upcoming: list[datetime]


def schedule_of(cron: str | None, timezone: str | None) -> CronSchedule | None:
    if cron is None or not cron.strip():
        if timezone:
            raise InvalidInput("a time zone was given without a cron expression")
        return None
    tz = zone(timezone)
    return CronSchedule(cron=check_cron(cron), timezone=tz.key)


def _label(deployment: Deployment) -> str:
    return f"deployment {deployment.name}"


def retire_in(
    uow: UnitOfWork, deployment: Deployment, *, actor: str, reason: str, package_label: str,
) -> tuple[Deployment, Job]:
    """Retire inside the caller's transaction (which holds the model's lock): the deployment
    (compare-and-set active → retired, schedule ended), its version (deployed → retired), a
    retirement job and an audit event."""
    rule = ACTION_RULES[LifecycleAction.RETIRE]
    version = uow.packages.get_version_by_id(deployment.model_version_id)
    lines = [
        f"retire {_label(deployment)} ({package_label}) requested by {actor}",
        f"reason: {reason}",
    ]
    job = record_instant_job(
        uow, project_id=deployment.project_id, kind=rule.job_kind, actor=actor,
        parameters={"deployment": deployment.name, "reason": reason},
        target_type=DEPLOYMENT_TARGET, target_id=deployment.id,
        lines=[*lines, f"deployment: active → retired; model version: {version.status} → retired",
               "schedule ended" if deployment.schedule else "no schedule to end"],
        result={"deployment": deployment.name, "version": deployment.version, "reason": reason},
    )
    retired = uow.deployments.retire(deployment.id, actor=actor, reason=reason, job_id=job.id)
    after_version = uow.packages.transition_version(version.id, ModelStatus.RETIRED, reason=reason)
    record(uow, AuditEntry(
        project_id=deployment.project_id, actor=actor, action=AuditAction.RETIRE,
        target_type=AuditTarget.DEPLOYMENT, target_id=deployment.id, target=_label(deployment),
        package_id=deployment.package_id,
        before={"status": deployment.status.value, "version_status": version.status,
                "schedule": _schedule_dict(deployment.schedule)},
        after={"status": retired.status.value, "version_status": after_version.status,
               "deployment": deployment.name, "version": deployment.version,
               "model_version_id": deployment.model_version_id},
        reason=reason, job_id=job.id, at=retired.retired_at,
    ))
    return retired, job


def _schedule_dict(schedule: CronSchedule | None) -> dict[str, str] | None:
    return {"cron": schedule.cron, "timezone": schedule.timezone} if schedule else None


class DeploymentService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Callable[[], datetime] = utcnow) -> None:
        self.uow = uow
        self.clock = clock

    # ------------------------------------------------------------------ deploy

    def deploy(
        self, *, principal: Principal, project: str, package: str, version: str,
        name: str | None = None, mode: str | None = "batch", side_by_side: bool = False,
        replace: bool = False, reason: str | None = None, dataset: str | None = None,
        dataset_version: int | None = None, folder: str = "", output_dataset: str | None = None,
        chunk_rows: int | None = None, cron: str | None = None, timezone: str | None = None,
        description: str = "",
    ) -> Deployed:
        """Deploy an approved version. If the model already has a production deployment,
        ``replace`` retires it in the same step and ``side_by_side`` keeps both."""
        require_role(principal.role, ACTION_RULES[LifecycleAction.DEPLOY].role)
        deploy_mode = parse_mode(mode)
        text = clean_reason(reason, action=LifecycleAction.DEPLOY)
        major, minor = parse_version(version)
        deployment_name = validate_name("deployment", name or f"{package}-{major}.{minor}")
        if replace and side_by_side:
            raise InvalidInput("choose replace (retire the current deployment) or side_by_side, not both")
        schedule = schedule_of(cron, timezone)
        if schedule is not None and not dataset:
            raise InvalidInput("a batch schedule needs input data: give the dataset to score")
        output = validate_name("dataset", output_dataset or default_output_dataset(deployment_name))
        if dataset and output == dataset:
            raise InvalidInput("the predictions cannot be written into the dataset being scored")
        chunk = check_chunk_rows(chunk_rows)
        folder = normalise_folder(folder or "")
        now = self.clock()
        with self.uow() as uow:
            proj = uow.projects.get(project)
            pkg = uow.packages.get(proj.id, package)
            found = uow.packages.get_version(pkg.id, major, minor)
            uow.deployments.lock_package(pkg.id)
            # First the version's compare-and-set: deploying anything but an approved version
            # is refused with its current status and what it may become.
            deployed_version = uow.packages.transition_version(found.id, ModelStatus.DEPLOYED)
            if not (is_imported(found) or found.can_serve):
                raise InvalidInput(
                    f"{pkg.name} {found.version} cannot score: it is neither an imported model nor "
                    "a package with main.py (class Main with predict)"
                )
            batch_fields = self._batch_fields(uow, proj.id, dataset, dataset_version, folder)
            active = uow.deployments.list(proj.id, package_id=pkg.id, status=DeploymentStatus.ACTIVE)
            primary = next((d for d in active if d.primary), None)
            if primary is not None and not (replace or side_by_side):
                raise Conflict(
                    f"model '{pkg.name}' is already in production with deployment '{primary.name}' "
                    f"(version {primary.version}): deploy with replace to retire it in the same step, "
                    "or with side_by_side to keep both"
                )
            replaced = retirement = None
            if primary is not None and replace:
                why = f"replaced by deployment '{deployment_name}' (version {found.version})"
                replaced, retirement = retire_in(
                    uow, primary, actor=principal.name, reason=f"{why}: {text}" if text else why,
                    package_label=f"{pkg.name} {primary.version}",
                )
            is_primary = primary is None or replace
            created = uow.deployments.add(
                fields={
                    "project_id": proj.id, "name": deployment_name, "description": description,
                    "package_id": pkg.id, "package_name": pkg.name, "model_version_id": found.id,
                    "version": found.version, "mode": deploy_mode.value,
                    "status": DeploymentStatus.ACTIVE.value, "is_primary": is_primary,
                    **batch_fields, "output_dataset_name": output if dataset else None,
                    "chunk_rows": chunk, "cron": schedule.cron if schedule else None,
                    "timezone": schedule.timezone if schedule else None,
                    "next_run_at": next_fire_time(schedule.cron, schedule.timezone, now) if schedule else None,
                },
                actor=principal.name,
            )
            label = f"{pkg.name} {found.version}"
            job = record_instant_job(
                uow, project_id=proj.id, kind=ACTION_RULES[LifecycleAction.DEPLOY].job_kind,
                actor=principal.name,
                parameters={"package": pkg.name, "version": found.version, "deployment": deployment_name,
                            "mode": deploy_mode.value, "side_by_side": side_by_side, "replace": replace,
                            "reason": text},
                target_type=DEPLOYMENT_TARGET, target_id=created.id,
                lines=[
                    f"deploy {label} as '{deployment_name}' ({deploy_mode.value}) requested by {principal.name}",
                    *([f"reason: {text}"] if text else []),
                    f"model version {label}: {found.status} → {deployed_version.status}",
                    "production deployment: this version is now the model's champion" if is_primary
                    else "side by side with the production deployment",
                    *([f"replaced deployment '{replaced.name}' (version {replaced.version}), now retired"]
                      if replaced else []),
                    (f"batch schedule '{schedule.cron}' ({schedule.timezone}); next run "
                     f"{created.next_run_at.isoformat() if created.next_run_at else '-'}") if schedule
                    else "no schedule: start batch runs with Run now",
                ],
                result={"deployment": deployment_name, "deployment_id": created.id,
                        "package": pkg.name, "version": found.version, "primary": is_primary,
                        "replaced": replaced.name if replaced else None},
            )
            uow.deployments.set_deploy_job(created.id, job.id)
            record(uow, AuditEntry(
                project_id=proj.id, actor=principal.name, action=AuditAction.DEPLOY,
                target_type=AuditTarget.DEPLOYMENT, target_id=created.id, target=_label(created),
                package_id=pkg.id, before={"version_status": found.status},
                after={"deployment": deployment_name, "version": found.version,
                       "model_version_id": found.id, "version_status": deployed_version.status,
                       "primary": is_primary, "mode": deploy_mode.value,
                       "schedule": _schedule_dict(schedule),
                       "replaced": replaced.name if replaced else None},
                reason=text, job_id=job.id, at=created.deployed_at,
            ))
            return Deployed(
                deployment=uow.deployments.get_by_id(created.id), job=job, replaced=replaced,
                retirement_job=retirement,
            )

    def _batch_fields(
        self, uow: UnitOfWork, project_id: int, dataset: str | None, version: int | None, folder: str,
    ) -> dict[str, Any]:
        if not dataset:
            if version is not None or folder:
                raise InvalidInput("a dataset version or folder was given without a dataset")
            return {"input_dataset_id": None, "input_dataset_name": None,
                    "input_dataset_version": None, "input_folder": ""}
        found = uow.datasets.get(project_id, dataset)
        number = version if version is not None else found.latest_version
        if version is not None or number:
            # A pinned version must hold data now; the newest one is checked at each run too.
            data = uow.datasets.get_version(found.id, number)
            if not data_entries(data, folder):
                where = f" in folder '{folder}'" if folder else ""
                raise InvalidInput(f"dataset '{dataset}' version {number} has no CSV or Parquet file{where}")
        return {"input_dataset_id": found.id, "input_dataset_name": found.name,
                "input_dataset_version": version, "input_folder": folder}

    # ------------------------------------------------------------------ retire

    def retire(self, *, principal: Principal, project: str, deployment: str, reason: str | None) -> tuple[Deployment, Job]:
        """Take a deployment out of production; its version becomes retired, its schedule ends.
        Batch runs already started finish on the version they started with."""
        require_role(principal.role, ACTION_RULES[LifecycleAction.RETIRE].role)
        text = clean_reason(reason, action=LifecycleAction.RETIRE)
        with self.uow() as uow:
            proj = uow.projects.get(project)
            found = uow.deployments.find(proj.id, deployment)
            uow.deployments.lock_package(found.package_id)
            current = uow.deployments.get_by_id(found.id)  # read again under the lock
            return retire_in(uow, current, actor=principal.name, reason=text,
                             package_label=f"{current.package} {current.version}")

    # ------------------------------------------------------------------ schedule

    def set_schedule(
        self, *, principal: Principal, project: str, deployment: str, cron: str | None,
        timezone: str | None = None,
    ) -> Deployment:
        """Set (or, with no cron, clear) the batch schedule of an active deployment."""
        require_role(principal.role, Role.MEMBER)
        schedule = schedule_of(cron, timezone)
        now = self.clock()
        with self.uow() as uow:
            proj = uow.projects.get(project)
            found = uow.deployments.find(proj.id, deployment)
            if schedule is not None and found.batch_input is None:
                raise InvalidInput(f"deployment '{found.name}' has no input dataset to score on a schedule")
            next_run = next_fire_time(schedule.cron, schedule.timezone, now) if schedule else None
            changed = uow.deployments.set_schedule(found.id, schedule=schedule, next_run_at=next_run)
            record(uow, AuditEntry(
                project_id=proj.id, actor=principal.name,
                action=AuditAction.SCHEDULE_SET if schedule else AuditAction.SCHEDULE_CLEARED,
                target_type=AuditTarget.DEPLOYMENT, target_id=found.id, target=_label(found),
                package_id=found.package_id, before={"schedule": _schedule_dict(found.schedule)},
                after={"schedule": _schedule_dict(schedule),
                       "next_run_at": next_run.isoformat() if next_run else None},
            ))
            return changed

    def schedule(
        self, *, principal: Principal, project: str, deployment: str, count: int = DEFAULT_UPCOMING,
    ) -> ScheduleView:
        """The schedule and its next ``count`` firing times (the stored next one first)."""
        found = self.get(principal=principal, project=project, deployment=deployment)
        if found.schedule is None or found.next_run_at is None:
            if not 1 <= count <= 100:
                raise InvalidInput("count must be between 1 and 100")
            return ScheduleView(deployment=found, upcoming=[])
        times = [found.next_run_at]
        if count > 1:
            times += upcoming(found.schedule.cron, found.schedule.timezone, after=found.next_run_at,
                              count=count - 1)
        return ScheduleView(deployment=found, upcoming=times)

    # ------------------------------------------------------------------ reads

    def get(self, *, principal: Principal, project: str, deployment: str) -> Deployment:
        with self.uow() as uow:
            return uow.deployments.find(uow.projects.get(project).id, deployment)

    def list(
        self, *, principal: Principal, project: str, package: str | None = None,
        status: str | None = None,
    ) -> list[Deployment]:
        wanted = None
        if status:
            try:
                wanted = DeploymentStatus(status.strip().lower())
            except ValueError:
                raise InvalidInput(f"unknown deployment status {status!r}: use active or retired") from None
        with self.uow() as uow:
            proj = uow.projects.get(project)
            package_id = uow.packages.get(proj.id, package).id if package else None
            return uow.deployments.list(proj.id, package_id=package_id, status=wanted)

    def jobs(
        self, *, principal: Principal, project: str, deployment: str, limit: int = 200
    ) -> builtins.list[Job]:
        """The deployment's Jobs tab: its deployment, batch prediction and retirement jobs."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        with self.uow() as uow:
            found = uow.deployments.find(uow.projects.get(project).id, deployment)
            return uow.deployments.jobs(found.id, limit=limit)

    def champion(self, *, principal: Principal, project: str, package: str) -> Deployment | None:
        """The model's production deployment (its version is the champion), if any."""
        with self.uow() as uow:
            proj = uow.projects.get(project)
            pkg = uow.packages.get(proj.id, package)
            active = uow.deployments.list(proj.id, package_id=pkg.id, status=DeploymentStatus.ACTIVE)
        return next((d for d in active if d.primary), None)
