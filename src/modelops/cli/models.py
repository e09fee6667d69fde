"""``modelops models``: import your own model (ONNX, pickle/joblib, PMML, MLflow), compute or
show its statistics on a dataset, and evaluate any version on labelled data (metrics, plots,
comparison with the champion)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from modelops.cli.common import (
    JsonFlag,
    ProjectArg,
    add_row,
    client,
    command,
    console,
    fail,
    new_table,
    print_fields,
    print_json,
    transfer_progress,
    when,
)

app = typer.Typer(no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The model's (ML package's) name.")]
VersionArg = Annotated[str, typer.Argument(metavar="VERSION", help="MAJOR.MINOR, e.g. 1.0")]
DatasetOpt = Annotated[str | None, typer.Option(help="Reference dataset for statistics.")]
DatasetVersionOpt = Annotated[
    int | None, typer.Option("--dataset-version", help="Its version (default: the latest).")
]
FolderOpt = Annotated[str, typer.Option(help="Only this sub-folder of the dataset.")]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the job to end.")]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds to wait with --wait.")]


def _finish(api: Any, job: dict[str, Any], *, wait: bool, timeout: float, json_output: bool) -> dict[str, Any]:
    if wait:
        job = api.jobs.wait(job["id"], timeout=timeout)
    if json_output:
        print_json(job)
    if wait and job["status"] != "completed":
        raise fail(f"job {job['id']} {job['status']}: {job.get('error') or 'see its logs'}")
    return job


@app.command("import")
@command
def import_model(
    project: ProjectArg, name: NameArg,
    path: Annotated[Path, typer.Argument(help="The model file, or its folder (e.g. an MLflow model).")],
    format: Annotated[str | None, typer.Option(help="onnx, pickle, joblib, pmml or mlflow (default: detected).")] = None,
    task: Annotated[str | None, typer.Option(help="classification or regression, if the file does not say.")] = None,
    features: Annotated[str | None, typer.Option(help="Feature columns a,b,c, if the file does not name them.")] = None,
    target: Annotated[str | None, typer.Option(help="The target column of the reference data.")] = None,
    dataset: DatasetOpt = None, dataset_version: DatasetVersionOpt = None, folder: FolderOpt = "",
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    wait: WaitOpt = True, timeout: TimeoutOpt = 600.0, json_output: JsonFlag = False,
) -> None:
    """Import a model as version N.0 (status imported); with --dataset, statistics follow."""
    columns = [c for c in features.split(",")] if features else None
    with client() as api:
        with transfer_progress(f"upload {name}", enabled=not json_output) as progress:
            job = api.models.import_model(
                project, name, path, format=format, task=task, features=columns, target=target,
                dataset=dataset, dataset_version=dataset_version, folder=folder,
                description=description, progress=progress,
            )
        if not json_output:
            console.print(f"Import job {job['id']} submitted.", highlight=False)
        job = _finish(api, job, wait=wait, timeout=timeout, json_output=json_output)
        if json_output or not wait:
            return
        result = job["result"]
        console.print(
            f"Imported '{name}' version {result['version']} ({result['format']}, {result['task']}, "
            f"{len(result['features'])} features).", highlight=False, markup=False,
        )
        if result.get("statistics_job_id"):
            stats_job = api.jobs.wait(result["statistics_job_id"], timeout=timeout)
            if stats_job["status"] != "completed":
                raise fail(f"statistics job {stats_job['id']} {stats_job['status']}: "
                           f"{stats_job.get('error') or 'see its logs'}")
            console.print(f"Statistics computed (job {stats_job['id']}).", highlight=False)


@app.command("statistics")
@command
def compute_statistics(
    project: ProjectArg, name: NameArg, version: VersionArg,
    dataset: Annotated[str, typer.Option(help="The reference dataset.")],
    dataset_version: DatasetVersionOpt = None, folder: FolderOpt = "",
    sample_rows: Annotated[int | None, typer.Option(help="Rows the model scores (default 10000).")] = None,
    target: Annotated[str | None, typer.Option(help="Target column, left out of a package's features.")] = None,
    wait: WaitOpt = True, timeout: TimeoutOpt = 600.0, json_output: JsonFlag = False,
) -> None:
    """Compute statistics of a version on a dataset version (a COMPUTE_STATISTICS job)."""
    with client() as api:
        job = api.models.compute_statistics(
            project, name, version, dataset=dataset, dataset_version=dataset_version,
            folder=folder, sample_rows=sample_rows, target=target,
        )
        if not json_output:
            console.print(f"Statistics job {job['id']} submitted.", highlight=False)
        job = _finish(api, job, wait=wait, timeout=timeout, json_output=json_output)
    if wait and not json_output:
        result = job["result"]
        console.print(f"Statistics of {name} {version} on {result['dataset']} v{result['dataset_version']}: "
                      f"{result['rows']} rows, {result['scored_rows']} scored.", highlight=False)


def _describe(summary: dict[str, Any]) -> tuple[str, str, str, str]:
    """(min, mean, max, top values) cells for one feature or the predictions."""
    if summary.get("kind") == "numeric":
        cells = [summary.get(k) for k in ("min", "mean", "max")]
        return (*("-" if v is None else f"{v:.4g}" for v in cells), "")  # type: ignore[return-value]
    top = ", ".join(f"{t['value']} ({t['frequency']:.0%})" for t in summary.get("top", [])[:3])
    return "", "", "", top


@app.command("show-statistics")
@command
def show_statistics(
    project: ProjectArg, name: NameArg, version: VersionArg,
    dataset: Annotated[str | None, typer.Option(help="Only statistics on this dataset.")] = None,
    dataset_version: DatasetVersionOpt = None, json_output: JsonFlag = False,
) -> None:
    """Show the newest statistics of a version: each feature and the predictions."""
    with client() as api:
        found = api.models.statistics(project, name, version, dataset=dataset,
                                      dataset_version=dataset_version)
    if json_output:
        print_json(found)
        return
    stats = found["statistics"]
    source = stats.get("dataset", {})
    model = stats.get("model", {})
    print_fields(f"Statistics of {name} {version}", [
        ("dataset", f"{source.get('name')} v{source.get('version')}"
                    + (f" ({source['folder']})" if source.get("folder") else "")),
        ("rows", f"{stats.get('rows')} ({stats.get('scored_rows')} scored)"),
        ("model", f"{model.get('format')}, {model.get('task')}"),
        ("computed", f"{when(found['created_at'])} by {found['created_by']} (job {found['job_id']})"),
    ])
    table = new_table("Column", "Kind", "Count", "Nulls", "Min", "Mean", "Max", "Top values")
    rows = [*stats.get("features", {}).items(), ("(predictions)", stats.get("predictions", {}))]
    for column, summary in rows:
        add_row(table, column, summary.get("kind", ""), summary.get("count", ""),
                summary.get("nulls", ""), *_describe(summary))
    console.print(table)


# --------------------------------------------------------------------------- evaluation


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:.4g}"


def print_report(report: dict[str, Any], *, server: str = "") -> None:
    """The evaluation report as fields, a metrics table, the plots and the champion comparison."""
    source = report.get("evaluation", {})
    data = source.get("dataset")
    if data is not None:
        data = f"{data} v{source.get('dataset_version')}" + (
            f" ({source['dataset_folder']})" if source.get("dataset_folder") else "")
    print_fields(f"Evaluation of {report['package']} {report['version']}", [
        ("status", report["status"]),
        ("task", source.get("task") or "-"),
        ("dataset", data or "-"),
        ("label", source.get("label") or "-"),
        ("evaluated", f"{when(source.get('at'))} by {source.get('by') or '-'} (job {source.get('job_id')})"),
    ])
    table = new_table("Metric", "Value")
    for metric, value in report.get("metrics", {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            add_row(table, metric, _number(value))
    console.print(table)
    matrix = report.get("metrics", {}).get("confusion_matrix")
    if isinstance(matrix, dict) and matrix.get("labels"):
        grid = new_table("true \\ predicted", *(str(label) for label in matrix["labels"]),
                         title="Confusion matrix")
        for label, row in zip(matrix["labels"], matrix.get("matrix", []), strict=False):
            add_row(grid, label, *row)
        console.print(grid)
    for plot in report.get("plots", []):
        console.print(f"plot {plot['name']}: {server}{plot['url']}", highlight=False, markup=False)
    champion = report.get("champion")
    if not champion:
        console.print("No champion to compare with: the model has no production deployment.")
        return
    where = "same data" if champion.get("same_data") else "other data"
    compared = new_table("Metric", "This version", f"Champion {champion['version']}", "Delta", "Better",
                         title=f"Against the champion ({champion['deployment']}, {where})")
    for row in champion.get("metrics", []):
        delta = row.get("delta")
        add_row(compared, row["metric"], _number(row.get("challenger")), _number(row.get("champion")),
                "-" if delta is None else f"{delta:+.4g}", row.get("better") or "-")
    console.print(compared)
    console.print(f"winner on {champion.get('primary') or '-'}: {champion.get('winner') or '-'}",
                  highlight=False, markup=False)


@app.command("evaluate")
@command
def evaluate(
    project: ProjectArg, name: NameArg, version: VersionArg,
    dataset: Annotated[str, typer.Option(help="The labelled dataset (CSV or Parquet files).")],
    dataset_version: DatasetVersionOpt = None, folder: FolderOpt = "",
    label: Annotated[str | None, typer.Option(help="Column of true values (default: target).")] = None,
    features: Annotated[str | None, typer.Option(help="Columns a package gets, a,b,c (default: all but the label).")] = None,
    task: Annotated[str | None, typer.Option(help="classification or regression, if the model does not say.")] = None,
    wait: WaitOpt = True, timeout: TimeoutOpt = 600.0, json_output: JsonFlag = False,
) -> None:
    """Evaluate any version on labelled data: metrics, plots, comparison with the champion."""
    with client() as api:
        job = api.models.evaluate(
            project, name, version, dataset=dataset, dataset_version=dataset_version, folder=folder,
            label=label, features=features.split(",") if features else None, task=task,
        )
        if not json_output:
            console.print(f"Evaluation job {job['id']} submitted.", highlight=False)
        job = _finish(api, job, wait=wait, timeout=timeout, json_output=json_output)
        if wait and not json_output:
            print_report(api.models.evaluation(project, name, version), server=api.url)


@app.command("evaluation")
@command
def show_evaluation(
    project: ProjectArg, name: NameArg, version: VersionArg,
    download: Annotated[Path | None, typer.Option(help="Save the plots into this folder.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Show the latest evaluation of a version (and save its plots with --download)."""
    with client() as api:
        report = api.models.evaluation(project, name, version)
        server = api.url
        saved = [api.models.download_plot(project, name, version, plot["name"], f"{download}/")
                 for plot in report["plots"]] if download else []
    if json_output:
        print_json(report)
        return
    print_report(report, server=server)
    for path in saved:
        console.print(f"saved {path}", highlight=False, markup=False)
