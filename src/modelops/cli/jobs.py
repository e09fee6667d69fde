"""``modelops jobs``: submit, list, show, events, logs (live with --follow) and stop."""

from __future__ import annotations

import json
import sys
from datetime import datetime
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
    fail,
    new_table,
    print_fields,
    print_json,
    when,
)

app = typer.Typer(no_args_is_help=True)

JobArg = Annotated[int, typer.Argument(metavar="JOB_ID", help="The job's id.")]
LevelOpt = Annotated[
    str | None,
    typer.Option("--level", help="Only lines at or above this level: debug, info, warning, error."),
]
_STATUS_STYLE = {
    "completed": "green", "failed": "red", "timed_out": "red", "cancelled": "yellow",
    "cancelling": "yellow", "running": "cyan", "queued": "blue",
}
_LEVEL_STYLE = {"error": "red", "warning": "yellow", "debug": "dim"}


def _status(status: str) -> str:
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def _print_line(line: dict[str, Any]) -> None:
    style = _LEVEL_STYLE.get(line["level"])
    text = escape(line["text"])
    stamp = _clock(line.get("at"))
    prefix = f"[dim]{stamp} {line['stream']:<6}[/] "
    console.print(prefix + (f"[{style}]{text}[/]" if style else text), soft_wrap=True, highlight=False)


def _clock(at: str | None) -> str:
    try:
        return datetime.fromisoformat(at).strftime("%H:%M:%S") if at else ""
    except ValueError:
        return at or ""


def _params(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise fail(f"--params is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise fail("--params must be a JSON object")
    return value


@app.command("submit")
@command
def submit_job(
    project: ProjectArg,
    kind: Annotated[str, typer.Option("--kind", help="Job kind, e.g. script.")],
    params: Annotated[
        str | None, typer.Option("--params", help="The kind's parameters as a JSON object.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds before the job is stopped as timed_out.")
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", help="Then print its logs until it ends.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Submit a job. Example: --kind script --params '{"package": "p", "version": "1.0",
    "command": ["python", "job.py"]}'."""
    with client() as api:
        job = api.jobs.submit(project, kind, _params(params), timeout_seconds=timeout)
        if json_output and not follow:
            print_json(job)
            return
        if not json_output:
            console.print(f"Submitted job {job['id']} ({job['kind']}): {_status(job['status'])}",
                          highlight=False)
        if follow:
            _follow(api, job["id"], None, as_json=json_output)


@app.command("list")
@command
def list_jobs(
    project: ProjectArg,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Only this kind (repeatable).")] = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Only this status (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 200,
    json_output: JsonFlag = False,
) -> None:
    """List a project's jobs, newest first."""
    with client() as api:
        jobs = api.jobs.list(project, kinds=kind, statuses=status, limit=limit)
    if json_output:
        print_json(jobs)
        return
    table = new_table("ID", "Kind", "Status", "Created", "By", "Error")
    for job in jobs:
        add_row(table, job["id"], job["kind"], job["status"], when(job["created_at"]), job["actor"],
                job["error"] or "")
    console.print(table)


@app.command("show")
@command
def show_job(job_id: JobArg, json_output: JsonFlag = False) -> None:
    """Show a job: status, parameters, times, exit and its last error."""
    with client() as api:
        job = api.jobs.get(job_id)
    if json_output:
        print_json(job)
        return
    exit_text = (
        f"signal {job['signal']}" if job["signal"] is not None
        else "-" if job["exit_code"] is None else str(job["exit_code"])
    )
    print_fields(f"Job {job['id']}", [
        ("kind", job["kind"]),
        ("status", job["status"]),
        ("parameters", json.dumps(job["parameters"])),
        ("target", f"{job['target_type']} {job['target_id']}" if job["target_type"] else "-"),
        ("submitted", f"{when(job['created_at'])} by {job['actor']}"),
        ("started", when(job["started_at"]) or "-"),
        ("ended", when(job["ended_at"]) or "-"),
        ("timeout", f"{job['timeout_seconds']:g} s" if job["timeout_seconds"] else "-"),
        ("exit", exit_text),
        ("error", job["error"] or "-"),
        ("result", json.dumps(job["result"]) if job["result"] else "-"),
    ])


@app.command("events")
@command
def list_events(job_id: JobArg, json_output: JsonFlag = False) -> None:
    """A job's lifecycle: one event per status change, with who and why."""
    with client() as api:
        events = api.jobs.events(job_id)
    if json_output:
        print_json(events)
        return
    table = new_table("Event", "At", "From", "To", "By", "Detail")
    for event in events:
        add_row(table, event["id"], event["at"], event["from_status"] or "-", event["to_status"],
                event["actor"], json.dumps(event["detail"]) if event["detail"] else "")
    console.print(table)


@app.command("event")
@command
def show_event(
    job_id: JobArg,
    event_id: Annotated[int, typer.Argument(metavar="EVENT_ID", help="The event's id.")],
    json_output: JsonFlag = False,
) -> None:
    """Show one event of a job with all its details."""
    with client() as api:
        event = api.jobs.event(job_id, event_id)
    if json_output:
        print_json(event)
        return
    fields: list[tuple[str, object]] = [
        ("at", event["at"]), ("from", event["from_status"] or "-"), ("to", event["to_status"]),
        ("by", event["actor"]),
    ]
    fields += [(key, json.dumps(value) if not isinstance(value, str) else value)
               for key, value in event["detail"].items()]
    print_fields(f"Event {event['id']} of job {event['job_id']}", fields)


@app.command("logs")
@command
def show_logs(
    job_id: JobArg,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
    level: LevelOpt = None,
    json_output: JsonFlag = False,
) -> None:
    """Print a job's log lines (stdout, stderr and the engine's own), optionally live."""
    with client() as api:
        if follow:
            _follow(api, job_id, level, as_json=json_output)
            return
        lines: list[Any] = []
        after = 0
        while True:
            page = api.jobs.logs(job_id, after=after, level=level, limit=5000)
            lines.extend(page)
            if len(page) < 5000:
                break
            after = page[-1]["seq"]
    if json_output:
        print_json(lines)
        return
    for line in lines:
        _print_line(line)


def _follow(api: Any, job_id: int, level: str | None, *, as_json: bool = False) -> None:
    for record in api.jobs.follow_logs(job_id, level=level):
        if as_json:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
        elif record.get("type") == "end":
            error = f": {record['error']}" if record.get("error") else ""
            console.print(f"job {job_id} {_status(record['status'])}{escape(error)}", highlight=False)
        else:
            _print_line(record)


@app.command("stop")
@command
def stop_job(job_id: JobArg, json_output: JsonFlag = False) -> None:
    """Stop a queued or running job; it ends 'cancelled' once its processes are gone."""
    with client() as api:
        job = api.jobs.stop(job_id)
    if json_output:
        print_json(job)
        return
    console.print(f"Job {job['id']}: {_status(job['status'])}", highlight=False)


@app.command("stop-all")
@command
def stop_all(project: ProjectArg, json_output: JsonFlag = False) -> None:
    """Stop every queued and running job of a project."""
    with client() as api:
        jobs = api.jobs.stop_all(project)
    if json_output:
        print_json(jobs)
        return
    if not jobs:
        console.print(f"No queued or running job in project '{escape(project)}'.", highlight=False)
    for job in jobs:
        console.print(f"Job {job['id']}: {_status(job['status'])}", highlight=False)
