"""Bring your own model: import model files as version N.0, and compute statistics on data.

An import stores the uploaded files first (a zip of the model folder, content-addressed),
then submits an IMPORT job; that job's process loads and introspects the model, and only when
it succeeds does ``ImportKind.finish`` commit the version, with status ``imported``. With a
reference dataset named, a COMPUTE_STATISTICS job follows automatically. The server itself
reads nothing but file names and a few header bytes of the upload: it never opens a model.

Job kinds: ``modelops.services.byom_kinds``; what runs in the jobs: ``modelops.runtime``.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from modelops.archives import (
    ArchiveLimits,
    extract_archive,
    pack_zip,
    remove_tree,
    single_root,
    walk_files,
)
from modelops.domain.byom import (
    HEAD_BYTES,
    ModelFormat,
    ModelStatistics,
    detect_model,
    parse_features,
    parse_format,
    parse_task,
)
from modelops.domain.entities import Principal
from modelops.domain.errors import InvalidInput
from modelops.domain.jobs import Job, JobKind
from modelops.domain.names import validate_name
from modelops.domain.roles import Role, require_role
from modelops.domain.versions import parse_version
from modelops.ports import ArtifactStore, UnitOfWorkFactory
from modelops.services.byom_kinds import check_reference_dataset
from modelops.services.jobs import JobService

# File name given to a single uploaded file when the client names none.
_DEFAULT_NAMES = {
    ModelFormat.ONNX: "model.onnx",
    ModelFormat.PICKLE: "model.pkl",
    ModelFormat.JOBLIB: "model.joblib",
    ModelFormat.PMML: "model.pmml",
}
_ARCHIVE_SUFFIXES = (".zip",)


def _safe_filename(filename: str) -> str:
    name = PurePosixPath(filename.replace("\\", "/")).name
    if not name or name in (".", "..") or "\0" in name or len(name) > 128:
        raise InvalidInput(f"invalid file name {filename!r}")
    return name


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(HEAD_BYTES)


class ImportService:
    def __init__(
        self, *, uow: UnitOfWorkFactory, artifacts: ArtifactStore, jobs: JobService, scratch: Path,
        limits: ArchiveLimits,
    ) -> None:
        self.uow = uow
        self.artifacts = artifacts
        self.jobs = jobs
        self.scratch = scratch
        self.limits = limits

    # ------------------------------------------------------------------ import

    def _stage(self, upload: Path, filename: str | None, declared: ModelFormat | None, target: Path) -> Path:
        """Lay the upload out as a model folder: a zip is extracted safely, a single file is
        placed under its own (or a default) name. Returns the folder."""
        is_archive = (filename or "").lower().endswith(_ARCHIVE_SUFFIXES) or (
            not filename and zipfile.is_zipfile(upload)
        )
        if is_archive:
            extract_archive(upload, target / "unpacked", self.limits)
            folder = single_root(target / "unpacked")
            if not any(True for _ in walk_files(folder)):
                raise InvalidInput("the uploaded zip holds no files")
            return folder
        if filename:
            name = _safe_filename(filename)
        elif declared in _DEFAULT_NAMES:
            name = _DEFAULT_NAMES[declared]  # type: ignore[index]
        else:
            try:  # PMML text or a pickle header can be recognised without a name
                sniffed = detect_model({"upload": _head(upload)})
            except InvalidInput:
                raise InvalidInput(
                    "cannot tell the format of the uploaded file: send its file name "
                    "(filename=model.onnx) or format="
                ) from None
            name = _DEFAULT_NAMES[sniffed.format]
        folder = target / "model"
        folder.mkdir()
        upload_copy = folder / name
        with open(upload, "rb") as source, open(upload_copy, "wb") as sink:
            while chunk := source.read(1024 * 1024):
                sink.write(chunk)
        return folder

    def submit_import(
        self, *, principal: Principal, project: str, name: str, upload: Path,
        filename: str | None = None, format: str | None = None, task: str | None = None,
        features: str | list[str] | None = None, target: str | None = None,
        dataset: str | None = None, dataset_version: int | None = None, folder: str = "",
        sample_rows: int | None = None, description: str = "", timeout_seconds: float | None = None,
    ) -> Job:
        """Store the model's files and submit its IMPORT job; the version appears when it succeeds."""
        require_role(principal.role, Role.MEMBER)
        validate_name("ML package", name)
        declared = parse_format(format)
        parse_task(task)
        declared_features = parse_features(features) if isinstance(features, str) or features is None \
            else parse_features(",".join(features))
        statistics: dict[str, Any] | None = None
        if dataset:
            statistics = {"dataset": dataset, "dataset_version": dataset_version, "folder": folder,
                          "sample_rows": sample_rows}
        elif dataset_version is not None or folder:
            raise InvalidInput("dataset_version and folder need dataset=")
        # Fail fast, before any file is stored, on everything that can be checked now.
        with self.uow() as uow:
            project_id = uow.projects.get(project).id
            if statistics is not None:
                statistics = check_reference_dataset(uow, project_id=project_id, statistics=statistics)
        staging = Path(tempfile.mkdtemp(prefix="import-", dir=self.scratch))
        try:
            model_dir = self._stage(upload, filename, declared, staging)
            heads = {rel: _head(path) for rel, path in walk_files(model_dir)}
            detected = detect_model(heads, declared)
            archive = staging / "model.zip"
            pack_zip(model_dir, archive)
            blob = self.artifacts.put_file(archive)
        finally:
            remove_tree(staging)
        return self.jobs.submit(
            principal=principal, project=project, kind=JobKind.IMPORT,
            timeout_seconds=timeout_seconds,
            parameters={
                "package": name, "description": description, "format": detected.format.value,
                "model_file": detected.model_file, "zip_sha256": blob.sha256, "zip_size": blob.size,
                "features": declared_features, "task": task, "target": target or None,
                "filename": filename or "", "statistics": statistics,
            },
        )

    # ------------------------------------------------------------------ statistics

    def submit_statistics(
        self, *, principal: Principal, project: str, name: str, version: str, dataset: str,
        dataset_version: int | None = None, folder: str = "", sample_rows: int | None = None,
        target: str | None = None, timeout_seconds: float | None = None,
    ) -> Job:
        """Compute statistics of any version (imported or an ML package with main.py) on a
        dataset version (its latest when none is given)."""
        parameters: dict[str, Any] = {
            "package": name, "version": version, "dataset": dataset, "folder": folder,
        }
        if dataset_version is not None:
            parameters["dataset_version"] = dataset_version
        if sample_rows is not None:
            parameters["sample_rows"] = sample_rows
        if target:
            parameters["target"] = target
        return self.jobs.submit(
            principal=principal, project=project, kind=JobKind.COMPUTE_STATISTICS,
            parameters=parameters, timeout_seconds=timeout_seconds,
        )

    def latest_statistics(
        self, *, principal: Principal, project: str, name: str, version: str,
        dataset: str | None = None, dataset_version: int | None = None,
    ) -> ModelStatistics:
        """The newest statistics of a version, optionally on one dataset (and version)."""
        major, minor = parse_version(version)
        with self.uow() as uow:
            proj = uow.projects.get(project)
            package = uow.packages.get(proj.id, name)
            model_version = uow.packages.get_version(package.id, major, minor)
            if dataset is None:
                if dataset_version is not None:
                    raise InvalidInput("dataset_version needs dataset=")
                return uow.statistics.latest(model_version.id)
            found = uow.datasets.get(proj.id, dataset)
            if dataset_version is not None:
                wanted = uow.datasets.get_version(found.id, dataset_version).id
                return uow.statistics.latest(model_version.id, wanted)
            # Newest on any version of that dataset.
            for stats in reversed(uow.statistics.history(model_version.id)):
                used = uow.datasets.get_version_by_id(stats.dataset_version_id, with_files=False)
                if used.dataset_id == found.id:
                    return stats
            return uow.statistics.latest(model_version.id, -1)  # raises NotFound, worded
