from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from modelops.adapters.artifacts.hashing import iter_stream
from modelops.api.deps import ContainerDep, PrincipalDep
from modelops.api.schemas import ListOf, ModelVersionRead, PackageRead
from modelops.api.uploads import spooled_body
from modelops.domain.entities import ModelVersion

router = APIRouter(prefix="/projects/{project}/packages", tags=["ml packages"])


def version_read(version: ModelVersion) -> ModelVersionRead:
    return ModelVersionRead.model_validate({**version.__dict__, "version": version.version})


@router.get("", response_model=ListOf[PackageRead])
def list_packages(project: str, container: ContainerDep, principal: PrincipalDep) -> ListOf[PackageRead]:
    items = container.packages.list(principal=principal, project=project)
    return ListOf(data=[PackageRead.model_validate(p) for p in items], count=len(items))


@router.get("/{name}", response_model=PackageRead)
def show_package(project: str, name: str, container: ContainerDep, principal: PrincipalDep) -> PackageRead:
    return PackageRead.model_validate(container.packages.get(principal=principal, project=project, name=name))


@router.post(
    "/{name}/versions",
    response_model=ModelVersionRead,
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "the ML package zip",
        }
    },
)
async def upload_package_version(
    project: str, name: str, request: Request, container: ContainerDep, principal: PrincipalDep,
    description: str = "",
) -> ModelVersionRead:
    async with spooled_body(request, container.settings) as archive:
        version = await run_in_threadpool(
            lambda: container.packages.upload(
                principal=principal, project=project, name=name, archive=archive, description=description
            )
        )
    return version_read(version)


@router.get("/{name}/versions", response_model=ListOf[ModelVersionRead])
def list_versions(
    project: str, name: str, container: ContainerDep, principal: PrincipalDep
) -> ListOf[ModelVersionRead]:
    items = container.packages.list_versions(principal=principal, project=project, name=name)
    return ListOf(data=[version_read(v) for v in items], count=len(items))


@router.get("/{name}/versions/{version}", response_model=ModelVersionRead)
def show_version(
    project: str, name: str, version: str, container: ContainerDep, principal: PrincipalDep
) -> ModelVersionRead:
    return version_read(
        container.packages.get_version(principal=principal, project=project, name=name, version=version)
    )


@router.get("/{name}/versions/{version}/download")
def download_version(
    project: str, name: str, version: str, container: ContainerDep, principal: PrincipalDep
) -> StreamingResponse:
    mv = container.packages.get_version(principal=principal, project=project, name=name, version=version)
    handle = container.artifacts.open(mv.zip_sha256)

    def chunks():  # type: ignore[no-untyped-def]
        with handle:
            yield from iter_stream(handle)

    return StreamingResponse(
        chunks(), media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}-{mv.version}.zip"',
            "Content-Length": str(mv.zip_size),
        },
    )
