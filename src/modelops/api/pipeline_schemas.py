"""Request and response bodies of the pipelines API, and their mapping from domain objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from modelops.domain.pipelines import DataSelection, Pipeline, RunDetail, RunFile


class PipelineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not a default

    name: str = Field(description="1-64 letters, digits, '.', '_' or '-'")
    type: str = Field(description="training, evaluation or full")
    package: str = Field(description="the ML package's name")
    version: str = Field(description="the package version to run, MAJOR.MINOR")
    dataset: str = Field(description="the input dataset")
    dataset_version: int | None = Field(None, description="omit to use the newest at each run")
    folder: str = Field("", description="one folder of the dataset version; empty for all")
    evaluation_dataset: str | None = Field(None, description="full pipelines only")
    evaluation_dataset_version: int | None = None
    evaluation_folder: str = ""
    parameters: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="environment variables; artifacts_directory (default 'artifacts') and "
        "save_training_data (default false) are built in",
    )
    gpu: bool = False
    schedule: str = Field("now", description="now, once (needs run_at) or cron (needs cron)")
    run_at: datetime | None = Field(None, description="for 'once'; ISO 8601, UTC if no offset")
    cron: str | None = Field(None, description="for 'cron'; five fields, evaluated in UTC")
    timeout_seconds: float | None = None
    description: str = ""


class DataSelectionRead(BaseModel):
    dataset: str
    version: int | None = Field(description="None: the newest version at each run")
    folder: str


class ScheduleRead(BaseModel):
    kind: str
    run_at: datetime | None
    cron: str | None


class PipelineRead(BaseModel):
    id: int
    name: str
    type: str
    type_label: str
    package: str
    version: str
    data: DataSelectionRead
    evaluation_data: DataSelectionRead | None
    parameters: dict[str, str]
    gpu: bool
    schedule: ScheduleRead
    next_run_at: datetime | None
    timeout_seconds: float | None
    description: str
    created_at: datetime
    created_by: str


class RunFileRead(BaseModel):
    path: str
    size: int
    sha256: str
    media_type: str
    url: str = Field(description="where to download it (API path)")


class RunRead(BaseModel):
    job_id: int = Field(description="the run's job: its events and logs are under /jobs/{id}")
    pipeline: str
    type: str
    status: str = Field(description="Scheduled, Running, Successful, Failed or Killed")
    job_status: str
    trigger: str
    scheduled_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    package: str
    version: str
    dataset: str
    dataset_version: int
    folder: str
    gpu: bool
    score: float | None
    new_version: str | None
    error: str | None
    exit_code: int | None


class RunDetailRead(RunRead):
    parameters: dict[str, str]
    inputs: dict[str, Any]
    results: dict[str, Any] = Field(description="the run's _results.json, once it succeeded")
    artifacts: list[RunFileRead]
    train_data_files: int = Field(description="files in the training-data snapshot")


class PipelineCreated(PipelineRead):
    run: RunRead | None = Field(description="the first run, for the 'now' schedule")


def _selection(selection: DataSelection | None) -> DataSelectionRead | None:
    if selection is None:
        return None
    return DataSelectionRead(dataset=selection.dataset, version=selection.version, folder=selection.folder)


def pipeline_read(pipeline: Pipeline) -> PipelineRead:
    data = _selection(pipeline.data)
    assert data is not None
    return PipelineRead(
        id=pipeline.id, name=pipeline.name, type=pipeline.pipeline_type.value,
        type_label=pipeline.pipeline_type.label, package=pipeline.package,
        version=pipeline.version, data=data, evaluation_data=_selection(pipeline.evaluation_data),
        parameters=pipeline.parameters, gpu=pipeline.gpu,
        schedule=ScheduleRead(
            kind=pipeline.schedule.kind.value, run_at=pipeline.schedule.run_at,
            cron=pipeline.schedule.cron,
        ),
        next_run_at=pipeline.next_run_at, timeout_seconds=pipeline.timeout_seconds,
        description=pipeline.description, created_at=pipeline.created_at,
        created_by=pipeline.created_by,
    )


def _run_fields(detail: RunDetail) -> dict[str, Any]:
    run, job = detail.run, detail.job
    params = job.parameters
    data = params.get("data") or {}
    return {
        "job_id": job.id, "pipeline": run.pipeline, "type": run.pipeline_type.value,
        "status": detail.status.value, "job_status": job.status.value,
        "trigger": run.trigger.value, "scheduled_at": run.scheduled_at,
        "created_at": run.created_at, "started_at": job.started_at, "ended_at": job.ended_at,
        "package": params.get("package", ""), "version": params.get("version", ""),
        "dataset": data.get("dataset", ""), "dataset_version": data.get("version", 0),
        "folder": data.get("folder", ""), "gpu": bool(params.get("gpu")), "score": run.score,
        "new_version": run.new_version, "error": job.error, "exit_code": job.exit_code,
    }


def run_read(detail: RunDetail) -> RunRead:
    return RunRead(**_run_fields(detail))


def file_url(project: str, job_id: int, area: str, path: str) -> str:
    segment = "artifacts" if area == "artifacts" else "train-data"
    return (
        f"/api/v1/projects/{quote(project, safe='')}/pipeline-runs/{job_id}/{segment}/"
        + quote(path, safe="/")
    )


def file_read(project: str, job_id: int, found: RunFile, media_type: str) -> RunFileRead:
    return RunFileRead(
        path=found.path, size=found.size, sha256=found.sha256, media_type=media_type,
        url=file_url(project, job_id, found.area, found.path),
    )


def run_detail_read(
    detail: RunDetail, *, artifacts: list[RunFileRead], train_data_files: int
) -> RunDetailRead:
    return RunDetailRead(
        **_run_fields(detail), parameters=dict(detail.job.parameters.get("parameters") or {}),
        inputs=detail.run.inputs, results=detail.run.results, artifacts=artifacts,
        train_data_files=train_data_files,
    )
