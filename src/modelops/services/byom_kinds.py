"""The IMPORT and COMPUTE_STATISTICS job kinds (bring your own model).

Server side, these only move files and check JSON: ``prepare`` copies a stored model and data
into the job's folder, ``finish`` reads what the job's process wrote (a signature, statistics)
as untrusted input and registers it. Models are opened only by ``modelops.runtime`` inside the
job's process; nothing here deserialises a model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelops.archives import ArchiveLimits
from modelops.domain.byom import (
    ModelFormat,
    ModelSignature,
    check_feature_names,
    check_relative_path,
    parse_format,
    parse_task,
    scoring_spec,
    signature_from_dict,
)
from modelops.domain.entities import DatasetVersion, ModelVersion
from modelops.domain.errors import InvalidInput, ModelOpsError, NotFound
from modelops.domain.jobs import Job, JobKind
from modelops.domain.manifest import normalise_folder, select_folder
from modelops.domain.model_status import ModelStatus
from modelops.domain.names import validate_name
from modelops.domain.versions import parse_version
from modelops.ports import ArtifactStore, UnitOfWork, UnitOfWorkFactory
from modelops.services.audit import record_registration
from modelops.services.job_files import fetch_entries, read_job_json, runtime_argv, unpack_blob
from modelops.services.job_kinds import CheckedParameters, PreparedJob

MAX_SIGNATURE_BYTES = 5 * 1024 * 1024
MAX_STATISTICS_BYTES = 64 * 1024 * 1024
DATA_SUFFIXES = (".csv", ".parquet", ".pq")
DEFAULT_SAMPLE_ROWS = 10_000
MAX_SAMPLE_ROWS = 1_000_000
_SHA = re.compile(r"^[0-9a-f]{64}$")


def is_imported(version: ModelVersion) -> bool:
    return scoring_spec(version.lineage)["format"] != ModelFormat.PACKAGE.value


def data_entries(version: DatasetVersion, folder: str) -> list[Any]:
    return [e for e in select_folder(version.files, folder) if e.path.lower().endswith(DATA_SUFFIXES)]








def check_reference_dataset(uow: UnitOfWork, *, project_id: int, statistics: Any) -> dict[str, Any]:
    """The reference dataset an import names for its follow-up statistics, checked before the
    import starts (the version it will describe does not exist yet)."""
    if not isinstance(statistics, dict):
        raise InvalidInput("statistics must be an object naming the reference dataset")
    dataset = uow.datasets.get(project_id, str(statistics.get("dataset") or ""))
    number = statistics.get("dataset_version") or dataset.latest_version
    if not isinstance(number, int) or number < 1:
        raise NotFound(f"dataset '{dataset.name}' has no version yet")
    found = uow.datasets.get_version(dataset.id, number)
    folder = normalise_folder(statistics.get("folder") or "")
    if not data_entries(found, folder):
        raise InvalidInput(
            f"dataset '{dataset.name}' version {number} has no CSV or Parquet file"
            + (f" in folder '{folder}'" if folder else "")
        )
    sample_rows = statistics.get("sample_rows") or DEFAULT_SAMPLE_ROWS
    if not isinstance(sample_rows, int) or not 1 <= sample_rows <= MAX_SAMPLE_ROWS:
        raise InvalidInput(f"sample_rows must be a whole number from 1 to {MAX_SAMPLE_ROWS}")
    return {"dataset": dataset.name, "dataset_version": number, "folder": folder,
            "sample_rows": sample_rows}


class StatisticsKind:
    """COMPUTE_STATISTICS: score a sample of a dataset version and describe data and output."""

    kind = JobKind.COMPUTE_STATISTICS

    def __init__(self, *, uow: UnitOfWorkFactory, artifacts: ArtifactStore, limits: ArchiveLimits) -> None:
        self.uow = uow
        self.artifacts = artifacts
        self.limits = limits

    def check(self, uow: UnitOfWork, *, project_id: int, parameters: dict[str, Any]) -> CheckedParameters:
        """Validate inside a caller's transaction (the import's finish uses the same one)."""
        allowed = {"package", "version", "dataset", "dataset_version", "folder", "sample_rows", "target"}
        unknown = sorted(set(parameters) - allowed)
        if unknown:
            raise InvalidInput(f"unknown parameter(s) for compute_statistics: {', '.join(unknown)}")
        package_name, version_text, dataset_name = (parameters.get(k) for k in ("package", "version", "dataset"))
        if not isinstance(package_name, str) or not isinstance(version_text, str):
            raise InvalidInput("compute_statistics needs 'package' and 'version' (e.g. \"1.0\")")
        if not isinstance(dataset_name, str) or not dataset_name:
            raise InvalidInput("compute_statistics needs 'dataset': the reference dataset's name")
        folder = normalise_folder(parameters.get("folder") or "")
        sample_rows = parameters.get("sample_rows") or DEFAULT_SAMPLE_ROWS
        if not isinstance(sample_rows, int) or not 1 <= sample_rows <= MAX_SAMPLE_ROWS:
            raise InvalidInput(f"sample_rows must be a whole number from 1 to {MAX_SAMPLE_ROWS}")
        target = parameters.get("target")
        if target is not None:
            check_feature_names([target], what="target column")
        major, minor = parse_version(version_text)
        package = uow.packages.get(project_id, package_name)
        version = uow.packages.get_version(package.id, major, minor)
        if not is_imported(version) and not version.can_serve:
            raise InvalidInput(
                f"{package_name} {version.version} cannot score: it is neither an imported model "
                "nor a package with main.py (class Main with predict)"
            )
        dataset = uow.datasets.get(project_id, dataset_name)
        wanted = parameters.get("dataset_version")
        if wanted is None:
            if dataset.latest_version == 0:
                raise NotFound(f"dataset '{dataset_name}' has no version yet")
            wanted = dataset.latest_version
        if not isinstance(wanted, int):
            raise InvalidInput("dataset_version must be a version number")
        dataset_version = uow.datasets.get_version(dataset.id, wanted)
        if not data_entries(dataset_version, folder):
            where = f" in folder '{folder}'" if folder else ""
            raise InvalidInput(
                f"dataset '{dataset_name}' version {wanted} has no CSV or Parquet file{where}"
            )
        return CheckedParameters(
            parameters={
                "package": package_name, "version": version.version, "dataset": dataset_name,
                "dataset_version": wanted, "dataset_version_id": dataset_version.id,
                "folder": folder, "sample_rows": sample_rows, "target": target,
            },
            target_type="model_version", target_id=version.id,
        )

    def validate(self, *, project_id: int, parameters: dict[str, Any]) -> CheckedParameters:
        with self.uow() as uow:
            return self.check(uow, project_id=project_id, parameters=parameters)

    def prepare(self, job: Job, workdir: Path) -> PreparedJob:
        params = job.parameters
        if job.target_id is None:
            raise InvalidInput("the job names no model version")
        with self.uow() as uow:
            version = uow.packages.get_version_by_id(job.target_id)
            dataset_version = uow.datasets.get_version_by_id(int(params["dataset_version_id"]))
        model_dir, data_dir = workdir / "model", workdir / "data"
        unpack_blob(self.artifacts, version.zip_sha256, model_dir, self.limits)
        spec = scoring_spec(version.lineage, version.code_root)
        requirements = None
        if not is_imported(version):  # an ML package: main.py scores whole rows
            code_dir = model_dir.joinpath(*version.code_root.split("/")) if version.code_root else model_dir
            if (code_dir / "requirements.txt").is_file():
                requirements = code_dir / "requirements.txt"
        if params.get("target"):
            spec["target"] = params["target"]
        fetch_entries(self.artifacts, data_entries(dataset_version, params.get("folder", "")), data_dir)
        (workdir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        argv = runtime_argv(
            "statistics", model_dir=model_dir, spec=workdir / "spec.json", data=data_dir,
            out=workdir / "statistics.json", sample_rows=int(params.get("sample_rows") or DEFAULT_SAMPLE_ROWS),
        )
        return PreparedJob(argv=argv, requirements=requirements)

    def finish(self, job: Job, workdir: Path) -> dict[str, Any]:
        stats = read_job_json(workdir / "statistics.json", limit=MAX_STATISTICS_BYTES, what="statistics")
        if (
            not isinstance(stats, dict) or stats.get("format_version") != 1
            or not isinstance(stats.get("features"), dict) or not isinstance(stats.get("predictions"), dict)
        ):
            raise InvalidInput("the job's statistics do not have the documented format")
        params = job.parameters
        # Where the numbers came from is the server's to say, not the job's.
        stats["dataset"] = {"name": params["dataset"], "version": params["dataset_version"],
                            "folder": params.get("folder", "")}
        assert job.target_id is not None
        with self.uow() as uow:
            stored = uow.statistics.add(
                model_version_id=job.target_id, dataset_version_id=int(params["dataset_version_id"]),
                job_id=job.id, folder=params.get("folder", ""), stats=stats, actor=job.actor,
            )
        return {
            "statistics_id": stored.id, "package": params["package"], "version": params["version"],
            "dataset": params["dataset"], "dataset_version": params["dataset_version"],
            "rows": stats.get("rows"), "scored_rows": stats.get("scored_rows"),
            "features": len(stats["features"]),
        }


class ImportKind:
    """IMPORT: load the uploaded model in the job's process; register version N.0 on success."""

    kind = JobKind.IMPORT

    def __init__(
        self, *, uow: UnitOfWorkFactory, artifacts: ArtifactStore, limits: ArchiveLimits,
        statistics: StatisticsKind, wake: Callable[[], None],
    ) -> None:
        self.uow = uow
        self.artifacts = artifacts
        self.limits = limits
        self.statistics = statistics
        self.wake = wake

    def validate(self, *, project_id: int, parameters: dict[str, Any]) -> CheckedParameters:
        allowed = {"package", "description", "format", "model_file", "zip_sha256", "zip_size",
                   "features", "task", "target", "filename", "statistics"}
        unknown = sorted(set(parameters) - allowed)
        if unknown:
            raise InvalidInput(f"unknown parameter(s) for import: {', '.join(unknown)}")
        name = validate_name("ML package", str(parameters.get("package") or ""))
        fmt = parse_format(parameters.get("format"))
        if fmt is None:
            raise InvalidInput("an import job needs 'format'")
        model_file = check_relative_path(str(parameters.get("model_file") or ""))
        sha = parameters.get("zip_sha256")
        if not isinstance(sha, str) or not _SHA.match(sha) or not self.artifacts.exists(sha):
            raise InvalidInput("an import job needs 'zip_sha256': the stored upload of the model")
        size = parameters.get("zip_size")
        if not isinstance(size, int) or size <= 0:
            raise InvalidInput("an import job needs 'zip_size'")
        features = parameters.get("features")
        if features is not None:
            if not isinstance(features, list):
                raise InvalidInput("features must be a list of column names")
            features = check_feature_names(features)
        task = parse_task(parameters.get("task"))
        target = parameters.get("target")
        if target is not None:
            check_feature_names([target], what="target column")
        statistics = parameters.get("statistics")
        if statistics is not None:
            with self.uow() as uow:
                statistics = check_reference_dataset(uow, project_id=project_id, statistics=statistics)
        return CheckedParameters(parameters={
            "package": name, "description": str(parameters.get("description") or ""),
            "format": fmt.value, "model_file": model_file, "zip_sha256": sha, "zip_size": size,
            "features": features, "task": task.value if task else None, "target": target,
            "filename": str(parameters.get("filename") or "")[:256], "statistics": statistics,
        })

    def prepare(self, job: Job, workdir: Path) -> PreparedJob:
        params = job.parameters
        model_dir = workdir / "model"
        unpack_blob(self.artifacts, params["zip_sha256"], model_dir, self.limits)
        spec = {k: params.get(k) for k in ("format", "model_file", "features", "task", "target")}
        (workdir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        return PreparedJob(argv=runtime_argv(
            "model_import", model_dir=model_dir, spec=workdir / "spec.json",
            out=workdir / "signature.json",
        ))

    def _signature(self, job: Job, workdir: Path) -> ModelSignature:
        signature = signature_from_dict(
            read_job_json(workdir / "signature.json", limit=MAX_SIGNATURE_BYTES, what="model signature")
        )
        params = job.parameters
        if signature.format.value != params["format"] or signature.model_file != params["model_file"]:
            raise InvalidInput("the import job's output does not describe the uploaded model file")
        if params.get("features") and signature.features != params["features"]:
            raise InvalidInput("the import job's output does not keep the declared features")
        return signature

    def finish(self, job: Job, workdir: Path) -> dict[str, Any]:
        signature = self._signature(job, workdir)
        params = job.parameters
        if not self.artifacts.exists(params["zip_sha256"]):
            raise InvalidInput("the uploaded model's files are no longer stored")
        statistics_job = None
        statistics_error = None
        # One transaction: the version and its follow-up statistics job appear together or
        # not at all.
        with self.uow() as uow:
            project = uow.projects.get_by_id(job.project_id)
            package = uow.packages.get_or_add(project_id=project.id, name=params["package"], actor=job.actor)
            version = uow.packages.add_major_version(
                package_id=package.id,
                fields={
                    "status": ModelStatus.IMPORTED.value,
                    "zip_sha256": params["zip_sha256"],
                    "zip_size": params["zip_size"],
                    "code_root": "",
                    "can_train": False,
                    "can_serve": True,  # modelops.runtime.scoring loads it by its format
                    "requirements_sha256": None,
                    "lineage": {
                        "source": "import", "description": params.get("description", ""),
                        "import_job_id": job.id, "filename": params.get("filename", ""),
                        "byom": signature.as_dict(),
                    },
                },
                actor=job.actor,
            )
            record_registration(uow, version, project_id=project.id, package=package.name)
            if params.get("statistics"):
                wanted = dict(params["statistics"], package=package.name, version=version.version,
                              target=signature.target)
                try:
                    checked = self.statistics.check(uow, project_id=project.id, parameters=wanted)
                except ModelOpsError as exc:  # the model is fine; only its follow-up cannot run
                    statistics_error = str(exc)
                else:
                    statistics_job = uow.jobs.add(
                        project_id=project.id, kind=JobKind.COMPUTE_STATISTICS, actor=job.actor,
                        parameters=checked.parameters, target_type=checked.target_type,
                        target_id=checked.target_id, timeout_seconds=job.timeout_seconds,
                    )
        if statistics_job is not None:
            self.wake()
        return {
            "package": package.name, "version": version.version, "model_version_id": version.id,
            "format": signature.format.value, "task": signature.task.value,
            "features": signature.features, "target": signature.target,
            "statistics_job_id": statistics_job.id if statistics_job else None,
            **({"statistics_error": statistics_error} if statistics_error else {}),
        }

