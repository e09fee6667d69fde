"""Pipelines: the list with recent runs, the form that creates one (training, evaluation or
full; now, once or on a cron schedule), a pipeline's definition and runs, Run now, delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from modelops.bootstrap import Container
from modelops.domain.entities import Principal
from modelops.domain.errors import InvalidInput
from modelops.domain.pipelines import PipelineType
from modelops.web.rendering import render, segment
from modelops.web.routing import ActorDep, ContainerDep, UserDep, WebRoute, flash, redirect

router = APIRouter(route_class=WebRoute)


def parse_parameters(text: str) -> dict[str, str]:
    """``name=value`` per line; blank lines and ``#`` comments are skipped."""
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"parameters line {number}: write name=value (got {line[:60]!r})")
        found[name.strip()] = value.strip()
    return found


def parse_model(value: str) -> tuple[str, str]:
    """``package:version`` from the form's model choice."""
    package, sep, version = value.rpartition(":")
    if not sep or not package or not version:
        raise InvalidInput("choose an ML package version")
    return package, version


def parse_run_at(value: str) -> datetime | None:
    """A ``datetime-local`` value, read as UTC (the page says so)."""
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"invalid time {value!r}: use YYYY-MM-DDTHH:MM") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def model_choices(container: Container, user: Principal, project: str) -> list[tuple[str, str, bool]]:
    """(value, label, can_train) for every version of every package, newest first."""
    choices = []
    for package in container.packages.list(principal=user, project=project):
        versions = container.packages.list_versions(principal=user, project=project, name=package.name)
        for version in reversed(versions):
            choices.append((f"{package.name}:{version.version}",
                            f"{package.name} {version.version} ({version.status})", version.can_train))
    return choices


@router.get("/projects/{project}/pipelines")
def pipelines_page(request: Request, project: str, container: ContainerDep, user: UserDep) -> Response:
    found = container.projects.get(principal=user, name=project)
    pipelines = container.pipelines.list(principal=user, project=project)
    runs = container.pipelines.list_runs(principal=user, project=project, limit=50)
    last: dict[str, Any] = {}
    for detail in runs:  # newest first: the first seen is the latest
        last.setdefault(detail.run.pipeline, detail)
    return render(
        request, "pipelines.html", project=found, pipelines=pipelines, runs=runs, last=last,
        active_nav="pipelines",
    )


@router.get("/projects/{project}/pipelines/new")
def new_pipeline_page(
    request: Request, project: str, container: ContainerDep, user: UserDep, type: str = "training",
    model: str = "",
) -> Response:
    found = container.projects.get(principal=user, name=project)
    return render(
        request, "pipeline_new.html", project=found, types=[(t.value, t.label) for t in PipelineType],
        chosen_type=type if type in {t.value for t in PipelineType} else "training",
        models=model_choices(container, user, project), chosen_model=model,
        datasets=container.datasets.list(principal=user, project=project), active_nav="pipelines",
    )


@router.post("/projects/{project}/pipelines")
def create_pipeline(
    request: Request, project: str, container: ContainerDep, user: ActorDep,
    name: Annotated[str, Form()], type: Annotated[str, Form()], model: Annotated[str, Form()],
    dataset: Annotated[str, Form()], dataset_version: Annotated[str, Form()] = "",
    folder: Annotated[str, Form()] = "", evaluation_dataset: Annotated[str, Form()] = "",
    parameters: Annotated[str, Form()] = "", gpu: Annotated[str, Form()] = "",
    schedule: Annotated[str, Form()] = "now", run_at: Annotated[str, Form()] = "",
    cron: Annotated[str, Form()] = "", timeout_seconds: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    package, version = parse_model(model)
    if dataset_version.strip() and not dataset_version.strip().isdigit():
        raise InvalidInput("the dataset version must be a number, or empty for the newest")
    try:
        timeout = float(timeout_seconds) if timeout_seconds.strip() else None
    except ValueError:
        raise InvalidInput("the timeout must be a number of seconds") from None
    pipeline, detail = container.pipelines.create(
        principal=user, project=project, name=name.strip(), pipeline_type=type, package=package,
        version=version, dataset=dataset, folder=folder,
        dataset_version=int(dataset_version) if dataset_version.strip() else None,
        evaluation_dataset=evaluation_dataset or None, parameters=parse_parameters(parameters),
        gpu=bool(gpu), schedule=schedule, run_at=parse_run_at(run_at) if schedule == "once" else None,
        cron=cron.strip() or None if schedule == "cron" else None, timeout_seconds=timeout,
        description=description,
    )
    if detail is not None:
        flash(request, "ok", f"Pipeline '{pipeline.name}' created; its run is job {detail.job.id}.")
        return redirect(f"/ui/projects/{segment(project)}/runs/{detail.job.id}")
    flash(request, "ok", f"Pipeline '{pipeline.name}' scheduled.")
    return redirect(f"/ui/projects/{segment(project)}/pipelines/{segment(pipeline.name)}")


@router.get("/projects/{project}/pipelines/{name}")
def pipeline_page(request: Request, project: str, name: str, container: ContainerDep, user: UserDep) -> Response:
    found = container.projects.get(principal=user, name=project)
    pipeline = container.pipelines.get(principal=user, project=project, name=name)
    runs = container.pipelines.list_runs(principal=user, project=project, pipeline=name)
    return render(
        request, "pipeline.html", project=found, pipeline=pipeline, runs=runs, active_nav="pipelines",
    )


@router.post("/projects/{project}/pipelines/{name}/run")
def run_now(request: Request, project: str, name: str, container: ContainerDep, user: ActorDep) -> Response:
    detail = container.pipelines.run_now(principal=user, project=project, name=name)
    flash(request, "ok", f"Run started: job {detail.job.id}.")
    return redirect(f"/ui/projects/{segment(project)}/runs/{detail.job.id}")


@router.post("/projects/{project}/pipelines/{name}/delete")
def delete_pipeline(request: Request, project: str, name: str, container: ContainerDep, user: ActorDep) -> Response:
    container.pipelines.delete(principal=user, project=project, name=name)
    flash(request, "ok", f"Pipeline '{name}' deleted; its runs stay on record.")
    return redirect(f"/ui/projects/{segment(project)}/pipelines")
