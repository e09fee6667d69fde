from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from modelops.api.deps import ContainerDep, PrincipalDep
from modelops.api.schemas import (
    ChangedEntry,
    DatasetCreate,
    DatasetDiffRead,
    DatasetRead,
    DatasetVersionDetail,
    DatasetVersionRead,
    ListOf,
    ManifestEntryRead,
)
from modelops.api.uploads import spooled_body

router = APIRouter(prefix="/projects/{project}/datasets", tags=["datasets"])


@router.get("", response_model=ListOf[DatasetRead])
def list_datasets(project: str, container: ContainerDep, principal: PrincipalDep) -> ListOf[DatasetRead]:
    items = container.datasets.list(principal=principal, project=project)
    return ListOf(data=[DatasetRead.model_validate(d) for d in items], count=len(items))


@router.post("", response_model=DatasetRead, status_code=201)
def create_dataset(
    project: str, body: DatasetCreate, container: ContainerDep, principal: PrincipalDep
) -> DatasetRead:
    dataset = container.datasets.create(
        principal=principal, project=project, name=body.name, description=body.description
    )
    return DatasetRead.model_validate(dataset)


@router.get("/{name}", response_model=DatasetRead)
def show_dataset(project: str, name: str, container: ContainerDep, principal: PrincipalDep) -> DatasetRead:
    return DatasetRead.model_validate(container.datasets.get(principal=principal, project=project, name=name))


@router.post(
    "/{name}/versions",
    response_model=DatasetVersionDetail,
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "description": "a zip or tar (optionally compressed) of the folder",
        }
    },
)
async def upload_dataset_version(
    project: str, name: str, request: Request, container: ContainerDep, principal: PrincipalDep,
    note: str = "",
) -> DatasetVersionDetail:
    async with spooled_body(request, container.settings) as archive:
        version = await run_in_threadpool(
            lambda: container.datasets.upload_version(
                principal=principal, project=project, name=name, archive=archive, note=note
            )
        )
    return DatasetVersionDetail.model_validate(version)


@router.get("/{name}/versions", response_model=ListOf[DatasetVersionRead])
def list_versions(
    project: str, name: str, container: ContainerDep, principal: PrincipalDep
) -> ListOf[DatasetVersionRead]:
    items = container.datasets.list_versions(principal=principal, project=project, name=name)
    return ListOf(data=[DatasetVersionRead.model_validate(v) for v in items], count=len(items))


@router.get("/{name}/versions/{version}", response_model=DatasetVersionDetail)
def show_version(
    project: str, name: str, version: int, container: ContainerDep, principal: PrincipalDep
) -> DatasetVersionDetail:
    dv = container.datasets.get_version(principal=principal, project=project, name=name, version=version)
    return DatasetVersionDetail.model_validate(dv)


@router.get("/{name}/versions/{version}/download")
def download_version(
    project: str, name: str, version: int, container: ContainerDep, principal: PrincipalDep,
    folder: str = "",
) -> FileResponse:
    path: Path = container.datasets.export_zip(
        principal=principal, project=project, name=name, version=version, folder=folder
    )
    suffix = f"-{folder.strip('/').replace('/', '_')}" if folder.strip("/") else ""
    return FileResponse(
        path, media_type="application/zip", filename=f"{name}-v{version}{suffix}.zip",
        background=BackgroundTask(os.unlink, path),
    )


@router.get("/{name}/diff", response_model=DatasetDiffRead)
def diff_versions(
    project: str, name: str, old: int, new: int, container: ContainerDep, principal: PrincipalDep
) -> DatasetDiffRead:
    diff = container.datasets.diff(principal=principal, project=project, name=name, old=old, new=new)
    return DatasetDiffRead(
        old=old, new=new,
        added=[ManifestEntryRead.model_validate(e) for e in diff.added],
        removed=[ManifestEntryRead.model_validate(e) for e in diff.removed],
        changed=[
            ChangedEntry(path=a.path, old_size=a.size, new_size=b.size, old_sha256=a.sha256, new_sha256=b.sha256)
            for a, b in diff.changed
        ],
        unchanged=diff.unchanged,
    )
