"""``modelops projects``: create, list, show and delete projects."""

from __future__ import annotations

from typing import Annotated

import typer

from modelops.cli.common import (
    JsonFlag,
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

ProjectArg = Annotated[str, typer.Argument(metavar="NAME", help="The project's name.")]


@app.command("list")
@command
def list_projects(json_output: JsonFlag = False) -> None:
    """List every project."""
    with client() as api:
        projects = api.projects.list()
    if json_output:
        print_json(projects)
        return
    table = new_table("Name", "Description", "Created", "By")
    for project in projects:
        add_row(table, project["name"], project["description"], when(project["created_at"]),
                project["created_by"])
    console.print(table)


@app.command("create")
@command
def create_project(
    name: ProjectArg,
    description: Annotated[str, typer.Option(help="What the project is for.")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Create a project."""
    with client() as api:
        project = api.projects.create(name, description)
    if json_output:
        print_json(project)
        return
    console.print(f"Created project '{project['name']}'.", highlight=False, markup=False)


@app.command("show")
@command
def show_project(name: ProjectArg, json_output: JsonFlag = False) -> None:
    """Show a project with the datasets and ML packages it holds."""
    with client() as api:
        project = api.projects.get(name)
        if json_output:
            print_json(project)
            return
        datasets = api.datasets.list(name)
        packages = api.packages.list(name)
    print_fields(f"Project {project['name']}", [
        ("description", project["description"] or "-"),
        ("created", f"{when(project['created_at'])} by {project['created_by']}"),
        ("datasets", ", ".join(d["name"] for d in datasets) or "-"),
        ("ML packages", ", ".join(p["name"] for p in packages) or "-"),
    ])


@app.command("delete")
@command
def delete_project(name: ProjectArg, json_output: JsonFlag = False) -> None:
    """Delete an empty project."""
    with client() as api:
        api.projects.delete(name)
    if json_output:
        print_json({"deleted": name})
        return
    console.print(f"Deleted project '{name}'.", highlight=False, markup=False)
