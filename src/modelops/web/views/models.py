"""One model version: its lineage, metrics, evaluation report (plots, champion comparison) and
statistics histograms, its jobs, and the lifecycle actions (evaluate, compute statistics,
approve or reject with a reason, deploy)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response, StreamingResponse

from modelops.adapters.artifacts.hashing import iter_stream
from modelops.bootstrap import Container
from modelops.domain.entities import ModelVersion, Principal
from modelops.domain.errors import InvalidInput, ModelOpsError, NotFound
from modelops.web import charts
from modelops.web.labels import job_url, kind_label, version_url
from modelops.web.rendering import render, segment
from modelops.web.routing import ActorDep, ContainerDep, UserDep, WebRoute, flash, redirect
from modelops.web.views.packages import deployments_of, numeric_metrics
from modelops.web.views.runs import FILE_POLICY, INLINE_IMAGES

router = APIRouter(route_class=WebRoute)

VERSION = "/projects/{project}/packages/{name}/versions/{version}"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg")
MAX_FEATURE_CHARTS = 24


def evaluation_charts(metrics: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(kind, title, chart) for what the metrics hold: a confusion matrix, a ROC curve."""
    found: list[tuple[str, str, Any]] = []
    matrix = metrics.get("confusion_matrix")
    if isinstance(matrix, dict):
        heat = charts.heatmap(matrix.get("labels") or [], matrix.get("matrix") or [])
        if heat:
            found.append(("matrix", "Confusion matrix", heat))
    roc = metrics.get("roc_curve")
    if isinstance(roc, dict):
        curve = charts.roc_chart(roc.get("fpr") or [], roc.get("tpr") or [])
        if curve:
            auc = metrics.get("roc_auc")
            title = f"ROC curve (AUC {charts.fmt(float(auc))})" if isinstance(auc, int | float) else "ROC curve"
            found.append(("line", title, curve))
    return found


def column_chart(column: dict[str, Any]) -> Any:
    """A statistics column (docs/statistics.md) as a histogram or a top-values bar chart."""
    if column.get("kind") == "numeric":
        histogram = column.get("histogram") or {}
        return charts.histogram(histogram.get("edges") or [], histogram.get("counts") or [])
    top = column.get("top") or []
    labels = [str(item.get("value")) for item in top][:20]
    counts = [float(item.get("count") or 0) for item in top][:20]
    if column.get("other_count"):
        labels.append("other")
        counts.append(float(column["other_count"]))
    return charts.bar_chart(labels, counts, y_label="rows") if labels else None


def statistics_view(container: Container, user: Principal, project: str, name: str, version: str) -> dict[str, Any] | None:
    try:
        stats = container.byom.latest_statistics(principal=user, project=project, name=name, version=version)
    except NotFound:
        return None
    doc = stats.stats or {}
    features = []
    for feature, column in list((doc.get("features") or {}).items())[:MAX_FEATURE_CHARTS]:
        features.append({"name": feature, "column": column, "chart": column_chart(column)})
    predictions = doc.get("predictions")
    return {
        "record": stats, "doc": doc, "features": features,
        "hidden": max(len(doc.get("features") or {}) - MAX_FEATURE_CHARTS, 0),
        "predictions": column_chart(predictions) if isinstance(predictions, dict) else None,
    }


def evaluation_images(container: Container, user: Principal, project: str, metrics: dict[str, Any]) -> list[dict[str, str]]:
    """Images the evaluation run wrote to its artifacts (plots), shown next to the metrics."""
    evaluation = metrics.get("evaluation")
    job_id = evaluation.get("job_id") if isinstance(evaluation, dict) else None
    if not isinstance(job_id, int):
        return []
    try:
        files = container.pipelines.list_files(principal=user, project=project, job_id=job_id, area="artifacts")
    except ModelOpsError:
        return []
    base = f"/ui/projects/{segment(project)}/runs/{job_id}/files/artifacts/"
    return [
        {"path": f.path, "url": base + "/".join(segment(p) for p in f.path.split("/"))}
        for f in files if f.path.lower().endswith(IMAGE_SUFFIXES)
    ][:12]


def evaluation_report(
    container: Container, user: Principal, project: str, name: str, version: str
) -> dict[str, Any] | None:
    """The report of the latest evaluation job: its stored plots (served by ``evaluation_plot``)
    and the comparison with the champion made when it ran."""
    try:
        report = container.evaluation.report(principal=user, project=project, name=name, version=version)
    except NotFound:
        return None
    base = version_url(project, name, version) + "/evaluation/plots/"
    plots = [{"name": str(p.get("name")), "url": base + segment(str(p.get("name")))}
             for p in report.plots if p.get("name")]
    return {"plots": plots, "champion": report.champion, "evaluation": report.evaluation}


def optional_int(value: str, what: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    if not text.isdigit():
        raise InvalidInput(f"{what} must be a whole number, got {value!r}")
    return int(text)


def version_jobs(container: Container, user: Principal, project: str, version: ModelVersion) -> list[dict[str, Any]]:
    jobs = container.jobs.list(principal=user, project=project, limit=500)
    return [
        {"job": j, "kind": kind_label(j.kind), "url": job_url(project, j.id)}
        for j in jobs if j.target_type == "model_version" and j.target_id == version.id
    ]


@router.get(VERSION)
def version_page(
    request: Request, project: str, name: str, version: str, container: ContainerDep, user: UserDep,
) -> Response:
    found = container.projects.get(principal=user, name=project)
    package = container.packages.get(principal=user, project=project, name=name)
    chosen = container.packages.get_version(principal=user, project=project, name=name, version=version)
    metrics = chosen.metrics or {}
    datasets = container.datasets.list(principal=user, project=project)
    return render(
        request, "model_version.html", project=found, package=package, mv=chosen,
        scalars=numeric_metrics(chosen), eval_charts=evaluation_charts(metrics),
        eval_images=evaluation_images(container, user, project, metrics),
        report=evaluation_report(container, user, project, name, chosen.version),
        stats=statistics_view(container, user, project, name, chosen.version),
        jobs=version_jobs(container, user, project, chosen), datasets=datasets,
        lineage=chosen.lineage or {}, review=(chosen.lineage or {}).get("review"),
        has_lifecycle=getattr(container, "lifecycle", None) is not None,
        deployments=[d for d in deployments_of(container, user, project, name) if d.model_version_id == chosen.id],
        url=version_url(project, name, chosen.version), active_nav="packages",
        package_url=f"/ui/projects/{segment(project)}/packages/{segment(name)}",
        pipelines_url=f"/ui/projects/{segment(project)}/pipelines",
    )


@router.get(VERSION + "/download")
def download_version(project: str, name: str, version: str, container: ContainerDep, user: UserDep) -> StreamingResponse:
    chosen = container.packages.get_version(principal=user, project=project, name=name, version=version)
    handle = container.artifacts.open(chosen.zip_sha256)

    def chunks():  # type: ignore[no-untyped-def]
        with handle:
            yield from iter_stream(handle)

    return StreamingResponse(chunks(), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}-{chosen.version}.zip"',
        "Content-Length": str(chosen.zip_size),
    })


@router.get(VERSION + "/evaluation/plots/{plot}")
def evaluation_plot(
    project: str, name: str, version: str, plot: str, container: ContainerDep, user: UserDep,
) -> StreamingResponse:
    """One plot of the latest evaluation report, under the policy for stored files."""
    record, handle = container.evaluation.open_plot(
        principal=user, project=project, name=name, version=version, plot=plot
    )
    media_type = str(record.get("media_type") or "application/octet-stream")
    inline = media_type in INLINE_IMAGES
    safe_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in plot)

    def chunks():  # type: ignore[no-untyped-def]
        with handle:
            yield from iter_stream(handle)

    headers = {
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{safe_name}"',
        "Content-Security-Policy": FILE_POLICY, "X-Content-Type-Options": "nosniff",
    }
    if isinstance(record.get("size"), int):
        headers["Content-Length"] = str(record["size"])
    return StreamingResponse(chunks(), media_type=media_type if inline else "application/octet-stream",
                             headers=headers)


@router.post(VERSION + "/evaluate")
def evaluate(
    request: Request, project: str, name: str, version: str, container: ContainerDep, user: ActorDep,
    dataset: Annotated[str, Form()], dataset_version: Annotated[str, Form()] = "",
    label: Annotated[str, Form()] = "",
) -> Response:
    job = container.evaluation.submit(
        principal=user, project=project, name=name, version=version, dataset=dataset,
        dataset_version=optional_int(dataset_version, "dataset version"), label=label.strip() or None,
    )
    flash(request, "ok", f"Evaluation started as job {job.id}.")
    return redirect(job_url(project, job.id))


@router.post(VERSION + "/statistics")
def compute_statistics(
    request: Request, project: str, name: str, version: str, container: ContainerDep, user: ActorDep,
    dataset: Annotated[str, Form()], folder: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = "",
) -> Response:
    job = container.byom.submit_statistics(
        principal=user, project=project, name=name, version=version, dataset=dataset, folder=folder,
        target=target.strip() or None,
    )
    flash(request, "ok", f"Compute statistics started as job {job.id}.")
    return redirect(job_url(project, job.id))


def _decisions(container: Container) -> Any:
    services = getattr(container, "lifecycle", None)
    if services is None:
        raise InvalidInput("approvals are not available on this server yet")
    return services.decisions


@router.post(VERSION + "/approve")
def approve(
    request: Request, project: str, name: str, version: str, container: ContainerDep, user: ActorDep,
    reason: Annotated[str, Form()] = "",
) -> Response:
    decision = _decisions(container).approve(
        principal=user, project=project, package=name, version=version, reason=reason
    )
    flash(request, "ok", f"{name} {version} approved (job {decision.job.id}).")
    return redirect(version_url(project, name, version))


@router.post(VERSION + "/reject")
def reject(
    request: Request, project: str, name: str, version: str, container: ContainerDep, user: ActorDep,
    reason: Annotated[str, Form()] = "",
) -> Response:
    decision = _decisions(container).reject(
        principal=user, project=project, package=name, version=version, reason=reason
    )
    flash(request, "ok", f"{name} {version} rejected (job {decision.job.id}).")
    return redirect(version_url(project, name, version))
