"""Pipelines: save a training, evaluation or full pipeline, run it now or on a schedule, and
read each run's status, artifacts, training-data snapshot and ``_results.json``.

Every run is one job of the engine (kind training, evaluation or full_pipeline). A run is
submitted in the same transaction as its run record, so a run never exists without its job,
and a scheduled run is keyed by (pipeline, scheduled time) so it fires at most once.
"""

from __future__ import annotations

import builtins
import mimetypes
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, BinaryIO

from modelops.domain.entities import DatasetVersion, Principal
from modelops.domain.errors import InvalidInput, NotFound
from modelops.domain.manifest import normalise_folder, select_folder
from modelops.domain.model_status import ModelStatus, check_model_transition
from modelops.domain.names import validate_name
from modelops.domain.pipelines import (
    RUN_FILE_AREAS,
    DataSelection,
    Pipeline,
    PipelineRun,
    PipelineType,
    RunDetail,
    RunFile,
    RunTrigger,
    ScheduleKind,
    check_schedule_shape,
    normalise_parameters,
)
from modelops.domain.roles import Role, require_role
from modelops.domain.versions import parse_version
from modelops.ports import ArtifactStore, UnitOfWork, UnitOfWorkFactory
from modelops.services.pipeline_scheduler import first_run_at

MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def media_type_of(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def _parse_type(value: str) -> PipelineType:
    try:
        return PipelineType(value)
    except ValueError:
        raise InvalidInput(
            f"invalid pipeline type {value!r}: use training, evaluation or full"
        ) from None


def _as_utc(value: datetime | None) -> datetime | None:
    """A time without an offset is UTC. Stored in UTC: SQLite keeps only the wall-clock text,
    so every offset is resolved here."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class PipelineService:
    def __init__(
        self, *, uow: UnitOfWorkFactory, artifacts: ArtifactStore,
        wake: Callable[[], None] | None = None, default_timeout: float | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.uow = uow
        self.artifacts = artifacts
        self.wake = wake or (lambda: None)  # nudges the job engine once a run is committed
        self.default_timeout = default_timeout  # for pipelines saved without their own
        self.clock = clock

    # ------------------------------------------------------------------ definitions

    def create(
        self, *, principal: Principal, project: str, name: str, pipeline_type: str,
        package: str, version: str, dataset: str, dataset_version: int | None = None,
        folder: str = "", evaluation_dataset: str | None = None,
        evaluation_dataset_version: int | None = None, evaluation_folder: str = "",
        parameters: Mapping[str, object] | None = None, gpu: bool = False,
        schedule: str = "now", run_at: datetime | None = None, cron: str | None = None,
        timeout_seconds: float | None = None, description: str = "",
    ) -> tuple[Pipeline, RunDetail | None]:
        """Save a pipeline; with the 'now' schedule its first run is submitted with it."""
        require_role(principal.role, Role.MEMBER)
        validate_name("pipeline", name)
        kind = _parse_type(pipeline_type)
        env = normalise_parameters(parameters)
        now = self.clock()
        shape = check_schedule_shape(schedule, run_at=_as_utc(run_at), cron=cron, now=now)
        next_run_at = first_run_at(shape, now=now)
        if timeout_seconds is not None and not 0 < timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise InvalidInput(f"timeout_seconds must be between 0 and {MAX_TIMEOUT_SECONDS:.0f}")
        if evaluation_dataset and kind is not PipelineType.FULL:
            raise InvalidInput("only a full pipeline takes an evaluation dataset")
        major, minor = parse_version(version)
        with self.uow() as uow:
            proj = uow.projects.get(project)
            pkg = uow.packages.get(proj.id, package)
            model_version = uow.packages.get_version(pkg.id, major, minor)
            if not model_version.can_train:
                raise InvalidInput(
                    f"version {model_version.version} of ML package '{package}' cannot run "
                    "pipelines: it needs train.py with class Main (__init__, train, evaluate, save)"
                )
            if kind is PipelineType.EVALUATION:
                # Refuse now what would fail at the end of the run (e.g. a rejected version).
                check_model_transition(
                    ModelStatus(model_version.status), ModelStatus.EVALUATED,
                    version_label=model_version.version,
                )
            data = self._selection(uow, proj.id, dataset, dataset_version, folder)
            evaluation = (
                self._selection(
                    uow, proj.id, evaluation_dataset, evaluation_dataset_version, evaluation_folder
                )
                if evaluation_dataset else None
            )
            fields: dict[str, Any] = {
                "project_id": proj.id, "name": name, "pipeline_type": kind.value,
                "description": description, "package_id": pkg.id, "package_name": pkg.name,
                "version_id": model_version.id, "version": model_version.version,
                "dataset_id": data.dataset_id, "dataset_name": data.dataset,
                "dataset_version": data.version, "folder": data.folder,
                "eval_dataset_id": evaluation.dataset_id if evaluation else None,
                "eval_dataset_name": evaluation.dataset if evaluation else None,
                "eval_dataset_version": evaluation.version if evaluation else None,
                "eval_folder": evaluation.folder if evaluation else "",
                "parameters": env, "gpu": bool(gpu), "schedule_kind": shape.kind.value,
                "run_at": shape.run_at, "cron": shape.cron, "next_run_at": next_run_at,
                "timeout_seconds": timeout_seconds,
            }
            pipeline = uow.pipelines.add(fields=fields, actor=principal.name)
            run = None
            if shape.kind is ScheduleKind.NOW:
                run = self.submit_run(
                    uow, pipeline=pipeline, trigger=RunTrigger.MANUAL, scheduled_at=None,
                    actor=principal.name,
                )
            detail = RunDetail(run=run, job=uow.jobs.get(run.job_id)) if run else None
        if detail is not None:
            self.wake()
        return pipeline, detail

    @staticmethod
    def _selection(
        uow: UnitOfWork, project_id: int, dataset: str, version: int | None, folder: str
    ) -> DataSelection:
        found = uow.datasets.get(project_id, dataset)
        number = version if version is not None else found.latest_version
        if number < 1:
            raise InvalidInput(f"dataset '{dataset}' has no version yet: upload one first")
        chosen = uow.datasets.get_version(found.id, number)
        clean = normalise_folder(folder)
        select_folder(chosen.files, clean)  # the folder must exist (in the newest version)
        if not chosen.files:
            raise InvalidInput(f"version {number} of dataset '{dataset}' holds no files")
        return DataSelection(dataset_id=found.id, dataset=found.name, version=version, folder=clean)

    def list(self, *, principal: Principal, project: str) -> list[Pipeline]:
        with self.uow() as uow:
            return uow.pipelines.list(uow.projects.get(project).id)

    def get(self, *, principal: Principal, project: str, name: str) -> Pipeline:
        with self.uow() as uow:
            return uow.pipelines.get(uow.projects.get(project).id, name)

    def delete(self, *, principal: Principal, project: str, name: str) -> None:
        """Remove the definition and its schedule; its runs stay on record."""
        require_role(principal.role, Role.MEMBER)
        with self.uow() as uow:
            pipeline = uow.pipelines.get(uow.projects.get(project).id, name)
            uow.pipelines.delete(pipeline.id)

    # ------------------------------------------------------------------ runs

    def run_now(self, *, principal: Principal, project: str, name: str) -> RunDetail:
        require_role(principal.role, Role.MEMBER)
        with self.uow() as uow:
            pipeline = uow.pipelines.get(uow.projects.get(project).id, name)
            run = self.submit_run(
                uow, pipeline=pipeline, trigger=RunTrigger.MANUAL, scheduled_at=None,
                actor=principal.name,
            )
            detail = RunDetail(run=run, job=uow.jobs.get(run.job_id))
        self.wake()
        return detail

    def submit_run(
        self, uow: UnitOfWork, *, pipeline: Pipeline, trigger: RunTrigger,
        scheduled_at: datetime | None, actor: str,
    ) -> PipelineRun:
        """Queue one run's job and its run record in the caller's transaction. Raises
        AlreadyExists if the pipeline already has a run for ``scheduled_at``.

        The job is added through the job store rather than JobService.submit, which commits
        on its own: here the job, the run record and its unique key commit or fail together."""
        data = self._resolve(uow, pipeline.project_id, pipeline.data)
        evaluation = (
            self._resolve(uow, pipeline.project_id, pipeline.evaluation_data)
            if pipeline.evaluation_data else None
        )
        parameters = {
            "pipeline_id": pipeline.id,
            "pipeline": pipeline.name,
            "pipeline_type": pipeline.pipeline_type.value,
            "package_id": pipeline.package_id,
            "package": pipeline.package,
            "version_id": pipeline.version_id,
            "version": pipeline.version,
            "data": data,
            "evaluation_data": evaluation,
            "parameters": dict(pipeline.parameters),
            "gpu": pipeline.gpu,
        }
        job = uow.jobs.add(
            project_id=pipeline.project_id, kind=pipeline.pipeline_type.job_kind, actor=actor,
            parameters=parameters, target_type="model_version", target_id=pipeline.version_id,
            timeout_seconds=(
                pipeline.timeout_seconds if pipeline.timeout_seconds is not None
                else self.default_timeout
            ),
        )
        return uow.pipelines.add_run(
            project_id=pipeline.project_id, pipeline=pipeline, job_id=job.id, trigger=trigger,
            scheduled_at=scheduled_at,
        )

    @staticmethod
    def _resolve(uow: UnitOfWork, project_id: int, selection: DataSelection) -> dict[str, Any]:
        """The dataset version a run uses: the pinned one, or the newest at submission."""
        number = selection.version
        if number is None:
            number = uow.datasets.get(project_id, selection.dataset).latest_version
        version: DatasetVersion = uow.datasets.get_version(selection.dataset_id, number, with_files=True)
        select_folder(version.files, selection.folder)
        return {
            "dataset_id": selection.dataset_id,
            "dataset": selection.dataset,
            "version": version.version,
            "version_id": version.id,
            "content_hash": version.content_hash,
            "folder": selection.folder,
        }

    def list_runs(
        self, *, principal: Principal, project: str, pipeline: str | None = None, limit: int = 200
    ) -> builtins.list[RunDetail]:
        with self.uow() as uow:
            project_id = uow.projects.get(project).id
            pipeline_id = uow.pipelines.get(project_id, pipeline).id if pipeline else None
            runs = uow.pipelines.list_runs(project_id=project_id, pipeline_id=pipeline_id, limit=limit)
            return [RunDetail(run=run, job=uow.jobs.get(run.job_id)) for run in runs]

    def get_run(self, *, principal: Principal, project: str, job_id: int) -> RunDetail:
        with self.uow() as uow:
            run = self._run_in(uow, project, job_id)
            return RunDetail(run=run, job=uow.jobs.get(job_id))

    @staticmethod
    def _run_in(uow: UnitOfWork, project: str, job_id: int) -> PipelineRun:
        project_id = uow.projects.get(project).id
        run = uow.pipelines.get_run(job_id)
        if run.project_id != project_id:  # runs of other projects do not exist from here
            raise NotFound(f"pipeline run {job_id} not found")
        return run

    # ------------------------------------------------------------------ outputs

    def list_files(
        self, *, principal: Principal, project: str, job_id: int, area: str, folder: str = ""
    ) -> builtins.list[RunFile]:
        if area not in RUN_FILE_AREAS:
            raise InvalidInput(f"unknown output area {area!r}")
        prefix = normalise_folder(folder)
        with self.uow() as uow:
            self._run_in(uow, project, job_id)
            files = uow.pipelines.files(job_id, area)
        if not prefix:
            return files
        chosen = [f for f in files if f.path.startswith(prefix + "/")]
        if not chosen:
            raise NotFound(f"run {job_id} has no folder '{prefix}' in its {area.replace('_', ' ')}")
        return chosen

    def open_file(
        self, *, principal: Principal, project: str, job_id: int, area: str, path: str
    ) -> tuple[RunFile, str, BinaryIO]:
        """The file's record, its media type and an open stream of its bytes."""
        if area not in RUN_FILE_AREAS:
            raise InvalidInput(f"unknown output area {area!r}")
        with self.uow() as uow:
            self._run_in(uow, project, job_id)
            found = uow.pipelines.file(job_id, area, normalise_folder(path))
        return found, media_type_of(found.path), self.artifacts.open(found.sha256)

    def results(self, *, principal: Principal, project: str, job_id: int) -> bytes:
        """The stored ``_results.json`` of a successful run, byte for byte."""
        with self.uow() as uow:
            run = self._run_in(uow, project, job_id)
        if not run.results_sha256:
            raise NotFound(
                f"run {job_id} has no _results.json: it is written when a run ends successfully"
            )
        with self.artifacts.open(run.results_sha256) as handle:
            return handle.read()
