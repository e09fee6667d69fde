"""``modelops pipelines``: training, evaluation and full pipelines, their runs and outputs."""

from __future__ import annotations

import json
from datetime import datetime
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
    human_size,
    new_table,
    print_fields,
    print_json,
    when,
)

app = typer.Typer(no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The pipeline's name.")]
RunArg = Annotated[int, typer.Argument(metavar="RUN", help="The run's job id.")]
WaitOpt = Annotated[
    bool, typer.Option("--wait", help="Wait for the run to end; exit 1 unless it is Successful."),
]


def _parameters(values: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise fail(f"--param {item!r}: use NAME=VALUE")
        parsed[name] = value
    return parsed


def _schedule(at: str | None, cron: str | None) -> tuple[str, str | None]:
    if at and cron:
        raise fail("give either --at or --cron, not both")
    if cron:
        return "cron", None
    if at:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            raise fail(f"--at {at!r}: use ISO 8601, e.g. 2030-01-31T18:00") from None
        # A time without an offset is the user's local time, as they would read a clock.
        return "once", (moment if moment.tzinfo else moment.astimezone()).isoformat()
    return "now", None


def _data_text(data: dict[str, Any] | None) -> str:
    if not data:
        return "-"
    version = data["version"] if data["version"] is not None else "newest"
    folder = f", folder {data['folder']}" if data["folder"] else ""
    return f"{data['dataset']} (version {version}{folder})"


def _schedule_text(pipeline: dict[str, Any]) -> str:
    schedule = pipeline["schedule"]
    if schedule["kind"] == "cron":
        return f"cron '{schedule['cron']}' (UTC)"
    if schedule["kind"] == "once":
        return f"once at {schedule['run_at']}"
    return "run on creation"


def _print_run_line(run: dict[str, Any]) -> None:
    extra = ""
    if run.get("new_version"):
        extra += f"; new version {run['new_version']}"
    if run.get("score") is not None:
        extra += f"; score {run['score']:.4g}"
    if run.get("error") and run["status"] != "Successful":
        extra += f"; {run['error']}"
    console.print(f"Run {run['job_id']} of pipeline '{run['pipeline']}': {run['status']}{extra}",
                  highlight=False, markup=False)


def _wait(project: str, run: dict[str, Any], *, json_output: bool) -> None:
    with client() as api:
        final = api.pipelines.wait_run(project, run["job_id"])
    if json_output:
        print_json(final)
    else:
        _print_run_line(final)
    if final["status"] != "Successful":
        if not json_output:
            console.print(f"Logs: modelops jobs logs {final['job_id']}", highlight=False, markup=False)
        raise typer.Exit(1)


@app.command("create")
@command
def create_pipeline(
    project: ProjectArg, name: NameArg,
    pipeline_type: Annotated[str, typer.Option("--type", help="training, evaluation or full.")],
    package: Annotated[str, typer.Option(help="The ML package.")],
    version: Annotated[str, typer.Option(help="The package version, MAJOR.MINOR.")],
    dataset: Annotated[str, typer.Option(help="The input dataset.")],
    dataset_version: Annotated[
        int | None, typer.Option(help="Dataset version (default: the newest at each run).")
    ] = None,
    folder: Annotated[str, typer.Option(help="Only this folder of the dataset.")] = "",
    eval_dataset: Annotated[
        str | None, typer.Option(help="Full pipelines: a separate evaluation dataset.")
    ] = None,
    eval_dataset_version: Annotated[int | None, typer.Option()] = None,
    eval_folder: Annotated[str, typer.Option()] = "",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="NAME=VALUE environment variable (repeatable)."),
    ] = None,
    gpu: Annotated[bool, typer.Option("--gpu/--no-gpu", help="Run on a GPU.")] = False,
    at: Annotated[
        str | None, typer.Option(help="Run once at this time (ISO 8601; local time if no offset).")
    ] = None,
    cron: Annotated[
        str | None, typer.Option(help="Run at every match of a five-field cron expression (UTC).")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop a run after this many seconds.")] = None,
    description: Annotated[str, typer.Option()] = "",
    wait: WaitOpt = False,
    json_output: JsonFlag = False,
) -> None:
    """Save a pipeline. Without --at or --cron it runs now."""
    schedule, run_at = _schedule(at, cron)
    with client() as api:
        created = api.pipelines.create(
            project, name, type=pipeline_type, package=package, version=version,
            dataset=dataset, dataset_version=dataset_version, folder=folder,
            evaluation_dataset=eval_dataset, evaluation_dataset_version=eval_dataset_version,
            evaluation_folder=eval_folder, parameters=_parameters(param or []), gpu=gpu,
            schedule=schedule, run_at=run_at, cron=cron, timeout_seconds=timeout,
            description=description,
        )
    run = created.get("run")
    if run and wait:
        _wait(project, run, json_output=json_output)
        return
    if json_output:
        print_json(created)
        return
    console.print(f"Created {created['type_label'].lower()} pipeline '{name}' "
                  f"({_schedule_text(created)}).", highlight=False, markup=False)
    if run:
        _print_run_line(run)
    elif created["next_run_at"]:
        console.print(f"Next run at {created['next_run_at']}.", highlight=False, markup=False)


@app.command("list")
@command
def list_pipelines(project: ProjectArg, json_output: JsonFlag = False) -> None:
    """List a project's pipelines."""
    with client() as api:
        pipelines = api.pipelines.list(project)
    if json_output:
        print_json(pipelines)
        return
    table = new_table("Name", "Type", "Package", "Dataset", "Schedule", "Next run", "Created")
    for p in pipelines:
        add_row(table, p["name"], p["type"], f"{p['package']} {p['version']}",
                _data_text(p["data"]), _schedule_text(p), when(p["next_run_at"]) or "-",
                when(p["created_at"]))
    console.print(table)


@app.command("show")
@command
def show_pipeline(project: ProjectArg, name: NameArg, json_output: JsonFlag = False) -> None:
    """Show a pipeline's definition."""
    with client() as api:
        p = api.pipelines.get(project, name)
    if json_output:
        print_json(p)
        return
    print_fields(f"Pipeline {p['name']}", [
        ("type", p["type_label"]),
        ("package", f"{p['package']} {p['version']}"),
        ("data", _data_text(p["data"])),
        ("evaluation data", _data_text(p["evaluation_data"])),
        ("parameters", json.dumps(p["parameters"], sort_keys=True)),
        ("gpu", "yes" if p["gpu"] else "no"),
        ("schedule", _schedule_text(p)),
        ("next run", p["next_run_at"] or "-"),
        ("timeout", f"{p['timeout_seconds']:g} s" if p["timeout_seconds"] else "-"),
        ("created", f"{when(p['created_at'])} by {p['created_by']}"),
    ])


@app.command("delete")
@command
def delete_pipeline(project: ProjectArg, name: NameArg) -> None:
    """Delete a pipeline and its schedule; its runs stay on record."""
    with client() as api:
        api.pipelines.delete(project, name)
    console.print(f"Deleted pipeline '{name}'.", highlight=False, markup=False)


@app.command("run")
@command
def run_pipeline(
    project: ProjectArg, name: NameArg, wait: WaitOpt = False, json_output: JsonFlag = False
) -> None:
    """Run a saved pipeline now."""
    with client() as api:
        run = api.pipelines.run(project, name)
    if wait:
        _wait(project, run, json_output=json_output)
    elif json_output:
        print_json(run)
    else:
        _print_run_line(run)


@app.command("runs")
@command
def list_runs(
    project: ProjectArg,
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline's runs.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """List pipeline runs, newest first."""
    with client() as api:
        runs = api.pipelines.runs(project, pipeline)
    if json_output:
        print_json(runs)
        return
    table = new_table("Run", "Pipeline", "Type", "Status", "Package", "Score", "New version", "Started")
    for r in runs:
        add_row(table, r["job_id"], r["pipeline"], r["type"], r["status"],
                f"{r['package']} {r['version']}",
                f"{r['score']:.4g}" if r["score"] is not None else "-", r["new_version"] or "-",
                when(r["started_at"]) or "-")
    console.print(table)


@app.command("run-show")
@command
def show_run(project: ProjectArg, run: RunArg, json_output: JsonFlag = False) -> None:
    """Show a run: status, inputs, outputs and artifacts."""
    with client() as api:
        r = api.pipelines.get_run(project, run)
    if json_output:
        print_json(r)
        return
    folder = f", folder {r['folder']}" if r["folder"] else ""
    print_fields(f"Run {r['job_id']} of pipeline {r['pipeline']}", [
        ("status", r["status"] + (f" ({r['error']})" if r["error"] and r["status"] != "Successful" else "")),
        ("type", r["type"]),
        ("package", f"{r['package']} {r['version']}"),
        ("data", f"{r['dataset']} version {r['dataset_version']}{folder}"),
        ("parameters", json.dumps(r["parameters"], sort_keys=True)),
        ("score", f"{r['score']:.6g}" if r["score"] is not None else "-"),
        ("new version", r["new_version"] or "-"),
        ("started", when(r["started_at"]) or "-"),
        ("ended", when(r["ended_at"]) or "-"),
        ("artifacts", str(len(r["artifacts"]))),
        ("training data snapshot", f"{r['train_data_files']} file(s)" if r["train_data_files"] else "-"),
        ("logs", f"modelops jobs logs {r['job_id']}"),
    ])


@app.command("artifacts")
@command
def list_artifacts(
    project: ProjectArg, run: RunArg,
    folder: Annotated[str, typer.Option(help="Only this sub-folder.")] = "",
    train_data: Annotated[
        bool, typer.Option("--train-data", help="List the training-data snapshot instead.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """List the files a run wrote to its artifacts directory (or its data snapshot)."""
    with client() as api:
        files = (api.pipelines.train_data if train_data else api.pipelines.artifacts)(project, run, folder)
    if json_output:
        print_json(files)
        return
    table = new_table("Path", "Size", "Type", "sha256")
    for f in files:
        add_row(table, f["path"], human_size(f["size"]), f["media_type"], f["sha256"][:12])
    console.print(table)


@app.command("download-artifact")
@command
def download_artifact(
    project: ProjectArg, run: RunArg,
    path: Annotated[str, typer.Argument(help="The artifact's path, as listed.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File or folder (default: here).")
    ] = None,
    train_data: Annotated[
        bool, typer.Option("--train-data", help="A file of the training-data snapshot.")
    ] = False,
) -> None:
    """Download one artifact of a run."""
    with client() as api:
        saved = api.pipelines.download_artifact(project, run, path, output or Path.cwd(),
                                                train_data=train_data)
    console.print(f"Saved {saved} ({human_size(saved.stat().st_size)}).", highlight=False, markup=False)


@app.command("results")
@command
def show_results(
    project: ProjectArg, run: RunArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Save _results.json here instead.")
    ] = None,
) -> None:
    """Print a successful run's _results.json (or save it with -o)."""
    with client() as api:
        if output is not None:
            saved = api.pipelines.download_results(project, run, output)
            console.print(f"Saved {saved}.", highlight=False, markup=False)
            return
        print_json(api.pipelines.results(project, run))
