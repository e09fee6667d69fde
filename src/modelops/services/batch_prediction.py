"""Batch prediction: "Run now" from a deployment, the deployment scheduler, and the runs.

A run is one BATCH_PREDICTION job plus its run record, queued in one transaction with an audit
event (``batch_run_started``), so a run never exists without its job. Scheduled runs are keyed
by (deployment, scheduled time): see ``services.schedules`` for the firing rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelops.domain.audit import AuditAction, AuditEntry, AuditTarget
from modelops.domain.deployments import (
    DEFAULT_CHUNK_ROWS,
    DEPLOYMENT_TARGET,
    BatchRun,
    BatchTrigger,
    Deployment,
    default_output_dataset,
)
from modelops.domain.entities import Principal
from modelops.domain.errors import AlreadyExists, Conflict, InvalidInput, ModelOpsError, NotFound
from modelops.domain.jobs import Job, JobKind
from modelops.domain.manifest import normalise_folder
from modelops.domain.roles import Role, require_role
from modelops.ports import UnitOfWork, UnitOfWorkFactory
from modelops.services.audit import record
from modelops.services.byom_kinds import data_entries
from modelops.services.schedules import ScheduleLoop, following

log = logging.getLogger(__name__)
SCHEDULER_ACTOR = "scheduler"


@dataclass(frozen=True)
class StartedRun:
    run: BatchRun
    job: Job


def submit_run(
    uow: UnitOfWork, deployment: Deployment, *, trigger: BatchTrigger, actor: str,
    scheduled_at: datetime | None = None, timeout_seconds: float | None = None,
    dataset: str | None = None, dataset_version: int | None = None, folder: str | None = None,
) -> StartedRun:
    """Queue a batch run of an active deployment inside the caller's transaction. The input
    is the deployment's dataset (its newest version now, unless pinned) or the one given."""
    if not deployment.active:
        raise Conflict(
            f"deployment '{deployment.name}' is {deployment.status.value}: it no longer runs batch predictions"
        )
    configured = deployment.batch_input
    if configured is None and not dataset:
        raise InvalidInput(
            f"deployment '{deployment.name}' has no input dataset: name the dataset to score"
        )
    name = dataset or (configured.dataset if configured else "")
    found = uow.datasets.get(deployment.project_id, name)
    if dataset:
        number, chosen_folder = dataset_version, normalise_folder(folder or "")
    else:
        assert configured is not None
        number = dataset_version if dataset_version is not None else configured.version
        chosen_folder = normalise_folder(folder if folder is not None else configured.folder)
    if number is None:
        if found.latest_version == 0:
            raise NotFound(f"dataset '{name}' has no version yet")
        number = found.latest_version
    data = uow.datasets.get_version(found.id, number)
    if not data_entries(data, chosen_folder):
        where = f" in folder '{chosen_folder}'" if chosen_folder else ""
        raise InvalidInput(f"dataset '{name}' version {number} has no CSV or Parquet file{where}")
    output = configured.output_dataset if configured else default_output_dataset(deployment.name)
    if output == name:
        raise InvalidInput("the predictions cannot be written into the dataset being scored")
    parameters: dict[str, Any] = {
        "deployment": deployment.name, "deployment_id": deployment.id,
        "package": deployment.package, "version": deployment.version,
        "model_version_id": deployment.model_version_id, "dataset": name,
        "dataset_version": number, "dataset_version_id": data.id, "folder": chosen_folder,
        "output_dataset": output,
        "chunk_rows": configured.chunk_rows if configured and configured.chunk_rows else DEFAULT_CHUNK_ROWS,
        "trigger": trigger.value,
        "scheduled_at": scheduled_at.isoformat() if scheduled_at else None,
    }
    job = uow.jobs.add(
        project_id=deployment.project_id, kind=JobKind.BATCH_PREDICTION, actor=actor,
        parameters=parameters, target_type=DEPLOYMENT_TARGET, target_id=deployment.id,
        timeout_seconds=timeout_seconds,
    )
    run = uow.deployments.add_run(
        project_id=deployment.project_id, deployment_id=deployment.id, job_id=job.id,
        trigger=trigger, scheduled_at=scheduled_at, input_dataset_version_id=data.id,
        parameters=parameters,
    )
    record(uow, AuditEntry(
        project_id=deployment.project_id, actor=actor, action=AuditAction.BATCH_RUN_STARTED,
        target_type=AuditTarget.DEPLOYMENT, target_id=deployment.id,
        target=f"deployment {deployment.name}", package_id=deployment.package_id,
        after={"job_id": job.id, "trigger": trigger.value, "version": deployment.version,
               "dataset": name, "dataset_version": number, "folder": chosen_folder,
               "scheduled_at": parameters["scheduled_at"]},
        job_id=job.id,
    ))
    return StartedRun(run=run, job=job)


class BatchPredictionService:
    def __init__(
        self, *, uow: UnitOfWorkFactory, wake: Callable[[], None] | None = None,
        default_timeout: float | None = None,
    ) -> None:
        self.uow = uow
        self.wake = wake or (lambda: None)
        self.default_timeout = default_timeout

    def run_now(
        self, *, principal: Principal, project: str, deployment: str, dataset: str | None = None,
        dataset_version: int | None = None, folder: str | None = None,
        timeout_seconds: float | None = None,
    ) -> StartedRun:
        """Run now: queue a batch prediction of the deployed version at once."""
        require_role(principal.role, Role.MEMBER)
        if timeout_seconds is not None and not timeout_seconds > 0:
            raise InvalidInput("timeout_seconds must be a positive number of seconds")
        with self.uow() as uow:
            found = uow.deployments.find(uow.projects.get(project).id, deployment)
            started = submit_run(
                uow, found, trigger=BatchTrigger.MANUAL, actor=principal.name,
                timeout_seconds=timeout_seconds or self.default_timeout, dataset=dataset,
                dataset_version=dataset_version, folder=folder,
            )
        self.wake()
        return started

    def runs(self, *, principal: Principal, project: str, deployment: str, limit: int = 200) -> list[BatchRun]:
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        with self.uow() as uow:
            found = uow.deployments.find(uow.projects.get(project).id, deployment)
            return uow.deployments.list_runs(found.id, limit=limit)

    def run(self, *, principal: Principal, project: str, deployment: str, job_id: int) -> tuple[BatchRun, Job]:
        with self.uow() as uow:
            found = uow.deployments.find(uow.projects.get(project).id, deployment)
            run = uow.deployments.get_run(job_id)
            if run.deployment_id != found.id:
                raise NotFound(f"deployment '{found.name}' has no batch run of job {job_id}")
            return run, uow.jobs.get(job_id)


class DeploymentScheduler(ScheduleLoop):
    """Fires the batch schedules of active deployments (a background part of the server)."""

    name = "deployment-scheduler"

    def __init__(
        self, *, uow: UnitOfWorkFactory, wake: Callable[[], None] | None = None,
        default_timeout: float | None = None, interval: float = 1.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(interval=interval, clock=clock)
        self.uow = uow
        self.wake = wake or (lambda: None)
        self.default_timeout = default_timeout

    def tick(self, now: datetime | None = None) -> list[StartedRun]:
        """Fire every deployment due at ``now``; returns the runs this scheduler started."""
        now = now or self.clock()
        with self.uow() as uow:
            due = uow.deployments.due(now)
        fired = [run for d in due if (run := self._fire(d, now)) is not None]
        if fired:
            self.wake()
        return fired

    def _fire(self, deployment: Deployment, now: datetime) -> StartedRun | None:
        scheduled = deployment.next_run_at
        assert scheduled is not None and deployment.schedule is not None
        try:
            nxt: datetime | None = following(
                deployment.schedule.cron, deployment.schedule.timezone, fired=scheduled, now=now
            )
        except InvalidInput:
            nxt = None  # an expression that no longer parses ends its schedule
        try:
            with self.uow() as uow:
                if not uow.deployments.advance(deployment.id, expected=scheduled, next_run_at=nxt):
                    return None  # another scheduler fired it, or it was retired, meanwhile
                return submit_run(
                    uow, deployment, trigger=BatchTrigger.SCHEDULE, actor=SCHEDULER_ACTOR,
                    scheduled_at=scheduled, timeout_seconds=self.default_timeout,
                )
        except AlreadyExists:
            return None
        except ModelOpsError as exc:
            # This firing cannot run (no data yet, …): skip the time, keep the schedule.
            log.warning("deployment %s: batch run at %s skipped: %s", deployment.name, scheduled, exc)
            with self.uow() as uow:
                uow.deployments.advance(deployment.id, expected=scheduled, next_run_at=nxt)
            return None
