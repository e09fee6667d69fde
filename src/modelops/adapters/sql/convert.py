"""Row → domain entity conversions, the only place ORM rows turn into domain objects."""

from __future__ import annotations

from modelops.adapters.sql import tables as t
from modelops.domain.entities import (
    ApiToken,
    Dataset,
    DatasetVersion,
    ManifestEntry,
    ModelPackage,
    ModelVersion,
    Project,
)
from modelops.domain.jobs import Job, JobEvent, JobKind, JobStatus, LogLevel, LogLine
from modelops.domain.roles import Role


def project(row: t.ProjectRow) -> Project:
    return Project(
        id=row.id, name=row.name, description=row.description, created_at=row.created_at,
        created_by=row.created_by,
    )


def token(row: t.TokenRow) -> ApiToken:
    return ApiToken(
        id=row.id, name=row.name, role=Role(row.role), created_at=row.created_at,
        created_by=row.created_by, revoked_at=row.revoked_at,
    )


def dataset(row: t.DatasetRow) -> Dataset:
    return Dataset(
        id=row.id, project_id=row.project_id, name=row.name, description=row.description,
        created_at=row.created_at, created_by=row.created_by, latest_version=row.latest_version,
    )


def dataset_version(row: t.DatasetVersionRow, files: list[t.DatasetFileRow]) -> DatasetVersion:
    return DatasetVersion(
        id=row.id, dataset_id=row.dataset_id, version=row.version, file_count=row.file_count,
        total_size=row.total_size, content_hash=row.content_hash, created_at=row.created_at,
        created_by=row.created_by, note=row.note,
        files=[ManifestEntry(path=f.path, size=f.size, sha256=f.sha256) for f in files],
    )


def package(row: t.PackageRow) -> ModelPackage:
    return ModelPackage(
        id=row.id, project_id=row.project_id, name=row.name, description=row.description,
        created_at=row.created_at, created_by=row.created_by, latest_major=row.latest_major,
    )


def model_version(row: t.ModelVersionRow) -> ModelVersion:
    return ModelVersion(
        id=row.id, package_id=row.package_id, major=row.major, minor=row.minor,
        status=row.status, zip_sha256=row.zip_sha256, zip_size=row.zip_size,
        code_root=row.code_root, can_train=row.can_train, can_serve=row.can_serve,
        requirements_sha256=row.requirements_sha256, created_at=row.created_at,
        created_by=row.created_by, lineage=dict(row.lineage or {}),
        metrics=dict(row.metrics or {}),
    )


def job(row: t.JobRow) -> Job:
    return Job(
        id=row.id, project_id=row.project_id, kind=JobKind(row.kind),
        status=JobStatus(row.status), actor=row.actor, created_at=row.created_at,
        parameters=dict(row.parameters or {}), target_type=row.target_type,
        target_id=row.target_id, timeout_seconds=row.timeout_seconds, queued_at=row.queued_at,
        started_at=row.started_at, ended_at=row.ended_at, worker_ref=row.worker_ref,
        exit_code=row.exit_code, signal=row.signal, error=row.error,
        result=dict(row.result or {}), engine=row.engine, work_dir=row.work_dir,
        finishing=bool(row.finishing),
    )


def job_event(row: t.JobEventRow) -> JobEvent:
    return JobEvent(
        id=row.id, job_id=row.job_id, at=row.at,
        from_status=JobStatus(row.from_status) if row.from_status else None,
        to_status=JobStatus(row.to_status), actor=row.actor, detail=dict(row.detail or {}),
    )


def log_line(row: t.JobLogRow) -> LogLine:
    return LogLine(
        job_id=row.job_id, seq=row.seq, at=row.at, stream=row.stream,
        level=LogLevel(row.level), text=row.text,
    )
