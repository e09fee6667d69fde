"""``modelops deployments``: deploy, list, show, retire, schedule, run now, runs, Jobs tab."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from modelops.cli.common import (
    JsonFlag,
    ProjectArg,
    add_row,
    client,
    command,
    console,
    new_table,
    print_fields,
    print_json,
    when,
)

app = typer.Typer(no_args_is_help=True)

DeploymentArg = Annotated[str, typer.Argument(metavar="DEPLOYMENT", help="The deployment's name or id.")]


def _schedule_text(d: dict[str, Any]) -> str:
    s = d.get("schedule")
    return f"{s['cron']} ({s['timezone']})" if s else "-"


def show_deployment(d: dict[str, Any]) -> None:
    batch = d.get("input")
    print_fields(f"Deployment {d['name']} ({d['status']})", [
        ("id", d["id"]),
        ("model", f"{d['package']} {d['version']}" + ("  [champion]" if d["primary"] and d["status"] == "active" else "")),
        ("mode", d["mode"] + ("" if d["primary"] else ", side by side")),
        ("input", f"{batch['dataset']} v{batch['dataset_version'] or 'newest'}"
                  + (f" / {batch['folder']}" if batch["folder"] else "") if batch else "-"),
        ("predictions to", batch["output_dataset"] if batch else "-"),
        ("schedule", _schedule_text(d)),
        ("next run", d["next_run_at"] or "-"),
        ("deployed", f"{when(d['deployed_at'])} by {d['deployed_by']} (job {d['deploy_job_id']})"),
        ("retired", f"{when(d['retired_at'])} by {d['retired_by']} (job {d['retire_job_id']}): {d['retire_reason']}"
         if d["retired_at"] else "-"),
    ])


@app.command("create")
@command
def create(
    project: ProjectArg,
    package: Annotated[str, typer.Argument(metavar="PACKAGE", help="The ML package (model).")],
    version: Annotated[str, typer.Argument(metavar="VERSION", help="An approved version, e.g. 1.1.")],
    name: Annotated[str | None, typer.Option(help="Deployment name (default PACKAGE-VERSION).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Retire the model's production deployment in the same step.")] = False,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Keep the production deployment running too.")] = False,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")] = "",
    dataset: Annotated[str | None, typer.Option(help="Input dataset of batch runs.")] = None,
    dataset_version: Annotated[int | None, typer.Option(help="Pin a dataset version (default: newest at each run).")] = None,
    folder: Annotated[str, typer.Option(help="Only this folder of the dataset.")] = "",
    output_dataset: Annotated[str | None, typer.Option(help="Where predictions go (default DEPLOYMENT-predictions).")] = None,
    chunk_rows: Annotated[int | None, typer.Option(help="Rows scored at a time.")] = None,
    cron: Annotated[str | None, typer.Option(help="Batch schedule, five fields, e.g. '0 3 * * *'.")] = None,
    timezone: Annotated[str | None, typer.Option(help="Time zone of the cron times (default UTC).")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Deploy an approved version into production (batch mode)."""
    with client() as api:
        done = api.deployments.create(
            project, package, version, name=name, replace=replace, side_by_side=side_by_side,
            reason=reason, dataset=dataset, dataset_version=dataset_version, folder=folder,
            output_dataset=output_dataset, chunk_rows=chunk_rows, cron=cron, timezone=timezone,
        )
    if json_output:
        print_json(done)
        return
    d = done["deployment"]
    console.print(f"deployed {escape(d['package'])} {d['version']} as '{escape(d['name'])}' "
                  f"(job {done['job']['id']})", highlight=False)
    if done.get("replaced"):
        console.print(f"retired '{escape(done['replaced']['name'])}' (version {done['replaced']['version']}, "
                      f"job {done['retirement_job']['id']})", highlight=False)
    show_deployment(d)


@app.command("list")
@command
def list_deployments(project: ProjectArg,
                     package: Annotated[str | None, typer.Option(help="Only this model.")] = None,
                     status: Annotated[str | None, typer.Option(help="active or retired.")] = None,
                     json_output: JsonFlag = False) -> None:
    """List deployments, newest first."""
    with client() as api:
        found = api.deployments.list(project, package=package, status=status)
    if json_output:
        print_json(found)
        return
    table = new_table("ID", "Name", "Model", "Status", "Primary", "Schedule", "Next run", "Deployed")
    for d in found:
        add_row(table, d["id"], d["name"], f"{d['package']} {d['version']}", d["status"],
                "yes" if d["primary"] else "side by side", _schedule_text(d), when(d["next_run_at"]) or "-",
                when(d["deployed_at"]))
    console.print(table)


@app.command("show")
@command
def show(project: ProjectArg, deployment: DeploymentArg, json_output: JsonFlag = False) -> None:
    """A deployment's details."""
    with client() as api:
        found = api.deployments.get(project, deployment)
    if json_output:
        print_json(found)
        return
    show_deployment(found)


@app.command("retire")
@command
def retire(project: ProjectArg, deployment: DeploymentArg,
           reason: Annotated[str, typer.Option("--reason", "-r", help="Why (required).")],
           json_output: JsonFlag = False) -> None:
    """Take a deployment out of production; its version becomes retired and its schedule ends."""
    with client() as api:
        done = api.deployments.retire(project, deployment, reason=reason)
    if json_output:
        print_json(done)
        return
    console.print(f"retired '{escape(done['deployment']['name'])}' (job {done['job']['id']})", highlight=False)


@app.command("jobs")
@command
def jobs(project: ProjectArg, deployment: DeploymentArg, json_output: JsonFlag = False) -> None:
    """The deployment's Jobs tab: deployment, batch prediction and retirement jobs."""
    with client() as api:
        found = api.deployments.jobs(project, deployment)
    if json_output:
        print_json(found)
        return
    table = new_table("ID", "Kind", "Status", "Created", "By", "Error")
    for job in found:
        add_row(table, job["id"], job["kind"], job["status"], when(job["created_at"]), job["actor"], job["error"] or "")
    console.print(table)


@app.command("schedule")
@command
def schedule(project: ProjectArg, deployment: DeploymentArg,
             cron: Annotated[str | None, typer.Option(help="Set this cron schedule (five fields).")] = None,
             timezone: Annotated[str | None, typer.Option(help="Its time zone (default UTC).")] = None,
             clear: Annotated[bool, typer.Option("--clear", help="Remove the schedule.")] = False,
             count: Annotated[int, typer.Option(help="How many next firing times to show.")] = 5,
             json_output: JsonFlag = False) -> None:
    """Show the batch schedule and its next firing times; or set or clear it."""
    with client() as api:
        if clear:
            api.deployments.clear_schedule(project, deployment)
        elif cron is not None:
            api.deployments.set_schedule(project, deployment, cron, timezone=timezone)
        view = api.deployments.schedule(project, deployment, count=count)
    if json_output:
        print_json(view)
        return
    if view["schedule"] is None:
        console.print(f"'{escape(view['deployment'])}' has no schedule (start runs with: modelops deployments run)",
                      highlight=False)
        return
    console.print(f"{escape(view['deployment'])}: {view['schedule']['cron']} ({view['schedule']['timezone']})",
                  highlight=False)
    for utc, local in zip(view["upcoming"], view["upcoming_local"], strict=True):
        console.print(f"  {local}   ({utc})", highlight=False)


@app.command("run")
@command
def run(project: ProjectArg, deployment: DeploymentArg,
        dataset: Annotated[str | None, typer.Option(help="Score this dataset instead.")] = None,
        dataset_version: Annotated[int | None, typer.Option(help="This version of it.")] = None,
        folder: Annotated[str | None, typer.Option(help="Only this folder.")] = None,
        wait: Annotated[bool, typer.Option("--wait", help="Wait for the job and show its result.")] = False,
        json_output: JsonFlag = False) -> None:
    """Run now: start a batch prediction of the deployed version."""
    with client() as api:
        started = api.deployments.run_now(project, deployment, dataset=dataset,
                                          dataset_version=dataset_version, folder=folder)
        job_id = started["job"]["id"]
        if wait:
            api.jobs.wait(job_id, timeout=24 * 3600)
            started = api.deployments.run(project, deployment, job_id)
    if json_output:
        print_json(started)
        return
    console.print(f"batch prediction job {job_id}: {started['job']['status']} "
                  f"(logs: modelops jobs logs {job_id} --follow)", highlight=False)
    if wait:
        _print_run(started)


def _print_run(found: dict[str, Any]) -> None:
    run, job = found["run"], found["job"]
    drift = run.get("drift") or {}
    print_fields(f"Batch run of job {job['id']} ({job['status']})", [
        ("trigger", run["trigger"] + (f" for {run['scheduled_at']}" if run["scheduled_at"] else "")),
        ("rows", run["rows"] if run["rows"] is not None else "-"),
        ("predictions", f"dataset {job['parameters'].get('output_dataset')} version {run['output_version']}"
         if run["output_version"] else "-"),
        ("max PSI", f"{drift['max_psi']:.4f}" if drift.get("max_psi") is not None else "-"),
        ("drifted features", ", ".join(drift.get("drifted_features") or []) or "-"),
        ("error", job["error"] or "-"),
    ])


@app.command("runs")
@command
def runs(project: ProjectArg, deployment: DeploymentArg,
         job: Annotated[int | None, typer.Option("--job", help="Show this run in full (drift figures).")] = None,
         json_output: JsonFlag = False) -> None:
    """The deployment's batch runs (with rows and drift), or one of them."""
    with client() as api:
        if job is not None:
            found = api.deployments.run(project, deployment, job)
            if json_output:
                print_json(found)
            else:
                _print_run(found)
                if found["run"].get("drift"):
                    console.print(json.dumps(found["run"]["drift"]["features"], indent=1)[:4000], highlight=False)
            return
        items = api.deployments.runs(project, deployment)
    if json_output:
        print_json(items)
        return
    table = new_table("Job", "Trigger", "Scheduled", "Created", "Rows", "Output version", "Max PSI")
    for r in items:
        psi = (r.get("drift") or {}).get("max_psi")
        add_row(table, r["job_id"], r["trigger"], r["scheduled_at"] or "-", when(r["created_at"]),
                r["rows"] if r["rows"] is not None else "-", r["output_version"] or "-",
                f"{psi:.4f}" if psi is not None else "-")
    console.print(table)
