"""Datasets: the list with the upload form (an archive or a whole folder), a dataset's versions,
a version's file manifest, and downloads of a version or one folder of it."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from modelops.domain.errors import InvalidInput, NotFound
from modelops.domain.manifest import normalise_folder
from modelops.web.rendering import render, segment
from modelops.web.routing import ActorDep, ContainerDep, UserDep, WebRoute, flash, redirect
from modelops.web.uploads import check_declared_size, save_upload, zip_folder_upload

router = APIRouter(route_class=WebRoute)


def _files(value: object) -> list[UploadFile]:
    """Chosen files only: an empty file input still sends a nameless, empty part."""
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, UploadFile) and item.filename]


@router.get("/projects/{project}/datasets")
def datasets_page(request: Request, project: str, container: ContainerDep, user: UserDep) -> Response:
    found = container.projects.get(principal=user, name=project)
    datasets = container.datasets.list(principal=user, project=project)
    return render(request, "datasets.html", project=found, datasets=datasets, active_nav="datasets")


@router.post("/projects/{project}/datasets/upload")
async def upload_dataset(request: Request, project: str, container: ContainerDep, user: ActorDep) -> Response:
    settings = container.settings
    check_declared_size(request, settings.max_upload_bytes)
    form = await request.form()
    name = str(form.get("name") or "").strip()
    note = str(form.get("note") or "")
    description = str(form.get("description") or "")
    archive, folder = _files(form.get("archive")), _files(form.getlist("folder"))
    if not name:
        raise InvalidInput("give the dataset a name")
    if bool(archive) == bool(folder):
        raise InvalidInput("choose either an archive (zip or tar) or a folder to upload")
    scratch = settings.scratch_dir
    if archive:
        path = await save_upload(archive[0], scratch=scratch, max_bytes=settings.max_upload_bytes)
    else:
        path = await zip_folder_upload(folder, scratch=scratch, max_bytes=settings.max_upload_bytes)
    try:
        def store() -> int:
            if description:
                try:
                    container.datasets.get(principal=user, project=project, name=name)
                except NotFound:
                    container.datasets.create(
                        principal=user, project=project, name=name, description=description
                    )
            made = container.datasets.upload_version(
                principal=user, project=project, name=name, archive=path, note=note
            )
            return made.version

        version = await run_in_threadpool(store)
    finally:
        os.unlink(path)
    flash(request, "ok", f"Dataset '{name}' version {version} stored.")
    return redirect(f"/ui/projects/{segment(project)}/datasets/{segment(name)}/versions/{version}")


@router.get("/projects/{project}/datasets/{name}")
def dataset_page(request: Request, project: str, name: str, container: ContainerDep, user: UserDep) -> Response:
    found = container.projects.get(principal=user, name=project)
    dataset = container.datasets.get(principal=user, project=project, name=name)
    versions = container.datasets.list_versions(principal=user, project=project, name=name)
    return render(
        request, "dataset.html", project=found, dataset=dataset, versions=list(reversed(versions)),
        active_nav="datasets",
    )


@router.get("/projects/{project}/datasets/{name}/versions/{version}")
def dataset_version_page(
    request: Request, project: str, name: str, version: int, container: ContainerDep,
    user: UserDep, folder: str = "",
) -> Response:
    found = container.projects.get(principal=user, name=project)
    dataset = container.datasets.get(principal=user, project=project, name=name)
    chosen = container.datasets.get_version(principal=user, project=project, name=name, version=version)
    prefix = normalise_folder(folder)
    files = [f for f in chosen.files if not prefix or f.path.startswith(prefix + "/")]
    if prefix and not files:
        raise NotFound(f"version {version} of dataset '{name}' has no folder '{prefix}'")
    top_folders = sorted({f.path.split("/", 1)[0] for f in chosen.files if "/" in f.path})
    return render(
        request, "dataset_version.html", project=found, dataset=dataset, dv=chosen, files=files,
        folder=prefix, top_folders=top_folders, active_nav="datasets",
    )


@router.get("/projects/{project}/datasets/{name}/versions/{version}/download")
def download_dataset_version(
    project: str, name: str, version: int, container: ContainerDep, user: UserDep, folder: str = "",
) -> FileResponse:
    path: Path = container.datasets.export_zip(
        principal=user, project=project, name=name, version=version, folder=folder
    )
    suffix = f"-{folder.strip('/').replace('/', '_')}" if folder.strip("/") else ""
    return FileResponse(
        path, media_type="application/zip", filename=f"{name}-v{version}{suffix}.zip",
        background=BackgroundTask(os.unlink, path),
    )
