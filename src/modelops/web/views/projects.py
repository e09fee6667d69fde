"""Projects: the list, creating one, and a project's landing page (its jobs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from modelops.web.rendering import render, segment
from modelops.web.routing import ActorDep, ContainerDep, UserDep, WebRoute, flash, redirect

router = APIRouter(route_class=WebRoute)


@router.get("/")
def projects_page(request: Request, container: ContainerDep, user: UserDep) -> Response:
    projects = container.projects.list(principal=user)
    return render(request, "projects.html", projects=projects, active_nav="projects")


@router.post("/projects")
def create_project(
    request: Request, container: ContainerDep, user: ActorDep,
    name: Annotated[str, Form()], description: Annotated[str, Form()] = "",
) -> Response:
    project = container.projects.create(principal=user, name=name.strip(), description=description)
    flash(request, "ok", f"Project '{project.name}' created.")
    return redirect(f"/ui/projects/{segment(project.name)}/jobs")


@router.get("/projects/{project}")
def project_home(project: str, container: ContainerDep, user: UserDep) -> Response:
    container.projects.get(principal=user, name=project)  # 404 for an unknown project
    return redirect(f"/ui/projects/{segment(project)}/jobs")
