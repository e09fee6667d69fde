"""ML packages: the list with the upload and import forms, and one package's versions with
their status badges, lineage and a metric across versions."""

from __future__ import annotations

import math
import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from modelops.domain.entities import ModelVersion
from modelops.domain.errors import InvalidInput
from modelops.web import charts
from modelops.web.labels import job_url, version_url
from modelops.web.rendering import render, segment
from modelops.web.routing import ActorDep, ContainerDep, UserDep, WebRoute, flash, redirect
from modelops.web.uploads import check_declared_size, save_upload

router = APIRouter(route_class=WebRoute)

# The metric the versions chart shows first, when a version reports it.
PREFERRED_METRICS = ("accuracy", "f1", "roc_auc", "score", "r2", "rmse", "mae")


def _one_file(value: object) -> UploadFile | None:
    return value if isinstance(value, UploadFile) and value.filename else None


def numeric_metrics(version: ModelVersion) -> dict[str, float]:
    """A version's metrics that are plain finite numbers (tables and nested records left out)."""
    found: dict[str, float] = {}
    for key, value in (version.metrics or {}).items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(float(value)) and key != "n_samples":
            found[key] = float(value)
    return found


def lineage_summary(version: ModelVersion) -> str:
    lineage = version.lineage or {}
    source = str(lineage.get("source", ""))
    if source == "upload":
        return "uploaded"
    if source == "import":
        fmt = (lineage.get("byom") or {}).get("format", "")
        return f"imported {fmt}".strip()
    if lineage.get("source_version"):
        data = lineage.get("dataset")
        where = f" on {data} v{lineage.get('dataset_version')}" if data else ""
        return f"{source.replace('_', ' ')} from {lineage['source_version']}{where}"
    return source or "—"


@router.get("/projects/{project}/packages")
def packages_page(request: Request, project: str, container: ContainerDep, user: UserDep) -> Response:
    found = container.projects.get(principal=user, name=project)
    packages = container.packages.list(principal=user, project=project)
    datasets = container.datasets.list(principal=user, project=project)
    return render(
        request, "packages.html", project=found, packages=packages, datasets=datasets,
        active_nav="packages",
    )


@router.post("/projects/{project}/packages/upload")
async def upload_package(request: Request, project: str, container: ContainerDep, user: ActorDep) -> Response:
    settings = container.settings
    check_declared_size(request, settings.max_upload_bytes)
    form = await request.form()
    name = str(form.get("name") or "").strip()
    description = str(form.get("description") or "")
    upload = _one_file(form.get("archive"))
    if not name:
        raise InvalidInput("give the ML package a name")
    if upload is None:
        raise InvalidInput("choose the ML package's zip file")
    path = await save_upload(upload, scratch=settings.scratch_dir, max_bytes=settings.max_upload_bytes)
    try:
        version = await run_in_threadpool(
            lambda: container.packages.upload(
                principal=user, project=project, name=name, archive=path, description=description
            )
        )
    finally:
        os.unlink(path)
    flash(request, "ok", f"ML package '{name}' version {version.version} uploaded.")
    return redirect(version_url(project, name, version.version))


@router.post("/projects/{project}/packages/import")
async def import_model(request: Request, project: str, container: ContainerDep, user: ActorDep) -> Response:
    """Bring your own model: store the file and start its import job (and statistics)."""
    settings = container.settings
    check_declared_size(request, settings.max_upload_bytes)
    form = await request.form()
    fields = {key: str(form.get(key) or "").strip() for key in (
        "name", "format", "task", "features", "target", "dataset", "description",
    )}
    upload = _one_file(form.get("model"))
    if not fields["name"]:
        raise InvalidInput("give the model a name")
    if upload is None:
        raise InvalidInput("choose the model file (or a zip of the model folder)")
    path = await save_upload(upload, scratch=settings.scratch_dir, max_bytes=settings.max_upload_bytes)
    try:
        job = await run_in_threadpool(
            lambda: container.byom.submit_import(
                principal=user, project=project, name=fields["name"], upload=path,
                filename=upload.filename, format=fields["format"] or None,
                task=fields["task"] or None, features=fields["features"] or None,
                target=fields["target"] or None, dataset=fields["dataset"] or None,
                description=fields["description"],
            )
        )
    finally:
        os.unlink(path)
    flash(request, "ok", f"Import of '{fields['name']}' started as job {job.id}; the version appears when it completes.")
    return redirect(job_url(project, job.id))


def versions_chart(versions: list[ModelVersion], metric: str) -> charts.LineChart | None:
    values = [numeric_metrics(v).get(metric) for v in versions]
    if sum(v is not None for v in values) == 0:
        return None
    return charts.line_chart([v.version for v in versions], values, y_label=metric)


@router.get("/projects/{project}/packages/{name}")
def package_page(
    request: Request, project: str, name: str, container: ContainerDep, user: UserDep,
    metric: str = "",
) -> Response:
    found = container.projects.get(principal=user, name=project)
    package = container.packages.get(principal=user, project=project, name=name)
    versions = container.packages.list_versions(principal=user, project=project, name=name)
    available = sorted({key for v in versions for key in numeric_metrics(v)})
    chosen = metric if metric in available else next(
        (m for m in PREFERRED_METRICS if m in available), available[0] if available else ""
    )
    rows: list[dict[str, Any]] = [
        {"version": v, "url": version_url(project, name, v.version),
         "source": lineage_summary(v), "metrics": numeric_metrics(v)}
        for v in reversed(versions)
    ]
    deployments = deployments_of(container, user, project, name)
    return render(
        request, "package.html", project=found, package=package, rows=rows,
        metrics=available, metric=chosen, chart=versions_chart(versions, chosen) if chosen else None,
        deployments=deployments, active_nav="packages",
        base=f"/ui/projects/{segment(project)}/packages/{segment(name)}",
    )


def deployments_of(container: Any, user: Any, project: str, package: str) -> list[Any]:
    services = getattr(container, "lifecycle", None)
    if services is None:
        return []
    return list(services.deployments.list(principal=user, project=project, package=package))
