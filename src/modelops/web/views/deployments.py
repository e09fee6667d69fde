"""Deployments: the list, deploying an approved version, a deployment's details with its Jobs
tab, Run now, its batch schedule and next runs, drift per feature of each batch run, retire."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from modelops.bootstrap import Container
from modelops.domain.errors import InvalidInput
from modelops.web import charts
from modelops.web.labels import job_url, kind_label
from modelops.web.rendering import render, segment
from modelops.web.routing import ActorDep, ContainerDep, UserDep, WebRoute, flash, redirect

router = APIRouter(route_class=WebRoute)

DEPLOYMENT = "/projects/{project}/deployments/{deployment}"
TABS = ("overview", "jobs", "runs")


def lifecycle(container: Container) -> Any:
    found = getattr(container, "lifecycle", None)
    if found is None:
        raise InvalidInput("deployments are not available on this server yet")
    return found


def deployment_url(project: str, name: str) -> str:
    return f"/ui/projects/{segment(project)}/deployments/{segment(name)}"


def drift_view(drift: Any) -> dict[str, Any] | None:
    """Drift per feature (docs/statistics.md) as rows, worst first, and their bar chart."""
    if not isinstance(drift, dict) or not isinstance(drift.get("features"), dict):
        return None
    rows = []
    for name, feature in drift["features"].items():
        psi = feature.get("psi") if isinstance(feature, dict) else None
        if isinstance(psi, int | float) and not isinstance(psi, bool):
            rows.append({"name": str(name), "psi": float(psi), "level": str(feature.get("level", "")),
                         "kind": feature.get("kind", ""), "unseen": feature.get("unseen_categories") or []})
    rows.sort(key=lambda r: -r["psi"])
    predictions = drift.get("predictions") if isinstance(drift.get("predictions"), dict) else None
    return {
        "rows": rows,
        "chart": charts.drift_bars([(r["name"], r["psi"], r["level"]) for r in rows[:30]]),
        "predictions": predictions, "max_psi": drift.get("max_psi"),
        "absent": drift.get("absent_features") or [], "sample_rows": drift.get("sample_rows"),
        "rows_scored": drift.get("rows"),
    }


@router.get("/projects/{project}/deployments")
def deployments_page(request: Request, project: str, container: ContainerDep, user: UserDep, status: str = "") -> Response:
    found = container.projects.get(principal=user, name=project)
    service = getattr(container, "lifecycle", None)
    deployments = service.deployments.list(principal=user, project=project, status=status or None) if service else []
    return render(
        request, "deployments.html", project=found, deployments=deployments, status=status,
        available=service is not None, active_nav="deployments",
    )


@router.post("/projects/{project}/deployments")
def deploy(
    request: Request, project: str, container: ContainerDep, user: ActorDep,
    package: Annotated[str, Form()], version: Annotated[str, Form()], name: Annotated[str, Form()] = "",
    dataset: Annotated[str, Form()] = "", folder: Annotated[str, Form()] = "",
    output_dataset: Annotated[str, Form()] = "", cron: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "", existing: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    deployed = lifecycle(container).deployments.deploy(
        principal=user, project=project, package=package, version=version, name=name.strip() or None,
        dataset=dataset or None, folder=folder, output_dataset=output_dataset.strip() or None,
        cron=cron.strip() or None, timezone=timezone.strip() or None,
        replace=existing == "replace", side_by_side=existing == "side_by_side", reason=reason,
    )
    made = deployed.deployment
    flash(request, "ok", f"{package} {version} deployed as '{made.name}'"
          + (f"; '{deployed.replaced.name}' was retired." if deployed.replaced else "."))
    return redirect(deployment_url(project, made.name))


@router.get(DEPLOYMENT)
def deployment_page(
    request: Request, project: str, deployment: str, container: ContainerDep, user: UserDep,
    tab: str = "overview",
) -> Response:
    found = container.projects.get(principal=user, name=project)
    services = lifecycle(container)
    schedule = services.deployments.schedule(principal=user, project=project, deployment=deployment, count=5)
    current = schedule.deployment
    jobs = services.deployments.jobs(principal=user, project=project, deployment=current.name)
    runs = services.batch.runs(principal=user, project=project, deployment=current.name, limit=50)
    latest = next((r for r in runs if r.drift), None)
    return render(
        request, "deployment.html", project=found, d=current, upcoming=schedule.upcoming,
        tab=tab if tab in TABS else "overview", runs=runs, latest=latest,
        drift=drift_view(latest.drift) if latest else None,
        url=deployment_url(project, current.name), active_nav="deployments",
        jobs=[{"job": j, "kind": kind_label(j.kind), "url": job_url(project, j.id)} for j in jobs],
        job_status={j.id: j.status for j in jobs},
    )


@router.get(DEPLOYMENT + "/runs/{job_id}")
def batch_run_page(
    request: Request, project: str, deployment: str, job_id: int, container: ContainerDep, user: UserDep,
) -> Response:
    found = container.projects.get(principal=user, name=project)
    services = lifecycle(container)
    current = services.deployments.get(principal=user, project=project, deployment=deployment)
    run, job = services.batch.run(principal=user, project=project, deployment=current.name, job_id=job_id)
    return render(
        request, "batch_run.html", project=found, d=current, run=run, job=job,
        drift=drift_view(run.drift), url=deployment_url(project, current.name),
        job_link=job_url(project, job_id), active_nav="deployments",
    )


@router.post(DEPLOYMENT + "/run")
def run_now(request: Request, project: str, deployment: str, container: ContainerDep, user: ActorDep) -> Response:
    started = lifecycle(container).batch.run_now(principal=user, project=project, deployment=deployment)
    flash(request, "ok", f"Batch prediction started: job {started.job.id}.")
    return redirect(deployment_url(project, deployment) + "?tab=jobs")


@router.post(DEPLOYMENT + "/schedule")
def set_schedule(
    request: Request, project: str, deployment: str, container: ContainerDep, user: ActorDep,
    cron: Annotated[str, Form()] = "", timezone: Annotated[str, Form()] = "",
) -> Response:
    changed = lifecycle(container).deployments.set_schedule(
        principal=user, project=project, deployment=deployment, cron=cron.strip() or None,
        timezone=timezone.strip() or None,
    )
    flash(request, "ok", f"Schedule set: {changed.schedule.cron} ({changed.schedule.timezone})."
          if changed.schedule else "Schedule cleared: runs start with Run now only.")
    return redirect(deployment_url(project, deployment))


@router.post(DEPLOYMENT + "/retire")
def retire(
    request: Request, project: str, deployment: str, container: ContainerDep, user: ActorDep,
    reason: Annotated[str, Form()] = "",
) -> Response:
    retired, job = lifecycle(container).deployments.retire(
        principal=user, project=project, deployment=deployment, reason=reason
    )
    flash(request, "ok", f"Deployment '{retired.name}' retired (job {job.id}).")
    return redirect(deployment_url(project, retired.name))
