"""SQL rows and stores for deployments, their batch runs and the audit trail.

Invariants kept by the database itself, so two servers on one database cannot break them:
- at most one active primary deployment per model (a partial unique index);
- one batch run per (deployment, scheduled time): two schedulers firing the same cron time
  insert the same key and exactly one wins;
- audit events are never updated or deleted (triggers refuse it; see migration 0005).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from modelops.adapters.sql import convert
from modelops.adapters.sql import tables as t
from modelops.adapters.sql.stores import _SqlStore
from modelops.adapters.sql.tables import Base, utcnow
from modelops.domain.audit import AuditAction, AuditEntry, AuditEvent, AuditTarget
from modelops.domain.deployments import (
    DEPLOYMENT_TARGET,
    BatchInput,
    BatchRun,
    BatchTrigger,
    CronSchedule,
    Deployment,
    DeploymentMode,
    DeploymentStatus,
    check_deployment_transition,
)
from modelops.domain.errors import NotFound
from modelops.domain.jobs import Job


class DeploymentRow(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        Index("ix_deployments_next_run_at", "next_run_at"),
        Index(
            "uq_deployments_one_primary", "package_id", unique=True,
            sqlite_where=text("status = 'active' AND is_primary"),
            postgresql_where=text("status = 'active' AND is_primary"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    package_id: Mapped[int] = mapped_column(ForeignKey("model_packages.id"), index=True)
    package_name: Mapped[str] = mapped_column(String(64))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    version: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    is_primary: Mapped[bool] = mapped_column(Boolean)
    input_dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), nullable=True)
    input_dataset_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    input_dataset_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    input_folder: Mapped[str] = mapped_column(String(1024), default="")
    output_dataset_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    chunk_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cron: Mapped[str | None] = mapped_column(String(128), nullable=True)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    next_run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)
    deployed_by: Mapped[str] = mapped_column(String(128))
    deploy_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(nullable=True)
    retired_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    retire_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    retire_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)


class BatchRunRow(Base):
    __tablename__ = "batch_runs"
    __table_args__ = (UniqueConstraint("deployment_id", "scheduled_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), unique=True)
    trigger: Mapped[str] = mapped_column(String(16))
    scheduled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    input_dataset_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id"), nullable=True
    )
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output_dataset_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id"), nullable=True
    )
    output_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    drift: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)


class AuditEventRow(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_package_at", "package_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(256))
    package_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


# --------------------------------------------------------------------------- conversions


def _deployment(row: DeploymentRow) -> Deployment:
    batch_input = None
    if row.input_dataset_id is not None:
        batch_input = BatchInput(
            dataset_id=row.input_dataset_id, dataset=row.input_dataset_name or "",
            version=row.input_dataset_version, folder=row.input_folder or "",
            output_dataset=row.output_dataset_name or "", chunk_rows=row.chunk_rows or 0,
        )
    schedule = CronSchedule(cron=row.cron, timezone=row.timezone or "UTC") if row.cron else None
    return Deployment(
        id=row.id, project_id=row.project_id, name=row.name, package_id=row.package_id,
        package=row.package_name, model_version_id=row.model_version_id, version=row.version,
        mode=DeploymentMode(row.mode), status=DeploymentStatus(row.status),
        primary=bool(row.is_primary), batch_input=batch_input, schedule=schedule,
        next_run_at=row.next_run_at, deployed_at=row.deployed_at, deployed_by=row.deployed_by,
        deploy_job_id=row.deploy_job_id, description=row.description or "",
        retired_at=row.retired_at, retired_by=row.retired_by, retire_reason=row.retire_reason,
        retire_job_id=row.retire_job_id,
    )


def _run(row: BatchRunRow) -> BatchRun:
    return BatchRun(
        id=row.id, project_id=row.project_id, deployment_id=row.deployment_id, job_id=row.job_id,
        trigger=BatchTrigger(row.trigger), scheduled_at=row.scheduled_at, created_at=row.created_at,
        input_dataset_version_id=row.input_dataset_version_id,
        parameters=dict(row.parameters or {}),
        output_dataset_version_id=row.output_dataset_version_id, output_version=row.output_version,
        rows=row.rows, drift=dict(row.drift) if row.drift is not None else None,
    )


def _event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=row.id, project_id=row.project_id, at=row.at, actor=row.actor,
        action=AuditAction(row.action), target_type=AuditTarget(row.target_type),
        target_id=row.target_id, target=row.target, package_id=row.package_id,
        before=dict(row.before) if row.before is not None else None,
        after=dict(row.after) if row.after is not None else None,
        reason=row.reason or "", job_id=row.job_id,
    )


# --------------------------------------------------------------------------- stores


class SqlDeploymentStore(_SqlStore):
    def add(self, *, fields: dict[str, Any], actor: str) -> Deployment:
        row = DeploymentRow(deployed_by=actor, deployed_at=utcnow(), **fields)
        self._insert_unique(row, f"deployment '{fields.get('name')}'")
        return _deployment(row)

    def _by_id(self, deployment_id: int) -> DeploymentRow:
        row = self.session.get(DeploymentRow, deployment_id, populate_existing=True)
        if row is None:
            raise NotFound(f"deployment {deployment_id} not found")
        return row

    def get_by_id(self, deployment_id: int) -> Deployment:
        return _deployment(self._by_id(deployment_id))

    def find(self, project_id: int, ref: str) -> Deployment:
        """By name, or by numeric id when no deployment has that name."""
        row = self.session.scalar(
            select(DeploymentRow).where(DeploymentRow.project_id == project_id, DeploymentRow.name == ref)
            .execution_options(populate_existing=True)
        )
        if row is None and ref.isdigit():
            row = self.session.get(DeploymentRow, int(ref), populate_existing=True)
            if row is not None and row.project_id != project_id:
                row = None
        if row is None:
            raise NotFound(f"deployment '{ref}' not found")
        return _deployment(row)

    def list(
        self, project_id: int, *, package_id: int | None = None, status: DeploymentStatus | None = None,
    ) -> builtins.list[Deployment]:
        query = select(DeploymentRow).where(DeploymentRow.project_id == project_id)
        if package_id is not None:
            query = query.where(DeploymentRow.package_id == package_id)
        if status is not None:
            query = query.where(DeploymentRow.status == status.value)
        rows = self.session.scalars(query.order_by(DeploymentRow.id.desc()))
        return [_deployment(r) for r in rows]

    def lock_package(self, package_id: int) -> None:
        """Serialise deploys of one model: a no-op update takes the package row's lock
        (PostgreSQL); SQLite's BEGIN IMMEDIATE already serialises every writer."""
        done = self.session.execute(
            update(t.PackageRow).where(t.PackageRow.id == package_id)
            .values(latest_major=t.PackageRow.latest_major)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"ML package {package_id} not found")

    def set_deploy_job(self, deployment_id: int, job_id: int) -> None:
        self.session.execute(
            update(DeploymentRow).where(DeploymentRow.id == deployment_id)
            .values(deploy_job_id=job_id).execution_options(synchronize_session=False)
        )

    def retire(self, deployment_id: int, *, actor: str, reason: str, job_id: int | None) -> Deployment:
        """Compare-and-set active → retired; the schedule ends with it."""
        row = self._by_id(deployment_id)
        current = DeploymentStatus(row.status)
        check_deployment_transition(current, DeploymentStatus.RETIRED, name=row.name)
        done = self.session.execute(
            update(DeploymentRow)
            .where(DeploymentRow.id == deployment_id, DeploymentRow.status == current.value)
            .values(status=DeploymentStatus.RETIRED.value, retired_at=utcnow(), retired_by=actor,
                    retire_reason=reason, retire_job_id=job_id, next_run_at=None)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            fresh = self._by_id(deployment_id)  # the winner's status, for the loser's 409
            check_deployment_transition(DeploymentStatus(fresh.status), DeploymentStatus.RETIRED, name=fresh.name)
        return self.get_by_id(deployment_id)

    def set_schedule(
        self, deployment_id: int, *, schedule: CronSchedule | None, next_run_at: datetime | None
    ) -> Deployment:
        """Change the schedule of an active deployment (a retired one keeps none)."""
        row = self._by_id(deployment_id)
        done = self.session.execute(
            update(DeploymentRow)
            .where(DeploymentRow.id == deployment_id, DeploymentRow.status == DeploymentStatus.ACTIVE.value)
            .values(cron=schedule.cron if schedule else None,
                    timezone=schedule.timezone if schedule else None, next_run_at=next_run_at)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            check_deployment_transition(DeploymentStatus(row.status), DeploymentStatus.RETIRED, name=row.name)
        return self.get_by_id(deployment_id)

    def due(self, now: datetime, *, limit: int = 50) -> builtins.list[Deployment]:
        rows = self.session.scalars(
            select(DeploymentRow)
            .where(DeploymentRow.status == DeploymentStatus.ACTIVE.value,
                   DeploymentRow.next_run_at.is_not(None), DeploymentRow.next_run_at <= now)
            .order_by(DeploymentRow.next_run_at, DeploymentRow.id).limit(limit)
        )
        return [_deployment(r) for r in rows]

    def advance(self, deployment_id: int, *, expected: datetime, next_run_at: datetime | None) -> bool:
        """Compare-and-set the next firing time; False if another scheduler (or a retirement)
        moved it first."""
        done = self.session.execute(
            update(DeploymentRow)
            .where(DeploymentRow.id == deployment_id, DeploymentRow.next_run_at == expected,
                   DeploymentRow.status == DeploymentStatus.ACTIVE.value)
            .values(next_run_at=next_run_at).execution_options(synchronize_session=False)
        )
        return done.rowcount == 1  # type: ignore[attr-defined]

    def add_run(
        self, *, project_id: int, deployment_id: int, job_id: int, trigger: BatchTrigger,
        scheduled_at: datetime | None, input_dataset_version_id: int | None,
        parameters: dict[str, Any],
    ) -> BatchRun:
        """Raises AlreadyExists if the deployment already has a run for ``scheduled_at``."""
        row = BatchRunRow(
            project_id=project_id, deployment_id=deployment_id, job_id=job_id,
            trigger=trigger.value, scheduled_at=scheduled_at, created_at=utcnow(),
            input_dataset_version_id=input_dataset_version_id, parameters=parameters,
        )
        self._insert_unique(row, f"a batch run of deployment {deployment_id} at {scheduled_at}")
        return _run(row)

    def _run_row(self, job_id: int) -> BatchRunRow:
        row = self.session.scalar(
            select(BatchRunRow).where(BatchRunRow.job_id == job_id).execution_options(populate_existing=True)
        )
        if row is None:
            raise NotFound(f"batch run of job {job_id} not found")
        return row

    def get_run(self, job_id: int) -> BatchRun:
        return _run(self._run_row(job_id))

    def list_runs(self, deployment_id: int, *, limit: int = 200) -> builtins.list[BatchRun]:
        rows = self.session.scalars(
            select(BatchRunRow).where(BatchRunRow.deployment_id == deployment_id)
            .order_by(BatchRunRow.id.desc()).limit(limit)
        )
        return [_run(r) for r in rows]

    def update_run(self, job_id: int, fields: dict[str, Any]) -> BatchRun:
        row = self._run_row(job_id)
        for key, value in fields.items():
            setattr(row, key, value)
        self.session.flush()
        return _run(row)

    def jobs(self, deployment_id: int, *, limit: int = 200) -> builtins.list[Job]:
        """Every job a deployment owns (deployment, batch predictions, retirement), newest first."""
        rows = self.session.scalars(
            select(t.JobRow)
            .where(t.JobRow.target_type == DEPLOYMENT_TARGET, t.JobRow.target_id == deployment_id)
            .order_by(t.JobRow.id.desc()).limit(limit)
        )
        return [convert.job(r) for r in rows]


class SqlAuditStore(_SqlStore):
    """Append and read; there is deliberately no update or delete."""

    def append(self, entry: AuditEntry) -> AuditEvent:
        row = AuditEventRow(
            project_id=entry.project_id, at=entry.at or utcnow(), actor=entry.actor, action=entry.action.value,
            target_type=entry.target_type.value, target_id=entry.target_id, target=entry.target,
            package_id=entry.package_id, before=entry.before, after=entry.after,
            reason=entry.reason, job_id=entry.job_id,
        )
        self.session.add(row)
        self.session.flush()
        return _event(row)

    def list(
        self, *, project_id: int, package_id: int | None = None,
        actions: Sequence[AuditAction] = (), since: datetime | None = None,
        until: datetime | None = None, after_id: int = 0, limit: int = 1000,
    ) -> builtins.list[AuditEvent]:
        """Oldest first, from ``after_id`` on (page with the last id you got)."""
        query = select(AuditEventRow).where(
            AuditEventRow.project_id == project_id, AuditEventRow.id > after_id
        )
        if package_id is not None:
            query = query.where(AuditEventRow.package_id == package_id)
        if actions:
            query = query.where(AuditEventRow.action.in_([a.value for a in actions]))
        if since is not None:
            query = query.where(AuditEventRow.at >= since)
        if until is not None:
            query = query.where(AuditEventRow.at <= until)
        rows = self.session.scalars(query.order_by(AuditEventRow.id).limit(limit))
        return [_event(r) for r in rows]
