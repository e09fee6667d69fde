"""ML packages: uploads of a package zip become version N.0 after a source-only contract check."""

from __future__ import annotations

import builtins
import tempfile
from pathlib import Path

from modelops.adapters.artifacts.hashing import sha256_file
from modelops.archives import (
    ArchiveLimits,
    detect_format,
    extract_archive,
    remove_tree,
    single_root,
)
from modelops.domain.entities import ModelPackage, ModelVersion, Principal
from modelops.domain.errors import InvalidArchive, InvalidInput
from modelops.domain.model_status import ModelStatus
from modelops.domain.names import validate_name, validate_text
from modelops.domain.package_contract import check_package
from modelops.domain.roles import Role, require_role
from modelops.domain.versions import parse_version
from modelops.ports import ArtifactStore, UnitOfWorkFactory
from modelops.services.audit import record_registration

MAX_SOURCE_BYTES = 5 * 1024 * 1024


def _read_source(path: Path) -> str | None:
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_SOURCE_BYTES:
        raise InvalidInput(f"{path.name} is larger than {MAX_SOURCE_BYTES} bytes")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name} is not UTF-8 text") from exc


class PackageService:
    def __init__(
        self, *, uow: UnitOfWorkFactory, artifacts: ArtifactStore, scratch: Path,
        limits: ArchiveLimits,
    ) -> None:
        self.uow = uow
        self.artifacts = artifacts
        self.scratch = scratch
        self.limits = limits

    def upload(
        self, *, principal: Principal, project: str, name: str, archive: Path,
        description: str = "",
    ) -> ModelVersion:
        require_role(principal.role, Role.MEMBER)
        validate_name("ML package", name)
        validate_text("description", description)
        with self.uow() as uow:
            uow.projects.get(project)
        if detect_format(archive) != "zip":
            raise InvalidArchive("an ML package must be a zip file")
        target = Path(tempfile.mkdtemp(prefix="package-", dir=self.scratch))
        try:
            extract_archive(archive, target, self.limits)
            root = single_root(target)
            report = check_package(_read_source(root / "train.py"), _read_source(root / "main.py"))
            if not report.ok:
                raise InvalidInput("invalid ML package: " + "; ".join(report.problems))
            requirements = root / "requirements.txt"
            requirements_sha = sha256_file(requirements) if requirements.is_file() else None
            code_root = root.relative_to(target).as_posix() if root != target else ""
        finally:
            remove_tree(target)
        blob = self.artifacts.put_file(archive)
        with self.uow() as uow:
            proj = uow.projects.get(project)
            package = uow.packages.get_or_add(project_id=proj.id, name=name, actor=principal.name)
            version = uow.packages.add_major_version(
                package_id=package.id,
                fields={
                    "status": ModelStatus.UPLOADED.value,
                    "zip_sha256": blob.sha256,
                    "zip_size": blob.size,
                    "code_root": code_root,
                    "can_train": report.can_train,
                    "can_serve": report.can_serve,
                    "requirements_sha256": requirements_sha,
                    "lineage": {"source": "upload", "description": description},
                },
                actor=principal.name,
            )
            return record_registration(uow, version, project_id=proj.id, package=package.name)

    def list(self, *, principal: Principal, project: str) -> list[ModelPackage]:
        with self.uow() as uow:
            return uow.packages.list(uow.projects.get(project).id)

    def get(self, *, principal: Principal, project: str, name: str) -> ModelPackage:
        with self.uow() as uow:
            return uow.packages.get(uow.projects.get(project).id, name)

    def list_versions(self, *, principal: Principal, project: str, name: str) -> builtins.list[ModelVersion]:
        with self.uow() as uow:
            package = uow.packages.get(uow.projects.get(project).id, name)
            return uow.packages.list_versions(package.id)

    def get_version(
        self, *, principal: Principal, project: str, name: str, version: str
    ) -> ModelVersion:
        major, minor = parse_version(version)
        with self.uow() as uow:
            package = uow.packages.get(uow.projects.get(project).id, name)
            return uow.packages.get_version(package.id, major, minor)
