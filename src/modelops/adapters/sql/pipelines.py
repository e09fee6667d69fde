"""SQL rows and store for pipelines, their runs and the files each run produced.

A run row is keyed by its job (one run, one job) and, for scheduled runs, by the unique pair
(pipeline, scheduled time): two schedulers that race for the same firing insert the same key,
and the database lets exactly one of them win.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from modelops.adapters.sql.stores import _SqlStore
from modelops.adapters.sql.tables import Base, utcnow
from modelops.domain.errors import NotFound
from modelops.domain.pipelines import (
    DataSelection,
    Pipeline,
    PipelineRun,
    PipelineType,
    RunFile,
    RunTrigger,
    Schedule,
    ScheduleKind,
)


class PipelineRow(Base):
    __tablename__ = "pipelines"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        Index("ix_pipelines_next_run_at", "next_run_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    pipeline_type: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    package_id: Mapped[int] = mapped_column(ForeignKey("model_packages.id"))
    package_name: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    version: Mapped[str] = mapped_column(String(16))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    dataset_name: Mapped[str] = mapped_column(String(64))
    dataset_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    folder: Mapped[str] = mapped_column(String(1024), default="")
    eval_dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), nullable=True)
    eval_dataset_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    eval_dataset_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    eval_folder: Mapped[str] = mapped_column(String(1024), default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    gpu: Mapped[bool] = mapped_column(Boolean, default=False)
    schedule_kind: Mapped[str] = mapped_column(String(8))
    run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    cron: Mapped[str | None] = mapped_column(String(128), nullable=True)
    next_run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    timeout_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))


class PipelineRunRow(Base):
    __tablename__ = "pipeline_runs"
    __table_args__ = (UniqueConstraint("pipeline_id", "scheduled_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    # A deleted pipeline leaves its runs on record, detached.
    pipeline_id: Mapped[int | None] = mapped_column(
        ForeignKey("pipelines.id", ondelete="SET NULL"), nullable=True, index=True
    )
    pipeline_name: Mapped[str] = mapped_column(String(64))
    pipeline_type: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), unique=True)
    trigger: Mapped[str] = mapped_column(String(16))
    scheduled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    new_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    new_version: Mapped[str | None] = mapped_column(String(16), nullable=True)
    results: Mapped[dict[str, Any]] = mapped_column(default=dict)
    results_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PipelineRunFileRow(Base):
    __tablename__ = "pipeline_run_files"
    __table_args__ = (UniqueConstraint("run_id", "area", "path"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id"), index=True)
    area: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))


# --------------------------------------------------------------------------- conversions


def _pipeline(row: PipelineRow) -> Pipeline:
    evaluation = None
    if row.eval_dataset_id is not None:
        evaluation = DataSelection(
            dataset_id=row.eval_dataset_id, dataset=row.eval_dataset_name or "",
            version=row.eval_dataset_version, folder=row.eval_folder,
        )
    return Pipeline(
        id=row.id, project_id=row.project_id, name=row.name,
        pipeline_type=PipelineType(row.pipeline_type), package_id=row.package_id,
        package=row.package_name, version_id=row.version_id, version=row.version,
        data=DataSelection(
            dataset_id=row.dataset_id, dataset=row.dataset_name, version=row.dataset_version,
            folder=row.folder,
        ),
        evaluation_data=evaluation, parameters=dict(row.parameters or {}), gpu=row.gpu,
        schedule=Schedule(kind=ScheduleKind(row.schedule_kind), run_at=row.run_at, cron=row.cron),
        next_run_at=row.next_run_at, timeout_seconds=row.timeout_seconds,
        description=row.description, created_at=row.created_at, created_by=row.created_by,
    )


def _run(row: PipelineRunRow) -> PipelineRun:
    return PipelineRun(
        id=row.id, project_id=row.project_id, pipeline_id=row.pipeline_id,
        pipeline=row.pipeline_name, pipeline_type=PipelineType(row.pipeline_type),
        job_id=row.job_id, trigger=RunTrigger(row.trigger), scheduled_at=row.scheduled_at,
        created_at=row.created_at, inputs=dict(row.inputs or {}), score=row.score,
        new_version_id=row.new_version_id, new_version=row.new_version,
        results=dict(row.results or {}), results_sha256=row.results_sha256,
    )


def _file(row: PipelineRunFileRow) -> RunFile:
    return RunFile(area=row.area, path=row.path, size=row.size, sha256=row.sha256)


# --------------------------------------------------------------------------- store


class SqlPipelineStore(_SqlStore):
    def add(self, *, fields: dict[str, Any], actor: str) -> Pipeline:
        row = PipelineRow(created_by=actor, **fields)
        self._insert_unique(row, f"pipeline '{fields.get('name')}'")
        return _pipeline(row)

    def _row(self, project_id: int, name: str) -> PipelineRow:
        row = self.session.scalar(
            select(PipelineRow).where(PipelineRow.project_id == project_id, PipelineRow.name == name)
        )
        if row is None:
            raise NotFound(f"pipeline '{name}' not found")
        return row

    def get(self, project_id: int, name: str) -> Pipeline:
        return _pipeline(self._row(project_id, name))

    def get_by_id(self, pipeline_id: int) -> Pipeline:
        row = self.session.get(PipelineRow, pipeline_id, populate_existing=True)
        if row is None:
            raise NotFound(f"pipeline {pipeline_id} not found")
        return _pipeline(row)

    def list(self, project_id: int) -> builtins.list[Pipeline]:
        rows = self.session.scalars(
            select(PipelineRow).where(PipelineRow.project_id == project_id).order_by(PipelineRow.name)
        )
        return [_pipeline(r) for r in rows]

    def delete(self, pipeline_id: int) -> None:
        # Detach the runs explicitly: SQLite applies ON DELETE SET NULL only with its foreign
        # key pragma on, and a run's record must survive either way.
        self.session.execute(
            update(PipelineRunRow).where(PipelineRunRow.pipeline_id == pipeline_id)
            .values(pipeline_id=None).execution_options(synchronize_session=False)
        )
        self.session.execute(delete(PipelineRow).where(PipelineRow.id == pipeline_id))

    def due(self, now: datetime, *, limit: int = 50) -> builtins.list[Pipeline]:
        rows = self.session.scalars(
            select(PipelineRow)
            .where(PipelineRow.next_run_at.is_not(None), PipelineRow.next_run_at <= now)
            .order_by(PipelineRow.next_run_at, PipelineRow.id)
            .limit(limit)
        )
        return [_pipeline(r) for r in rows]

    def advance(self, pipeline_id: int, *, expected: datetime, next_run_at: datetime | None) -> bool:
        """Compare-and-set the next firing time; False if another scheduler moved it first."""
        result = self.session.execute(
            update(PipelineRow)
            .where(PipelineRow.id == pipeline_id, PipelineRow.next_run_at == expected)
            .values(next_run_at=next_run_at)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    def add_run(
        self, *, project_id: int, pipeline: Pipeline, job_id: int, trigger: RunTrigger,
        scheduled_at: datetime | None,
    ) -> PipelineRun:
        """Raises AlreadyExists if this pipeline already has a run for ``scheduled_at``."""
        row = PipelineRunRow(
            project_id=project_id, pipeline_id=pipeline.id, pipeline_name=pipeline.name,
            pipeline_type=pipeline.pipeline_type.value, job_id=job_id, trigger=trigger.value,
            scheduled_at=scheduled_at,
        )
        self._insert_unique(row, f"a run of pipeline '{pipeline.name}' at {scheduled_at}")
        return _run(row)

    def has_run_at(self, pipeline_id: int, scheduled_at: datetime) -> bool:
        found = self.session.scalar(
            select(PipelineRunRow.id).where(
                PipelineRunRow.pipeline_id == pipeline_id, PipelineRunRow.scheduled_at == scheduled_at
            )
        )
        return found is not None

    def _run_row(self, job_id: int) -> PipelineRunRow:
        row = self.session.scalar(
            select(PipelineRunRow).where(PipelineRunRow.job_id == job_id)
            .execution_options(populate_existing=True)
        )
        if row is None:
            raise NotFound(f"pipeline run {job_id} not found")
        return row

    def get_run(self, job_id: int) -> PipelineRun:
        return _run(self._run_row(job_id))

    def list_runs(
        self, *, project_id: int, pipeline_id: int | None = None, limit: int = 200
    ) -> builtins.list[PipelineRun]:
        query = (
            select(PipelineRunRow).where(PipelineRunRow.project_id == project_id)
            .order_by(PipelineRunRow.id.desc()).limit(limit)
        )
        if pipeline_id is not None:
            query = query.where(PipelineRunRow.pipeline_id == pipeline_id)
        return [_run(r) for r in self.session.scalars(query)]

    def update_run(self, job_id: int, fields: dict[str, Any]) -> PipelineRun:
        result = self.session.execute(
            update(PipelineRunRow).where(PipelineRunRow.job_id == job_id).values(**fields)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"pipeline run {job_id} not found")
        return self.get_run(job_id)

    def add_files(self, job_id: int, files: Sequence[RunFile]) -> None:
        if not files:
            return
        run_id = self._run_row(job_id).id
        self.session.execute(
            insert(PipelineRunFileRow),
            [
                {"run_id": run_id, "area": f.area, "path": f.path, "size": f.size, "sha256": f.sha256}
                for f in files
            ],
        )

    def files(self, job_id: int, area: str) -> builtins.list[RunFile]:
        run_id = self._run_row(job_id).id
        rows = self.session.scalars(
            select(PipelineRunFileRow)
            .where(PipelineRunFileRow.run_id == run_id, PipelineRunFileRow.area == area)
            .order_by(PipelineRunFileRow.path)
        )
        return [_file(r) for r in rows]

    def file(self, job_id: int, area: str, path: str) -> RunFile:
        run_id = self._run_row(job_id).id
        row = self.session.scalar(
            select(PipelineRunFileRow).where(
                PipelineRunFileRow.run_id == run_id, PipelineRunFileRow.area == area,
                PipelineRunFileRow.path == path,
            )
        )
        if row is None:
            raise NotFound(f"run {job_id} has no file '{path}' in its {area.replace('_', ' ')}")
        return _file(row)
