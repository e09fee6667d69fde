"""``modelops datasets``: datasets and their immutable, content-addressed versions."""

from __future__ import annotations

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

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The dataset's name.")]
VersionArg = Annotated[int, typer.Argument(metavar="VERSION", help="A version number: 1, 2, …")]


@app.command("list")
@command
def list_datasets(project: ProjectArg, json_output: JsonFlag = False) -> None:
    """List a project's datasets."""
    with client() as api:
        datasets = api.datasets.list(project)
    if json_output:
        print_json(datasets)
        return
    table = new_table("Name", "Latest version", "Description", "Created", "By")
    for dataset in datasets:
        add_row(table, dataset["name"], dataset["latest_version"] or "-", dataset["description"],
                when(dataset["created_at"]), dataset["created_by"])
    console.print(table)


@app.command("create")
@command
def create_dataset(
    project: ProjectArg, name: NameArg,
    description: Annotated[str, typer.Option(help="What the data is.")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Create an empty dataset (an upload also creates it)."""
    with client() as api:
        dataset = api.datasets.create(project, name, description)
    if json_output:
        print_json(dataset)
        return
    console.print(f"Created dataset '{dataset['name']}' in project '{project}'.",
                  highlight=False, markup=False)


@app.command("upload")
@command
def upload_version(
    project: ProjectArg, name: NameArg,
    path: Annotated[Path, typer.Argument(help="A folder, or a zip or tar(.gz) file of one.")],
    note: Annotated[str, typer.Option(help="What changed in this version.")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Upload a folder or archive as the dataset's next version."""
    with client() as api, transfer_progress(f"upload {name}", enabled=not json_output) as progress:
        version = api.datasets.upload_version(project, name, path, note=note, progress=progress)
    if json_output:
        print_json(version)
        return
    console.print(
        f"Uploaded dataset '{name}' version {version['version']}: {version['file_count']} files, "
        f"{human_size(version['total_size'])}.", highlight=False, markup=False,
    )


@app.command("versions")
@command
def list_versions(project: ProjectArg, name: NameArg, json_output: JsonFlag = False) -> None:
    """List a dataset's versions."""
    with client() as api:
        versions = api.datasets.list_versions(project, name)
    if json_output:
        print_json(versions)
        return
    table = new_table("Version", "Files", "Size", "Content hash", "Note", "Created", "By")
    for v in versions:
        add_row(table, v["version"], v["file_count"], human_size(v["total_size"]),
                v["content_hash"][:12], v["note"], when(v["created_at"]), v["created_by"])
    console.print(table)


@app.command("show")
@command
def show_version(
    project: ProjectArg, name: NameArg, version: VersionArg, json_output: JsonFlag = False
) -> None:
    """Show one version and its manifest: every file with its size and sha256."""
    with client() as api:
        detail = api.datasets.get_version(project, name, version)
    if json_output:
        print_json(detail)
        return
    print_fields(f"Dataset {name} version {detail['version']}", [
        ("files", detail["file_count"]),
        ("size", human_size(detail["total_size"])),
        ("content hash", detail["content_hash"]),
        ("note", detail["note"] or "-"),
        ("created", f"{when(detail['created_at'])} by {detail['created_by']}"),
    ])
    table = new_table("Path", "Size", "SHA-256")
    for entry in detail["files"]:
        add_row(table, entry["path"], human_size(entry["size"]), entry["sha256"])
    console.print(table)


@app.command("download")
@command
def download_version(
    project: ProjectArg, name: NameArg, version: VersionArg,
    folder: Annotated[str, typer.Option(help="Only this sub-folder, e.g. 'train'.")] = "",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Zip file to write (default: the server's name, here)."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Download a version, or one sub-folder of it, as a zip."""
    with client() as api, transfer_progress(f"download {name}", enabled=not json_output) as progress:
        saved = api.datasets.download_version(
            project, name, version, output or Path.cwd(), folder=folder, progress=progress
        )
    size = saved.stat().st_size
    if json_output:
        print_json({"path": str(saved.resolve()), "size": size})
        return
    console.print(f"Saved {saved} ({human_size(size)}).", highlight=False, markup=False)


@app.command("diff")
@command
def diff_versions(
    project: ProjectArg, name: NameArg,
    old: Annotated[int, typer.Argument(help="The older version.")],
    new: Annotated[int, typer.Argument(help="The newer version.")],
    json_output: JsonFlag = False,
) -> None:
    """Files added, removed and changed between two versions."""
    with client() as api:
        diff = api.datasets.diff(project, name, old, new)
    if json_output:
        print_json(diff)
        return
    table = new_table("Change", "Path", "Old size", "New size", title=f"{name}: v{old} → v{new}")
    for entry in diff["added"]:
        add_row(table, "added", entry["path"], "-", human_size(entry["size"]))
    for entry in diff["removed"]:
        add_row(table, "removed", entry["path"], human_size(entry["size"]), "-")
    for changed in diff["changed"]:
        add_row(table, "changed", changed["path"], human_size(changed["old_size"]),
                human_size(changed["new_size"]))
    console.print(table)
    console.print(
        f"{len(diff['added'])} added, {len(diff['removed'])} removed, "
        f"{len(diff['changed'])} changed, {diff['unchanged']} unchanged", highlight=False,
    )
