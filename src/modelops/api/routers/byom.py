"""Bring your own model: import a model's files, compute and read statistics, evaluate any
version on labelled data and read its evaluation report.

The POSTs answer 202 with the job they submitted: the model version (the statistics, the
evaluation) exists once that job has completed (``GET /jobs/{id}``; its ``result`` names what
it made).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from modelops.api.deps import ContainerDep, PrincipalDep
from modelops.api.routers.jobs import job_read
from modelops.api.routers.pipelines import _stream
from modelops.api.schemas_jobs import JobRead
from modelops.api.uploads import spooled_body

router = APIRouter(tags=["bring your own model"])


class StatisticsRead(BaseModel):
    id: int
    model_version_id: int
    dataset_version_id: int
    job_id: int
    folder: str
    created_at: datetime
    created_by: str
    statistics: dict[str, Any]


@router.post(
    "/projects/{project}/models/{name}/import",
    response_model=JobRead,
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "description": "the model file (.onnx, .pkl, .joblib, .pmml) or a zip of the model "
                           "folder (e.g. an MLflow model with its MLmodel file)",
        }
    },
)
async def import_model(
    project: str, name: str, request: Request, container: ContainerDep, principal: PrincipalDep,
    format: str | None = None, task: str | None = None, features: str | None = None,
    target: str | None = None, filename: str | None = None, dataset: str | None = None,
    dataset_version: int | None = None, folder: str = "", sample_rows: int | None = None,
    description: str = "", timeout_seconds: float | None = None,
) -> JobRead:
    """Store the files and start the IMPORT job (and, with ``dataset``, statistics after it).

    ``filename`` (the client sends the file's own name) tells the format by its extension, and
    a ``.zip`` is a model folder; ``format`` overrides detection. ``features`` is a
    comma-separated list of columns, needed when the file does not name them; ``task`` is
    classification or regression, needed when the file does not say."""
    async with spooled_body(request, container.settings) as upload:
        job = await run_in_threadpool(
            lambda: container.byom.submit_import(
                principal=principal, project=project, name=name, upload=upload, filename=filename,
                format=format, task=task, features=features, target=target, dataset=dataset,
                dataset_version=dataset_version, folder=folder, sample_rows=sample_rows,
                description=description, timeout_seconds=timeout_seconds,
            )
        )
    return job_read(job)


@router.post(
    "/projects/{project}/packages/{name}/versions/{version}/statistics",
    response_model=JobRead,
    status_code=202,
)
def compute_statistics(
    project: str, name: str, version: str, dataset: str, container: ContainerDep,
    principal: PrincipalDep, dataset_version: int | None = None, folder: str = "",
    sample_rows: int | None = None, target: str | None = None, timeout_seconds: float | None = None,
) -> JobRead:
    """Start a COMPUTE_STATISTICS job for a version on a dataset version (default: latest)."""
    job = container.byom.submit_statistics(
        principal=principal, project=project, name=name, version=version, dataset=dataset,
        dataset_version=dataset_version, folder=folder, sample_rows=sample_rows, target=target,
        timeout_seconds=timeout_seconds,
    )
    return job_read(job)


@router.get(
    "/projects/{project}/packages/{name}/versions/{version}/statistics",
    response_model=StatisticsRead,
)
def show_statistics(
    project: str, name: str, version: str, container: ContainerDep, principal: PrincipalDep,
    dataset: str | None = None, dataset_version: int | None = None,
) -> StatisticsRead:
    """The newest statistics of a version (optionally on one dataset, or one dataset version)."""
    found = container.byom.latest_statistics(
        principal=principal, project=project, name=name, version=version, dataset=dataset,
        dataset_version=dataset_version,
    )
    return StatisticsRead(
        id=found.id, model_version_id=found.model_version_id,
        dataset_version_id=found.dataset_version_id, job_id=found.job_id, folder=found.folder,
        created_at=found.created_at, created_by=found.created_by, statistics=found.stats,
    )


# --------------------------------------------------------------------------- evaluation

VERSION_PATH = "/projects/{project}/packages/{name}/versions/{version}"


class PlotRead(BaseModel):
    name: str
    media_type: str
    size: int
    sha256: str
    url: str = Field(description="where to download it (API path)")


class EvaluationRead(BaseModel):
    package: str
    version: str
    status: str
    metrics: dict[str, Any] = Field(description="the task's metrics; score: the package's own evaluate()")
    evaluation: dict[str, Any] = Field(description="job, dataset, label, task, time and actor")
    plots: list[PlotRead]
    champion: dict[str, Any] | None = Field(
        description="the comparison with the model's champion when it was evaluated, metric by metric"
    )


def plot_url(project: str, name: str, version: str, plot: str) -> str:
    project, name, version, plot = (quote(s, safe="") for s in (project, name, version, plot))
    return f"/api/v1/projects/{project}/packages/{name}/versions/{version}/evaluation/plots/{plot}"


@router.post(VERSION_PATH + "/evaluate", response_model=JobRead, status_code=202)
def evaluate_version(
    project: str, name: str, version: str, dataset: str, container: ContainerDep,
    principal: PrincipalDep, dataset_version: int | None = None, folder: str = "",
    label: str | None = None, features: str | None = None, task: str | None = None,
    timeout_seconds: float | None = None,
) -> JobRead:
    """Start the EVALUATION job of any version (imported, trained or uploaded) on a labelled
    dataset version (default: latest). ``label`` is the column of true values (default
    ``target``); ``features`` (a,b,c) the columns a package gets (default: all but the label);
    ``task`` (classification or regression) when the model does not say. On success the version
    is ``evaluated``, with the report at ``GET .../evaluation``."""
    job = container.evaluation.submit(
        principal=principal, project=project, name=name, version=version, dataset=dataset,
        dataset_version=dataset_version, folder=folder, label=label, features=features, task=task,
        timeout_seconds=timeout_seconds,
    )
    return job_read(job)


@router.get(VERSION_PATH + "/evaluation", response_model=EvaluationRead)
def show_evaluation(
    project: str, name: str, version: str, container: ContainerDep, principal: PrincipalDep,
) -> EvaluationRead:
    """The version's latest evaluation: metrics, plots (with download URLs), champion comparison."""
    found = container.evaluation.report(principal=principal, project=project, name=name, version=version)
    return EvaluationRead(
        package=found.package, version=found.version, status=found.status, metrics=found.metrics,
        evaluation=found.evaluation, champion=found.champion,
        plots=[
            PlotRead(name=p["name"], media_type=p.get("media_type", "image/png"), size=p["size"],
                     sha256=p["sha256"], url=plot_url(project, found.package, found.version, p["name"]))
            for p in found.plots
        ],
    )


@router.get(VERSION_PATH + "/evaluation/plots/{plot}")
def download_evaluation_plot(
    project: str, name: str, version: str, plot: str, container: ContainerDep, principal: PrincipalDep,
) -> StreamingResponse:
    """One plot of the latest evaluation, as stored (PNG)."""
    found, handle = container.evaluation.open_plot(
        principal=principal, project=project, name=name, version=version, plot=plot,
    )
    return _stream(handle, media_type=str(found.get("media_type", "image/png")), filename=plot,
                   size=int(found["size"]))
