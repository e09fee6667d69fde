"""``modelops lifecycle``: approve or reject a model version (with a reason), see its champion."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from modelops.cli.common import JsonFlag, ProjectArg, client, command, console, print_json

app = typer.Typer(no_args_is_help=True)

PackageArg = Annotated[str, typer.Argument(metavar="PACKAGE", help="The ML package (model).")]
VersionArg = Annotated[str, typer.Argument(metavar="VERSION", help="The version, e.g. 1.1.")]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (required; kept for reference).")]


def _decided(result: dict, json_output: bool) -> None:  # type: ignore[type-arg]
    if json_output:
        print_json(result)
        return
    version, job = result["version"], result["job"]
    console.print(
        f"{escape(version['version'])} is now [bold]{version['status']}[/] "
        f"(job {job['id']}, {job['kind']}: {job['status']}). "
        f"Details: modelops jobs show {job['id']}; audit: modelops audit list PROJECT",
        highlight=False,
    )


@app.command("approve")
@command
def approve(project: ProjectArg, package: PackageArg, version: VersionArg, reason: ReasonOpt,
            json_output: JsonFlag = False) -> None:
    """Approve an evaluated version (approver or admin role)."""
    with client() as api:
        _decided(api.lifecycle.approve(project, package, version, reason=reason), json_output)


@app.command("reject")
@command
def reject(project: ProjectArg, package: PackageArg, version: VersionArg, reason: ReasonOpt,
           json_output: JsonFlag = False) -> None:
    """Reject an evaluated version (approver or admin role); a rejected version is never deployed."""
    with client() as api:
        _decided(api.lifecycle.reject(project, package, version, reason=reason), json_output)


@app.command("champion")
@command
def champion(project: ProjectArg, package: PackageArg, json_output: JsonFlag = False) -> None:
    """The model's champion: the version of its active production deployment."""
    with client() as api:
        found = api.lifecycle.champion(project, package)
    if json_output:
        print_json(found)
        return
    if found["champion"] is None:
        console.print(f"'{escape(package)}' has no production deployment.", highlight=False)
        return
    console.print(f"champion of '{escape(package)}': version {found['champion']} "
                  f"(deployment {escape(found['deployment']['name'])})", highlight=False)
