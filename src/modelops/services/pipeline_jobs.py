"""The training, evaluation and full-pipeline job kinds: what the engine prepares and registers.

``prepare`` (server side, no user code) lays out the job's working folder:

    code/          the package version, unzipped: the process's working directory, where
                   save() writes and where ``artifacts_directory`` lives
    data/input/    the chosen dataset version (or the sub-folder's content, at the same path)
    data/training/ full pipeline: where process_data() writes the training split
    data/test/     full pipeline: the evaluation dataset if one was chosen, else empty

and runs ``modelops.runtime.pipeline`` under the package's interpreter. ``finish`` (after a
clean exit only) stores the artifacts, the training-data snapshot and the new version's zip
(``code/`` after the run, minus the artifacts folder and byte-code caches), then, in one
transaction, registers the new minor version or the score and writes ``_results.json``.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelops.adapters.artifacts.hashing import sha256_file
from modelops.archives import ArchiveLimits, extract_archive, walk_files
from modelops.domain.entities import DatasetVersion, ManifestEntry, ModelVersion
from modelops.domain.errors import InvalidInput, ModelOpsError
from modelops.domain.jobs import Job, JobKind
from modelops.domain.manifest import manifest_hash, select_folder
from modelops.domain.model_status import ModelStatus
from modelops.domain.package_contract import check_package
from modelops.domain.pipelines import (
    ARTIFACTS_AREA,
    ARTIFACTS_DIRECTORY,
    SAVE_TRAINING_DATA,
    TRAIN_DATA_AREA,
    PipelineType,
    RunFile,
    check_score,
    dataset_location,
    results_document,
    run_location,
)
from modelops.ports import ArtifactStore, UnitOfWorkFactory
from modelops.services.audit import record_evaluation, record_registration
from modelops.services.job_kinds import CheckedParameters, PreparedJob

RUNTIME_MODULE = "modelops.runtime.pipeline"
OUTPUTS_FILE = "pipeline-outputs.json"
MAX_ARTIFACT_FILES = 10_000
_CACHE_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints"})


def folder_manifest(folder: Path, *, skip: Callable[[str], bool] = lambda _rel: False) -> list[ManifestEntry]:
    return [
        ManifestEntry(path=rel, size=path.stat().st_size, sha256=sha256_file(path))
        for rel, path in walk_files(folder)
        if not skip(rel)
    ]


def _under(rel: str, folder: str) -> bool:
    return rel == folder or rel.startswith(folder + "/")


class PipelineJobHandler:
    """One handler per pipeline type; the three differ only in the methods the runtime calls
    and in what ``finish`` registers."""

    def __init__(
        self, *, kind: JobKind, uow: UnitOfWorkFactory, artifacts: ArtifactStore,
        limits: ArchiveLimits, materialise: Callable[..., None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kind = kind
        self.pipeline_type = PipelineType.for_job_kind(kind)
        self.uow = uow
        self.artifacts = artifacts
        self.limits = limits
        self.materialise = materialise  # DatasetService.materialise
        self.clock = clock

    def validate(self, *, project_id: int, parameters: dict[str, Any]) -> CheckedParameters:
        """A pipeline run is submitted with its run record by PipelineService, never as a
        bare job: refuse it here with directions, before a job exists."""
        raise InvalidInput(
            f"{self.kind.value} jobs are runs of a pipeline: create one with "
            "POST /projects/{project}/pipelines (CLI: modelops pipelines create), "
            "then run it (modelops pipelines run)"
        )

    # ------------------------------------------------------------------ prepare

    def prepare(self, job: Job, workdir: Path) -> PreparedJob:
        params = job.parameters
        with self.uow() as uow:
            version = uow.packages.get_version_by_id(int(params["version_id"]))
            data = uow.datasets.get_version_by_id(int(params["data"]["version_id"]))
            evaluation = (
                uow.datasets.get_version_by_id(int(params["evaluation_data"]["version_id"]))
                if params.get("evaluation_data") else None
            )
        code = self._unpack_code(version, workdir)
        code_hash = manifest_hash(folder_manifest(code, skip=self._is_cache))
        input_dir = self._materialise(data, params["data"]["folder"], workdir / "data" / "input")
        env = dict(params["parameters"])
        env["data_directory"] = str(input_dir)
        argv = [
            "{python}", "-m", RUNTIME_MODULE, "--type", self.pipeline_type.value,
            "--code", str(code), "--data", str(input_dir),
            "--outputs", str(workdir / OUTPUTS_FILE),
        ]
        if self.pipeline_type is PipelineType.FULL:
            training_dir = workdir / "data" / "training"
            training_dir.mkdir(parents=True, exist_ok=True)
            test_dir = workdir / "data" / "test"
            test_dir.mkdir(parents=True, exist_ok=True)
            if evaluation is not None:
                test_dir = self._materialise(
                    evaluation, params["evaluation_data"]["folder"], test_dir
                )
            env["training_data_directory"] = str(training_dir)
            env["test_data_directory"] = str(test_dir)
            argv += ["--training-dir", str(training_dir), "--test-dir", str(test_dir)]
        if not params.get("gpu"):
            env["CUDA_VISIBLE_DEVICES"] = ""  # GPU off: hide any GPU from the user's code
        selection = select_folder(data.files, params["data"]["folder"])
        with self.uow() as uow:
            uow.pipelines.update_run(job.id, {"inputs": {
                "code_hash": code_hash,
                "data_hash": manifest_hash(selection),
                "data_files": len(selection),
            }})
        requirements = code / "requirements.txt"
        return PreparedJob(
            argv=argv, env=env, requirements=requirements if requirements.is_file() else None
        )

    def _unpack_code(self, version: ModelVersion, workdir: Path) -> Path:
        archive = workdir / "package.zip"
        self.artifacts.fetch_to(version.zip_sha256, archive)
        unpacked = workdir / "package"
        extract_archive(archive, unpacked, self.limits)
        archive.unlink()
        code = unpacked.joinpath(*version.code_root.split("/")) if version.code_root else unpacked
        if not (code / "train.py").is_file():
            raise InvalidInput(f"version {version.version} has no train.py at {version.code_root or 'its root'}")
        return code

    def _materialise(self, version: DatasetVersion, folder: str, destination: Path) -> Path:
        destination.mkdir(parents=True, exist_ok=True)
        self.materialise(version=version, folder=folder, destination=destination)
        # The files keep their paths inside the version, so a chosen folder sits under it:
        # the user's code gets that folder itself.
        return destination.joinpath(*folder.split("/")) if folder else destination

    @staticmethod
    def _is_cache(rel: str) -> bool:
        return any(part in _CACHE_DIRS for part in rel.split("/"))

    # ------------------------------------------------------------------ finish

    def finish(self, job: Job, workdir: Path) -> dict[str, Any]:
        params = job.parameters
        outputs = self._read_outputs(workdir)
        env: dict[str, str] = dict(params["parameters"])
        with self.uow() as uow:
            data = uow.datasets.get_version_by_id(int(params["data"]["version_id"]))
            source = uow.packages.get_version_by_id(int(params["version_id"]))
            run = uow.pipelines.get_run(job.id)
        code = workdir / "package"
        if source.code_root:
            code = code.joinpath(*source.code_root.split("/"))
        artifacts_rel = env[ARTIFACTS_DIRECTORY]
        artifact_files = self._store_artifacts(code, artifacts_rel)
        score = (
            check_score(outputs.get("score")) if self.pipeline_type.records_score else None
        )
        selection = select_folder(data.files, params["data"]["folder"])
        snapshot: list[RunFile] = []
        if env.get(SAVE_TRAINING_DATA) == "true":
            # The dataset's blobs are already stored by content: the snapshot is its manifest.
            prefix = params["data"]["folder"]
            snapshot = [
                RunFile(area=TRAIN_DATA_AREA, path=e.path[len(prefix) + 1:] if prefix else e.path,
                        size=e.size, sha256=e.sha256)
                for e in selection
            ]
        version_fields = (
            self._new_version_fields(job, workdir, code, source, data, run.inputs, artifacts_rel)
            if self.pipeline_type.creates_version else None
        )
        metrics = self._metrics(job, score) if score is not None else None

        with self.uow() as uow:
            produced: ModelVersion | None = None
            if version_fields is not None:
                produced = record_registration(
                    uow,
                    uow.packages.add_minor_version(
                        package_id=source.package_id, major=source.major, fields=version_fields,
                        actor=job.actor,
                    ),
                    project_id=job.project_id, package=params["package"],
                )
                if metrics is not None:
                    produced = record_evaluation(
                        uow, produced,
                        uow.packages.transition_version(
                            produced.id, ModelStatus.EVALUATED, fields={"metrics": metrics}
                        ),
                        project_id=job.project_id, package=params["package"], actor=job.actor,
                        job_id=job.id,
                    )
            elif metrics is not None:
                # A version's metrics are those of its latest evaluation, whole: an earlier
                # evaluation's metrics would otherwise sit beside this run's provenance.
                produced = record_evaluation(
                    uow, source,
                    uow.packages.transition_version(
                        source.id, ModelStatus.EVALUATED, fields={"metrics": metrics}
                    ),
                    project_id=job.project_id, package=params["package"], actor=job.actor, job_id=job.id,
                )
            started = job.started_at.timestamp() if job.started_at else outputs["started_at"]
            results = results_document(
                pipeline=params["pipeline"], package=params["package"], version=params["version"],
                train_data=dataset_location(data_name(params), data.version, params["data"]["folder"]),
                gpu=bool(params.get("gpu")), env=env, start_at=started, end_at=self.clock(),
                saved_train_data=run_location(job.id, TRAIN_DATA_AREA) if snapshot else None,
                artifacts_data=run_location(job.id, ARTIFACTS_AREA),
                new_version=produced.version if produced else None,
            )
            # Stored before this transaction commits: the run never points at a missing file.
            results_blob = self.artifacts.put_stream([json.dumps(results, indent=2).encode()])
            uow.pipelines.add_files(job.id, artifact_files + snapshot)
            uow.pipelines.update_run(job.id, {
                "score": score,
                "new_version_id": produced.id if produced and version_fields else None,
                "new_version": produced.version if produced and version_fields else None,
                "results": results,
                "results_sha256": results_blob.sha256,
            })
        return {
            "pipeline": params["pipeline"],
            "score": score,
            "version": produced.version if produced else None,
            "artifacts": len(artifact_files),
            "training_data_snapshot": len(snapshot),
        }

    @staticmethod
    def _read_outputs(workdir: Path) -> dict[str, Any]:
        try:
            outputs = json.loads((workdir / OUTPUTS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            outputs = None
        if not isinstance(outputs, dict):
            raise ModelOpsError(
                "the pipeline exited without reporting its outputs (did the code call sys.exit(0) "
                "before the pipeline finished?)"
            )
        return outputs

    def _store_artifacts(self, code: Path, artifacts_rel: str) -> list[RunFile]:
        folder = code.joinpath(*artifacts_rel.split("/"))
        if not folder.exists():
            return []
        if folder.is_symlink() or not folder.resolve().is_relative_to(code.resolve()):
            raise ModelOpsError(f"the artifacts directory '{artifacts_rel}' leaves the working directory")
        files = list(walk_files(folder))
        if len(files) > MAX_ARTIFACT_FILES:
            raise ModelOpsError(
                f"the run wrote {len(files)} artifacts; at most {MAX_ARTIFACT_FILES} are kept"
            )
        stored = []
        for rel, path in files:
            ref = self.artifacts.put_file(path)
            stored.append(RunFile(area=ARTIFACTS_AREA, path=rel, size=ref.size, sha256=ref.sha256))
        return stored

    def _new_version_fields(
        self, job: Job, workdir: Path, code: Path, source: ModelVersion, data: DatasetVersion,
        inputs: dict[str, Any], artifacts_rel: str,
    ) -> dict[str, Any]:
        def leave_out(rel: str) -> bool:
            return self._is_cache(rel) or _under(rel, artifacts_rel)

        train_py = code / "train.py"
        main_py = code / "main.py"
        report = check_package(
            train_py.read_text(encoding="utf-8", errors="replace") if train_py.is_file() else None,
            main_py.read_text(encoding="utf-8", errors="replace") if main_py.is_file() else None,
        )
        if not report.ok:
            raise ModelOpsError(
                "after the run the package no longer meets the contract: " + "; ".join(report.problems)
            )
        archive = workdir / "new-version.zip"
        prefix = f"{source.code_root}/" if source.code_root else ""
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for rel, path in walk_files(code):
                if not leave_out(rel):
                    zf.write(path, prefix + rel)
        blob = self.artifacts.put_file(archive)
        requirements = code / "requirements.txt"
        params = job.parameters
        return {
            "status": ModelStatus.TRAINED.value,
            "zip_sha256": blob.sha256,
            "zip_size": blob.size,
            "code_root": source.code_root,
            "can_train": report.can_train,
            "can_serve": report.can_serve,
            "requirements_sha256": sha256_file(requirements) if requirements.is_file() else None,
            "lineage": {
                "source": self.pipeline_type.job_kind.value,
                "source_version": source.version,
                "source_version_id": source.id,
                "job_id": job.id,
                "pipeline": params["pipeline"],
                "dataset": data_name(params),
                "dataset_version": data.version,
                "dataset_folder": params["data"]["folder"],
                "dataset_hash": data.content_hash,
                "data_hash": inputs.get("data_hash"),
                "code_hash": inputs.get("code_hash"),
                "parameters": dict(params["parameters"]),
                "gpu": bool(params.get("gpu")),
            },
        }

    def _metrics(self, job: Job, score: float) -> dict[str, Any]:
        params = job.parameters
        source = params.get("evaluation_data") or params["data"]
        return {
            "score": score,
            "evaluation": {
                "job_id": job.id,
                "pipeline": params["pipeline"],
                "dataset": source["dataset"],
                "dataset_version": source["version"],
                "dataset_folder": source["folder"],
                "at": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
            },
        }


def data_name(params: dict[str, Any]) -> str:
    return str(params["data"]["dataset"])
