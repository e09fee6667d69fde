from __future__ import annotations

from fastapi import APIRouter, Response

from modelops.api.deps import ContainerDep, PrincipalDep
from modelops.api.schemas import ListOf, ProjectCreate, ProjectRead

router = APIRouter(prefix="/projects", tags=["projects"])


@router.get("", response_model=ListOf[ProjectRead])
def list_projects(container: ContainerDep, principal: PrincipalDep) -> ListOf[ProjectRead]:
    projects = container.projects.list(principal=principal)
    return ListOf(data=[ProjectRead.model_validate(p) for p in projects], count=len(projects))


@router.post("", response_model=ProjectRead, status_code=201)
def create_project(body: ProjectCreate, container: ContainerDep, principal: PrincipalDep) -> ProjectRead:
    project = container.projects.create(principal=principal, name=body.name, description=body.description)
    return ProjectRead.model_validate(project)


@router.get("/{project}", response_model=ProjectRead)
def show_project(project: str, container: ContainerDep, principal: PrincipalDep) -> ProjectRead:
    return ProjectRead.model_validate(container.projects.get(principal=principal, name=project))


@router.delete("/{project}", status_code=204)
def delete_project(project: str, container: ContainerDep, principal: PrincipalDep) -> Response:
    container.projects.delete(principal=principal, name=project)
    return Response(status_code=204)
