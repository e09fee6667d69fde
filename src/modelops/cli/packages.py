"""``modelops packages``: ML packages (train.py and/or main.py) and their versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelops.cli.common import (
    JsonFlag,
    ProjectArg,
    add_row,
    client,
    command,
    console,
    human_size,
    new_table,
    print_fields,
    print_json,
    transfer_progress,
    when,
)

app = typer.Typer(no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The ML package's name.")]
VersionArg = Annotated[str, typer.Argument(metavar="VERSION", help="MAJOR.MINOR, e.g. 1.0")]


def _abilities(can_train: bool, can_serve: bool) -> str:
    return ", ".join(a for a, ok in (("train", can_train), ("serve", can_serve)) if ok) or "-"


@app.command("list")
@command
def list_packages(project: ProjectArg, json_output: JsonFlag = False) -> None:
    """List a project's ML packages."""
    with client() as api:
        packages = api.packages.list(project)
    if json_output:
        print_json(packages)
        return
    table = new_table("Name", "Latest major", "Description", "Created", "By")
    for package in packages:
        add_row(table, package["name"], package["latest_major"] or "-", package["description"],
                when(package["created_at"]), package["created_by"])
    console.print(table)


@app.command("upload")
@command
def upload_package(
    project: ProjectArg, name: NameArg,
    path: Annotated[Path, typer.Argument(help="The package zip, or its folder.")],
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Upload a package; the server checks its contract and makes version N.0."""
    with client() as api, transfer_progress(f"upload {name}", enabled=not json_output) as progress:
        version = api.packages.upload(project, name, path, description=description,
                                      progress=progress)
    if json_output:
        print_json(version)
        return
    console.print(
        f"Uploaded ML package '{name}' version {version['version']} "
        f"({_abilities(version['can_train'], version['can_serve'])}; "
        f"{human_size(version['zip_size'])}).", highlight=False, markup=False,
    )


@app.command("versions")
@command
def list_versions(project: ProjectArg, name: NameArg, json_output: JsonFlag = False) -> None:
    """List a package's versions and their lifecycle status."""
    with client() as api:
        versions = api.packages.list_versions(project, name)
    if json_output:
        print_json(versions)
        return
    table = new_table("Version", "Status", "Can", "Size", "Created", "By")
    for v in versions:
        add_row(table, v["version"], v["status"], _abilities(v["can_train"], v["can_serve"]),
                human_size(v["zip_size"]), when(v["created_at"]), v["created_by"])
    console.print(table)


@app.command("show")
@command
def show_version(
    project: ProjectArg, name: NameArg, version: VersionArg, json_output: JsonFlag = False
) -> None:
    """Show one version: status, contents, lineage and metrics."""
    with client() as api:
        v = api.packages.get_version(project, name, version)
    if json_output:
        print_json(v)
        return
    print_fields(f"ML package {name} version {v['version']}", [
        ("status", v["status"]),
        ("can", _abilities(v["can_train"], v["can_serve"])),
        ("zip", f"{human_size(v['zip_size'])}, sha256 {v['zip_sha256']}"),
        ("code root", v["code_root"] or "(top of the zip)"),
        ("requirements", v["requirements_sha256"] or "none"),
        ("lineage", json.dumps(v["lineage"], sort_keys=True)),
        ("metrics", json.dumps(v["metrics"], sort_keys=True) if v["metrics"] else "-"),
        ("created", f"{when(v['created_at'])} by {v['created_by']}"),
    ])


@app.command("download")
@command
def download_version(
    project: ProjectArg, name: NameArg, version: VersionArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Zip file to write (default: the server's name, here)."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Download a version's package zip."""
    with client() as api, transfer_progress(f"download {name}", enabled=not json_output) as progress:
        saved = api.packages.download_version(project, name, version, output or Path.cwd(),
                                              progress=progress)
    size = saved.stat().st_size
    if json_output:
        print_json({"path": str(saved.resolve()), "size": size})
        return
    console.print(f"Saved {saved} ({human_size(size)}).", highlight=False, markup=False)
