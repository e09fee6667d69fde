"""SQL stores for projects, tokens, datasets and ML packages."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelops.adapters.sql import convert
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
from modelops.domain.errors import AlreadyExists, NotFound
from modelops.domain.model_status import ModelStatus, check_model_transition
from modelops.domain.roles import Role
from modelops.domain.versions import next_major, next_minor


class _SqlStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _insert_unique(self, row: Any, what: str) -> None:
        try:
            with self.session.begin_nested():
                self.session.add(row)
                self.session.flush()
        except IntegrityError as exc:
            raise AlreadyExists(f"{what} already exists") from exc


class SqlProjectStore(_SqlStore):
    def add(self, *, name: str, description: str, actor: str) -> Project:
        row = t.ProjectRow(name=name, description=description, created_by=actor)
        self._insert_unique(row, f"project '{name}'")
        return convert.project(row)

    def get(self, name: str) -> Project:
        row = self.session.scalar(select(t.ProjectRow).where(t.ProjectRow.name == name))
        if row is None:
            raise NotFound(f"project '{name}' not found")
        return convert.project(row)

    def get_by_id(self, project_id: int) -> Project:
        row = self.session.get(t.ProjectRow, project_id)
        if row is None:
            raise NotFound(f"project {project_id} not found")
        return convert.project(row)

    def list(self) -> list[Project]:
        rows = self.session.scalars(select(t.ProjectRow).order_by(t.ProjectRow.name))
        return [convert.project(r) for r in rows]

    def is_empty(self, project_id: int) -> bool:
        for table in (t.DatasetRow, t.PackageRow, t.JobRow):
            if self.session.scalar(select(exists().where(table.project_id == project_id))):
                return False
        return True

    def delete(self, project_id: int) -> None:
        self.session.execute(delete(t.ProjectRow).where(t.ProjectRow.id == project_id))


class SqlTokenStore(_SqlStore):
    def add(self, *, name: str, role: Role, token_hash: str, actor: str) -> ApiToken:
        row = t.TokenRow(name=name, role=role.value, token_hash=token_hash, created_by=actor)
        self._insert_unique(row, f"token '{name}'")
        return convert.token(row)

    def find_by_hash(self, token_hash: str) -> ApiToken | None:
        row = self.session.scalar(select(t.TokenRow).where(t.TokenRow.token_hash == token_hash))
        return convert.token(row) if row else None

    def get(self, token_id: int) -> ApiToken:
        row = self.session.get(t.TokenRow, token_id)
        if row is None:
            raise NotFound(f"token {token_id} not found")
        return convert.token(row)

    def list(self) -> list[ApiToken]:
        return [convert.token(r) for r in self.session.scalars(select(t.TokenRow).order_by(t.TokenRow.id))]

    def revoke(self, token_id: int) -> ApiToken:
        row = self.session.get(t.TokenRow, token_id)
        if row is None:
            raise NotFound(f"token {token_id} not found")
        if row.revoked_at is None:
            row.revoked_at = t.utcnow()
            self.session.flush()
        return convert.token(row)

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(t.TokenRow)) or 0)


class SqlDatasetStore(_SqlStore):
    def add(self, *, project_id: int, name: str, description: str, actor: str) -> Dataset:
        row = t.DatasetRow(project_id=project_id, name=name, description=description, created_by=actor)
        self._insert_unique(row, f"dataset '{name}'")
        return convert.dataset(row)

    def _row(self, project_id: int, name: str) -> t.DatasetRow:
        row = self.session.scalar(
            select(t.DatasetRow).where(t.DatasetRow.project_id == project_id, t.DatasetRow.name == name)
        )
        if row is None:
            raise NotFound(f"dataset '{name}' not found")
        return row

    def get(self, project_id: int, name: str) -> Dataset:
        return convert.dataset(self._row(project_id, name))

    def list(self, project_id: int) -> list[Dataset]:
        rows = self.session.scalars(
            select(t.DatasetRow).where(t.DatasetRow.project_id == project_id).order_by(t.DatasetRow.name)
        )
        return [convert.dataset(r) for r in rows]

    def add_version(
        self, *, dataset_id: int, files: Sequence[ManifestEntry], content_hash: str, note: str,
        actor: str,
    ) -> DatasetVersion:
        # The counter bump locks the dataset row (PostgreSQL) or runs under SQLite's write lock,
        # so two uploads never share a number.
        number = self.session.scalar(
            update(t.DatasetRow)
            .where(t.DatasetRow.id == dataset_id)
            .values(latest_version=t.DatasetRow.latest_version + 1)
            .returning(t.DatasetRow.latest_version)
        )
        if number is None:
            raise NotFound(f"dataset {dataset_id} not found")
        row = t.DatasetVersionRow(
            dataset_id=dataset_id, version=number, file_count=len(files),
            total_size=sum(f.size for f in files), content_hash=content_hash, note=note,
            created_by=actor,
        )
        self.session.add(row)
        self.session.flush()
        if files:
            self.session.execute(
                insert(t.DatasetFileRow),
                [{"version_id": row.id, "path": f.path, "size": f.size, "sha256": f.sha256} for f in files],
            )
        return convert.dataset_version(row, [])  # callers that need files read them back

    def _files(self, version_id: int) -> builtins.list[t.DatasetFileRow]:
        return list(
            self.session.scalars(
                select(t.DatasetFileRow).where(t.DatasetFileRow.version_id == version_id).order_by(t.DatasetFileRow.path)
            )
        )

    def get_version(self, dataset_id: int, version: int, *, with_files: bool = True) -> DatasetVersion:
        row = self.session.scalar(
            select(t.DatasetVersionRow).where(
                t.DatasetVersionRow.dataset_id == dataset_id, t.DatasetVersionRow.version == version
            )
        )
        if row is None:
            raise NotFound(f"dataset version {version} not found")
        return convert.dataset_version(row, self._files(row.id) if with_files else [])

    def get_version_by_id(self, version_id: int, *, with_files: bool = True) -> DatasetVersion:
        row = self.session.get(t.DatasetVersionRow, version_id)
        if row is None:
            raise NotFound(f"dataset version id {version_id} not found")
        return convert.dataset_version(row, self._files(row.id) if with_files else [])

    def list_versions(self, dataset_id: int) -> builtins.list[DatasetVersion]:
        rows = self.session.scalars(
            select(t.DatasetVersionRow).where(t.DatasetVersionRow.dataset_id == dataset_id).order_by(t.DatasetVersionRow.version)
        )
        return [convert.dataset_version(r, []) for r in rows]


class SqlPackageStore(_SqlStore):
    def add(self, *, project_id: int, name: str, description: str, actor: str) -> ModelPackage:
        row = t.PackageRow(project_id=project_id, name=name, description=description, created_by=actor)
        self._insert_unique(row, f"ML package '{name}'")
        return convert.package(row)

    def _row(self, project_id: int, name: str) -> t.PackageRow | None:
        return self.session.scalar(
            select(t.PackageRow).where(t.PackageRow.project_id == project_id, t.PackageRow.name == name)
        )

    def get(self, project_id: int, name: str) -> ModelPackage:
        row = self._row(project_id, name)
        if row is None:
            raise NotFound(f"ML package '{name}' not found")
        return convert.package(row)

    def get_or_add(self, *, project_id: int, name: str, actor: str) -> ModelPackage:
        row = self._row(project_id, name)
        if row is not None:
            return convert.package(row)
        try:
            return self.add(project_id=project_id, name=name, description="", actor=actor)
        except AlreadyExists:  # created concurrently: use theirs
            return self.get(project_id, name)

    def list(self, project_id: int) -> list[ModelPackage]:
        rows = self.session.scalars(
            select(t.PackageRow).where(t.PackageRow.project_id == project_id).order_by(t.PackageRow.name)
        )
        return [convert.package(r) for r in rows]

    def add_major_version(self, *, package_id: int, fields: dict[str, Any], actor: str) -> ModelVersion:
        latest = self.session.scalar(
            update(t.PackageRow)
            .where(t.PackageRow.id == package_id)
            .values(latest_major=t.PackageRow.latest_major + 1)
            .returning(t.PackageRow.latest_major)
        )
        if latest is None:
            raise NotFound(f"ML package {package_id} not found")
        major, minor = next_major(latest - 1)
        return self._insert_version(package_id, major, minor, fields, actor)

    def add_minor_version(
        self, *, package_id: int, major: int, fields: dict[str, Any], actor: str
    ) -> ModelVersion:
        # A no-op update takes the package row's lock so concurrent runs serialise here.
        locked = self.session.execute(
            update(t.PackageRow).where(t.PackageRow.id == package_id).values(latest_major=t.PackageRow.latest_major)
        )
        if locked.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"ML package {package_id} not found")
        minors = list(
            self.session.scalars(
                select(t.ModelVersionRow.minor).where(
                    t.ModelVersionRow.package_id == package_id, t.ModelVersionRow.major == major
                )
            )
        )
        if not minors:
            raise NotFound(f"ML package {package_id} has no major version {major}")
        _, minor = next_minor(major, minors)
        return self._insert_version(package_id, major, minor, fields, actor)

    def _insert_version(
        self, package_id: int, major: int, minor: int, fields: dict[str, Any], actor: str
    ) -> ModelVersion:
        row = t.ModelVersionRow(package_id=package_id, major=major, minor=minor, created_by=actor, **fields)
        self.session.add(row)
        self.session.flush()
        return convert.model_version(row)

    def get_version(self, package_id: int, major: int, minor: int) -> ModelVersion:
        row = self.session.scalar(
            select(t.ModelVersionRow).where(
                t.ModelVersionRow.package_id == package_id,
                t.ModelVersionRow.major == major,
                t.ModelVersionRow.minor == minor,
            )
        )
        if row is None:
            raise NotFound(f"version {major}.{minor} not found")
        return convert.model_version(row)

    def get_version_by_id(self, version_id: int) -> ModelVersion:
        row = self.session.get(t.ModelVersionRow, version_id)
        if row is None:
            raise NotFound(f"model version id {version_id} not found")
        return convert.model_version(row)

    def list_versions(self, package_id: int) -> builtins.list[ModelVersion]:
        rows = self.session.scalars(
            select(t.ModelVersionRow)
            .where(t.ModelVersionRow.package_id == package_id)
            .order_by(t.ModelVersionRow.major, t.ModelVersionRow.minor)
        )
        return [convert.model_version(r) for r in rows]

    def transition_version(
        self, version_id: int, to: ModelStatus, *, reason: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> ModelVersion:
        while True:
            row = self.session.get(t.ModelVersionRow, version_id, populate_existing=True)
            if row is None:
                raise NotFound(f"model version id {version_id} not found")
            current = ModelStatus(row.status)
            check_model_transition(
                current, to, version_label=f"{row.major}.{row.minor}", reason=reason
            )
            # Compare-and-set on the status just read: a concurrent winner makes this match
            # nothing, and the next pass lets the table refuse the loser.
            result = self.session.execute(
                update(t.ModelVersionRow)
                .where(t.ModelVersionRow.id == version_id, t.ModelVersionRow.status == current.value)
                .values(**{**(fields or {}), "status": to.value})
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                updated = self.session.get(t.ModelVersionRow, version_id, populate_existing=True)
                assert updated is not None
                return convert.model_version(updated)
