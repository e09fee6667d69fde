"""SQL store for model statistics: one row per COMPUTE_STATISTICS job that succeeded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from modelops.adapters.sql.stores import _SqlStore
from modelops.adapters.sql.tables import Base, utcnow
from modelops.domain.byom import ModelStatistics
from modelops.domain.errors import NotFound


class ModelStatisticsRow(Base):
    __tablename__ = "model_statistics"
    __table_args__ = (Index("ix_model_statistics_version_dataset", "model_version_id", "dataset_version_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), unique=True)
    folder: Mapped[str] = mapped_column(String(1024), default="")
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))


def _statistics(row: ModelStatisticsRow) -> ModelStatistics:
    return ModelStatistics(
        id=row.id, model_version_id=row.model_version_id, dataset_version_id=row.dataset_version_id,
        job_id=row.job_id, folder=row.folder, stats=dict(row.stats or {}),
        created_at=row.created_at, created_by=row.created_by,
    )


class SqlStatisticsStore(_SqlStore):
    def add(
        self, *, model_version_id: int, dataset_version_id: int, job_id: int, folder: str,
        stats: dict[str, Any], actor: str,
    ) -> ModelStatistics:
        row = ModelStatisticsRow(
            model_version_id=model_version_id, dataset_version_id=dataset_version_id,
            job_id=job_id, folder=folder, stats=stats, created_by=actor,
        )
        self._insert_unique(row, f"statistics of job {job_id}")
        return _statistics(row)

    def latest(self, model_version_id: int, dataset_version_id: int | None = None) -> ModelStatistics:
        query = (
            select(ModelStatisticsRow)
            .where(ModelStatisticsRow.model_version_id == model_version_id)
            .order_by(ModelStatisticsRow.id.desc())
            .limit(1)
        )
        if dataset_version_id is not None:
            query = query.where(ModelStatisticsRow.dataset_version_id == dataset_version_id)
        row = self.session.scalar(query)
        if row is None:
            raise NotFound("no statistics have been computed for this model version"
                           + (" on that dataset version" if dataset_version_id is not None else ""))
        return _statistics(row)

    def history(self, model_version_id: int) -> list[ModelStatistics]:
        rows = self.session.scalars(
            select(ModelStatisticsRow)
            .where(ModelStatisticsRow.model_version_id == model_version_id)
            .order_by(ModelStatisticsRow.id)
        )
        return [_statistics(r) for r in rows]
