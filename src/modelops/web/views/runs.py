"""Pipeline details: one run's status, inputs and outputs, the artifacts browser with image
previews, ``_results.json``, the training-data snapshot, and the files themselves.

Stored files are the user's bytes: they are served under a policy that runs nothing (no
script, sandboxed), HTML is never served as HTML, and only images and plain text are inline.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from modelops.adapters.artifacts.hashing import iter_stream
from modelops.domain.errors import InvalidInput
from modelops.domain.manifest import normalise_folder
from modelops.domain.pipelines import ARTIFACTS_AREA, RUN_FILE_AREAS, TRAIN_DATA_AREA, RunFile
from modelops.web.labels import job_url, version_url
from modelops.web.rendering import pretty_json, render, segment
from modelops.web.routing import ContainerDep, UserDep, WebRoute

router = APIRouter(route_class=WebRoute)

RUN = "/projects/{project}/runs/{job_id}"
FILE_POLICY = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"
INLINE_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")
TEXT_PREVIEW_BYTES = 256 * 1024
MAX_LISTED = 500
MAX_PREVIEWS = 24


def file_url(project: str, job_id: int, area: str, path: str) -> str:
    return (f"/ui/projects/{segment(project)}/runs/{job_id}/files/{area}/"
            + "/".join(segment(part) for part in path.split("/")))


def is_image(path: str) -> bool:
    return path.lower().endswith((".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg"))


def is_text(path: str) -> bool:
    return path.lower().endswith((".txt", ".json", ".csv", ".log", ".md", ".yaml", ".yml", ".tsv", ".py"))


def browse(files: list[RunFile], folder: str) -> tuple[list[str], list[RunFile]]:
    """The sub-folders and files directly inside ``folder`` of an area."""
    prefix = f"{folder}/" if folder else ""
    folders: set[str] = set()
    here: list[RunFile] = []
    for found in files:
        if not found.path.startswith(prefix):
            continue
        rest = found.path[len(prefix):]
        if "/" in rest:
            folders.add(rest.split("/", 1)[0])
        else:
            here.append(found)
    return sorted(folders), here


@router.get(RUN)
def run_page(
    request: Request, project: str, job_id: int, container: ContainerDep, user: UserDep, folder: str = "",
) -> Response:
    found = container.projects.get(principal=user, name=project)
    service = container.pipelines
    detail = service.get_run(principal=user, project=project, job_id=job_id)
    artifacts = service.list_files(principal=user, project=project, job_id=job_id, area=ARTIFACTS_AREA)
    snapshot = service.list_files(principal=user, project=project, job_id=job_id, area=TRAIN_DATA_AREA)
    prefix = normalise_folder(folder)
    folders, here = browse(artifacts, prefix)
    if prefix and not folders and not here:
        raise InvalidInput(f"the run's artifacts have no folder '{prefix}'")
    crumbs: list[tuple[str, str]] = []
    walked: list[str] = []
    for part in prefix.split("/") if prefix else []:
        walked.append(part)
        crumbs.append((part, "/".join(walked)))
    params: dict[str, Any] = detail.job.parameters
    new_version = detail.run.new_version
    return render(
        request, "run.html", project=found, detail=detail, run=detail.run, job=detail.job,
        params=params, data=params.get("data") or {}, folder=prefix, folders=folders,
        files=[{"file": f, "url": file_url(project, job_id, ARTIFACTS_AREA, f.path),
                "image": is_image(f.path), "text": is_text(f.path)} for f in here],
        crumbs=crumbs, artifact_count=len(artifacts),
        gallery=[{"path": f.path, "url": file_url(project, job_id, ARTIFACTS_AREA, f.path)}
                 for f in artifacts if is_image(f.path)][:MAX_PREVIEWS],
        snapshot=[{"file": f, "url": file_url(project, job_id, TRAIN_DATA_AREA, f.path)} for f in snapshot[:MAX_LISTED]],
        snapshot_count=len(snapshot),
        results=pretty_json(detail.run.results) if detail.run.results else "",
        job_link=job_url(project, job_id),
        source_url=version_url(project, str(params.get("package", "")), str(params.get("version", ""))),
        new_version_url=version_url(project, str(params.get("package", "")), new_version) if new_version else None,
        active_nav="pipelines",
    )


@router.get(RUN + "/results.json")
def download_results(project: str, job_id: int, container: ContainerDep, user: UserDep) -> Response:
    body = container.pipelines.results(principal=user, project=project, job_id=job_id)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="_results.json"', "Content-Security-Policy": FILE_POLICY,
    })


@router.get(RUN + "/view/{area}/{path:path}")
def view_file(
    request: Request, project: str, job_id: int, area: str, path: str, container: ContainerDep, user: UserDep,
) -> Response:
    """A page showing one stored file: an image, or the start of a text file (escaped)."""
    found_project = container.projects.get(principal=user, name=project)
    found, media_type, handle = container.pipelines.open_file(
        principal=user, project=project, job_id=job_id, area=area, path=path
    )
    with handle:
        head = b"" if is_image(found.path) else handle.read(TEXT_PREVIEW_BYTES)
    return render(
        request, "run_file.html", project=found_project, job_id=job_id, area=area, found=found,
        media_type=media_type, url=file_url(project, job_id, area, found.path), image=is_image(found.path),
        text=head.decode("utf-8", errors="replace") if not is_image(found.path) else "",
        truncated=found.size > TEXT_PREVIEW_BYTES, active_nav="pipelines",
    )


@router.get(RUN + "/files/{area}/{path:path}")
def download_file(
    project: str, job_id: int, area: str, path: str, container: ContainerDep, user: UserDep,
    download: bool = False,
) -> StreamingResponse:
    if area not in RUN_FILE_AREAS:
        raise InvalidInput(f"unknown output area {area!r}")
    found, media_type, handle = container.pipelines.open_file(
        principal=user, project=project, job_id=job_id, area=area, path=path
    )
    inline = not download and media_type in INLINE_IMAGES
    if not download and is_text(found.path):
        # Plain text, whatever the name claims: a stored .html never renders as a page here.
        media_type, inline = "text/plain; charset=utf-8", True
    filename = found.path.rsplit("/", 1)[-1]
    safe_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)

    def chunks():  # type: ignore[no-untyped-def]
        with handle:
            yield from iter_stream(handle)

    return StreamingResponse(chunks(), media_type=media_type, headers={
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{safe_name}"',
        "Content-Length": str(found.size), "Content-Security-Policy": FILE_POLICY,
        "X-Content-Type-Options": "nosniff",
    })
