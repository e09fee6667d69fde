"""Pipelines and their runs: define, run now or on a schedule, inspect outputs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import quote

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from modelops.adapters.artifacts.hashing import iter_stream
from modelops.api.deps import ContainerDep, PrincipalDep
from modelops.api.pipeline_schemas import (
    PipelineCreate,
    PipelineCreated,
    PipelineRead,
    RunDetailRead,
    RunFileRead,
    RunRead,
    file_read,
    pipeline_read,
    run_detail_read,
    run_read,
)
from modelops.api.schemas import ListOf
from modelops.domain.pipelines import ARTIFACTS_AREA, RESULTS_FILE, TRAIN_DATA_AREA
from modelops.services.pipelines import media_type_of

router = APIRouter(prefix="/projects/{project}", tags=["pipelines"])

_INLINE_TYPES = ("image/", "text/")


def _disposition(kind: str, filename: str) -> str:
    # An ASCII fallback plus the exact UTF-8 name (RFC 6266), without quotes to break out of.
    fallback = "".join(c if c.isascii() and c not in '"\\' and c.isprintable() else "_" for c in filename)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _stream(handle: BinaryIO, *, media_type: str, filename: str, size: int) -> StreamingResponse:
    def chunks() -> Iterator[bytes]:
        with handle:
            yield from iter_stream(handle)

    kind = "inline" if media_type.startswith(_INLINE_TYPES) else "attachment"
    return StreamingResponse(
        chunks(), media_type=media_type,
        headers={"Content-Disposition": _disposition(kind, filename), "Content-Length": str(size)},
    )


# --------------------------------------------------------------------------- pipelines


@router.get("/pipelines", response_model=ListOf[PipelineRead])
def list_pipelines(project: str, container: ContainerDep, principal: PrincipalDep) -> ListOf[PipelineRead]:
    items = container.pipelines.list(principal=principal, project=project)
    return ListOf(data=[pipeline_read(p) for p in items], count=len(items))


@router.post("/pipelines", response_model=PipelineCreated, status_code=201)
def create_pipeline(
    project: str, body: PipelineCreate, container: ContainerDep, principal: PrincipalDep
) -> PipelineCreated:
    pipeline, run = container.pipelines.create(
        principal=principal, project=project, name=body.name, pipeline_type=body.type,
        package=body.package, version=body.version, dataset=body.dataset,
        dataset_version=body.dataset_version, folder=body.folder,
        evaluation_dataset=body.evaluation_dataset,
        evaluation_dataset_version=body.evaluation_dataset_version,
        evaluation_folder=body.evaluation_folder, parameters=body.parameters, gpu=body.gpu,
        schedule=body.schedule, run_at=body.run_at, cron=body.cron,
        timeout_seconds=body.timeout_seconds, description=body.description,
    )
    return PipelineCreated(
        **pipeline_read(pipeline).model_dump(), run=run_read(run) if run else None
    )


@router.get("/pipelines/{name}", response_model=PipelineRead)
def show_pipeline(project: str, name: str, container: ContainerDep, principal: PrincipalDep) -> PipelineRead:
    return pipeline_read(container.pipelines.get(principal=principal, project=project, name=name))


@router.delete("/pipelines/{name}", status_code=204)
def delete_pipeline(project: str, name: str, container: ContainerDep, principal: PrincipalDep) -> Response:
    container.pipelines.delete(principal=principal, project=project, name=name)
    return Response(status_code=204)


@router.post("/pipelines/{name}/runs", response_model=RunRead, status_code=201)
def run_pipeline(project: str, name: str, container: ContainerDep, principal: PrincipalDep) -> RunRead:
    return run_read(container.pipelines.run_now(principal=principal, project=project, name=name))


@router.get("/pipelines/{name}/runs", response_model=ListOf[RunRead])
def list_pipeline_runs(
    project: str, name: str, container: ContainerDep, principal: PrincipalDep
) -> ListOf[RunRead]:
    items = container.pipelines.list_runs(principal=principal, project=project, pipeline=name)
    return ListOf(data=[run_read(d) for d in items], count=len(items))


# --------------------------------------------------------------------------- runs


@router.get("/pipeline-runs", response_model=ListOf[RunRead])
def list_runs(
    project: str, container: ContainerDep, principal: PrincipalDep, pipeline: str | None = None,
) -> ListOf[RunRead]:
    items = container.pipelines.list_runs(principal=principal, project=project, pipeline=pipeline)
    return ListOf(data=[run_read(d) for d in items], count=len(items))


@router.get("/pipeline-runs/{job_id}", response_model=RunDetailRead)
def show_run(project: str, job_id: int, container: ContainerDep, principal: PrincipalDep) -> RunDetailRead:
    service = container.pipelines
    detail = service.get_run(principal=principal, project=project, job_id=job_id)
    artifacts = service.list_files(principal=principal, project=project, job_id=job_id, area=ARTIFACTS_AREA)
    snapshot = service.list_files(principal=principal, project=project, job_id=job_id, area=TRAIN_DATA_AREA)
    return run_detail_read(
        detail,
        artifacts=[file_read(project, job_id, f, media_type_of(f.path)) for f in artifacts],
        train_data_files=len(snapshot),
    )


def _list_area(
    project: str, job_id: int, area: str, folder: str, container: ContainerDep,
    principal: PrincipalDep,
) -> ListOf[RunFileRead]:
    files = container.pipelines.list_files(
        principal=principal, project=project, job_id=job_id, area=area, folder=folder
    )
    data = [file_read(project, job_id, f, media_type_of(f.path)) for f in files]
    return ListOf(data=data, count=len(data))


def _download_area(
    project: str, job_id: int, area: str, path: str, container: ContainerDep,
    principal: PrincipalDep,
) -> StreamingResponse:
    found, media_type, handle = container.pipelines.open_file(
        principal=principal, project=project, job_id=job_id, area=area, path=path
    )
    return _stream(handle, media_type=media_type, filename=found.path.rsplit("/", 1)[-1], size=found.size)


@router.get("/pipeline-runs/{job_id}/artifacts", response_model=ListOf[RunFileRead])
def list_artifacts(
    project: str, job_id: int, container: ContainerDep, principal: PrincipalDep, folder: str = ""
) -> ListOf[RunFileRead]:
    """Every file the run wrote to its artifacts directory (sub-folders included)."""
    return _list_area(project, job_id, ARTIFACTS_AREA, folder, container, principal)


@router.get("/pipeline-runs/{job_id}/artifacts/{path:path}")
def download_artifact(
    project: str, job_id: int, path: str, container: ContainerDep, principal: PrincipalDep
) -> StreamingResponse:
    return _download_area(project, job_id, ARTIFACTS_AREA, path, container, principal)


@router.get("/pipeline-runs/{job_id}/train-data", response_model=ListOf[RunFileRead])
def list_train_data(
    project: str, job_id: int, container: ContainerDep, principal: PrincipalDep, folder: str = ""
) -> ListOf[RunFileRead]:
    """The snapshot of the input data (runs with save_training_data=true)."""
    return _list_area(project, job_id, TRAIN_DATA_AREA, folder, container, principal)


@router.get("/pipeline-runs/{job_id}/train-data/{path:path}")
def download_train_data(
    project: str, job_id: int, path: str, container: ContainerDep, principal: PrincipalDep
) -> StreamingResponse:
    return _download_area(project, job_id, TRAIN_DATA_AREA, path, container, principal)


@router.get("/pipeline-runs/{job_id}/results")
def download_results(project: str, job_id: int, container: ContainerDep, principal: PrincipalDep) -> Response:
    """The run's ``_results.json``, exactly as stored."""
    body = container.pipelines.results(principal=principal, project=project, job_id=job_id)
    return Response(
        body, media_type="application/json",
        headers={"Content-Disposition": _disposition("attachment", RESULTS_FILE)},
    )
