"""``modelops audit``: the append-only audit trail; export it; what was deployed at a time."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

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
    print_json,
)

app = typer.Typer(no_args_is_help=True)

PackageOpt = Annotated[str | None, typer.Option("--package", help="Only this model's events.")]
ActionOpt = Annotated[list[str] | None, typer.Option("--action", help="Only this action (repeatable).")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="From this time (ISO 8601; naive = UTC).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Up to this time (ISO 8601).")]


def _time(text: str | None, option: str) -> str | None:
    if text is None:
        return None
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} {text!r} is not an ISO 8601 time, e.g. 2030-01-31T10:00:00+01:00") from None
    return text


@app.command("list")
@command
def list_events(project: ProjectArg, package: PackageOpt = None, action: ActionOpt = None,
                since: SinceOpt = None, until: UntilOpt = None,
                limit: Annotated[int, typer.Option(help="At most this many, oldest first.")] = 1000,
                json_output: JsonFlag = False) -> None:
    """List audit events (who did what to which target, before/after, why, when)."""
    with client() as api:
        events = api.audit.list(project, package=package, actions=action, since=_time(since, "--since"),
                                until=_time(until, "--until"), limit=limit)
    if json_output:
        print_json(events)
        return
    table = new_table("ID", "At", "Actor", "Action", "Target", "Before", "After", "Reason", "Job")
    for e in events:
        add_row(table, e["id"], e["at"], e["actor"], e["action"], e["target"],
                json.dumps(e["before"]) if e["before"] else "", json.dumps(e["after"]) if e["after"] else "",
                e["reason"], e["job_id"] or "")
    console.print(table)


@app.command("export")
@command
def export(project: ProjectArg,
           output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
           fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
           package: PackageOpt = None, action: ActionOpt = None, since: SinceOpt = None,
           until: UntilOpt = None) -> None:
    """Export the audit trail as CSV or JSON."""
    options = {"format": fmt, "package": package, "actions": action,
               "since": _time(since, "--since"), "until": _time(until, "--until")}
    with client() as api:
        if output is None:
            for chunk in api.audit.export_chunks(project, **options):
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            return
        written = api.audit.export(project, output, **options)
    console.print(f"audit trail written to {escape(str(written))}", highlight=False)


@app.command("deployed-at")
@command
def deployed_at(project: ProjectArg,
                package: Annotated[str, typer.Argument(metavar="PACKAGE", help="The model.")],
                at: Annotated[str | None, typer.Option("--at", help="The time (ISO 8601; default now).")] = None,
                json_output: JsonFlag = False) -> None:
    """Which version of a model was deployed at a given time, from the audit trail."""
    with client() as api:
        found = api.audit.deployed_at(project, package, _time(at, "--at"))
    if json_output:
        print_json(found)
        return
    if not found["deployments"]:
        console.print(f"no version of '{escape(package)}' was deployed at {found['at']}", highlight=False)
        return
    console.print(f"at {found['at']}: champion {found['champion'] or '-'}", highlight=False)
    table = new_table("Deployment", "Version", "Primary", "Since")
    for d in found["deployments"]:
        add_row(table, d["deployment"], d["version"], "yes" if d["primary"] else "side by side", d["since"])
    console.print(table)
