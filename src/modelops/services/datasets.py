"""Datasets: immutable, content-addressed versions of a folder tree."""

from __future__ import annotations

import builtins
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from modelops.archives import ArchiveLimits, extract_archive, pack_zip, remove_tree, walk_files
from modelops.domain.entities import Dataset, DatasetVersion, ManifestEntry, Principal
from modelops.domain.errors import AlreadyExists, InvalidInput, NotFound
from modelops.domain.manifest import ManifestDiff, diff_manifests, manifest_hash, select_folder
from modelops.domain.names import validate_name, validate_text
from modelops.domain.roles import Role, require_role
from modelops.ports import ArtifactStore, UnitOfWorkFactory
from modelops.services.job_files import fetch_entries

MAX_PATH_CHARS = 1024  # the longest file path a dataset version records


@dataclass(frozen=True)
class DatasetRef:
    project: str
    dataset: str


class DatasetService:
    def __init__(
        self, *, uow: UnitOfWorkFactory, artifacts: ArtifactStore, scratch: Path,
        limits: ArchiveLimits,
    ) -> None:
        self.uow = uow
        self.artifacts = artifacts
        self.scratch = scratch
        self.limits = limits

    def create(
        self, *, principal: Principal, project: str, name: str, description: str = ""
    ) -> Dataset:
        require_role(principal.role, Role.MEMBER)
        validate_name("dataset", name)
        validate_text("description", description)
        with self.uow() as uow:
            proj = uow.projects.get(project)
            return uow.datasets.add(project_id=proj.id, name=name, description=description, actor=principal.name)

    def list(self, *, principal: Principal, project: str) -> list[Dataset]:
        with self.uow() as uow:
            return uow.datasets.list(uow.projects.get(project).id)

    def get(self, *, principal: Principal, project: str, name: str) -> Dataset:
        with self.uow() as uow:
            return uow.datasets.get(uow.projects.get(project).id, name)

    def upload_version(
        self, *, principal: Principal, project: str, name: str, archive: Path, note: str = ""
    ) -> DatasetVersion:
        """Store an archive's files as the next version; creates the dataset if it is new."""
        require_role(principal.role, Role.MEMBER)
        validate_name("dataset", name)
        validate_text("note", note)
        with self.uow() as uow:
            uow.projects.get(project)  # fail fast on an unknown project, before any work
        target = Path(tempfile.mkdtemp(prefix="dataset-", dir=self.scratch))
        try:
            extract_archive(archive, target, self.limits)
            found = list(walk_files(target))
            if not found:
                raise InvalidInput("the archive holds no files: a dataset version needs at least one")
            # Checked before any blob is stored: the manifest column holds this many characters.
            for rel, _ in found:
                if len(rel) > MAX_PATH_CHARS:
                    raise InvalidInput(
                        f"path {rel[:60]!r}... is longer than {MAX_PATH_CHARS} characters"
                    )
            files = [
                ManifestEntry(path=rel, size=ref.size, sha256=ref.sha256)
                for rel, path in found
                for ref in [self.artifacts.put_file(path)]
            ]
        finally:
            remove_tree(target)
        # Every blob is stored before the version row commits: nothing partial is visible.
        with self.uow() as uow:
            proj = uow.projects.get(project)
            try:
                dataset = uow.datasets.get(proj.id, name)
            except NotFound:
                try:
                    dataset = uow.datasets.add(
                        project_id=proj.id, name=name, description="", actor=principal.name
                    )
                except AlreadyExists:  # a concurrent first upload created it: add to theirs
                    dataset = uow.datasets.get(proj.id, name)
            version = uow.datasets.add_version(
                dataset_id=dataset.id, files=files, content_hash=manifest_hash(files), note=note,
                actor=principal.name,
            )
            return uow.datasets.get_version_by_id(version.id)

    def list_versions(self, *, principal: Principal, project: str, name: str) -> builtins.list[DatasetVersion]:
        with self.uow() as uow:
            dataset = uow.datasets.get(uow.projects.get(project).id, name)
            return uow.datasets.list_versions(dataset.id)

    def get_version(
        self, *, principal: Principal, project: str, name: str, version: int
    ) -> DatasetVersion:
        with self.uow() as uow:
            dataset = uow.datasets.get(uow.projects.get(project).id, name)
            return uow.datasets.get_version(dataset.id, version)

    def diff(
        self, *, principal: Principal, project: str, name: str, old: int, new: int
    ) -> ManifestDiff:
        with self.uow() as uow:
            dataset = uow.datasets.get(uow.projects.get(project).id, name)
            before = uow.datasets.get_version(dataset.id, old)
            after = uow.datasets.get_version(dataset.id, new)
        return diff_manifests(before.files, after.files)

    def materialise(self, *, version: DatasetVersion, folder: str, destination: Path) -> None:
        """Write a version (or one sub-folder of it) as plain files under ``destination``."""
        fetch_entries(self.artifacts, select_folder(version.files, folder), destination)

    def export_zip(
        self, *, principal: Principal, project: str, name: str, version: int, folder: str = ""
    ) -> Path:
        """A zip of the version or one sub-folder, in scratch; the caller deletes it."""
        dv = self.get_version(principal=principal, project=project, name=name, version=version)
        select_folder(dv.files, folder)  # validate before doing any work
        staging = Path(tempfile.mkdtemp(prefix="export-", dir=self.scratch))
        try:
            self.materialise(version=dv, folder=folder, destination=staging)
            out = self.scratch / f"export-{uuid.uuid4().hex}.zip"
            pack_zip(staging, out)
            return out
        finally:
            remove_tree(staging)
