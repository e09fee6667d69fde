"""Projects: the unit of ownership."""

from __future__ import annotations

from modelops.domain.entities import Principal, Project
from modelops.domain.errors import Conflict
from modelops.domain.names import validate_name, validate_text
from modelops.domain.roles import Role, require_role
from modelops.ports import UnitOfWorkFactory


class ProjectService:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self.uow = uow

    def create(self, *, principal: Principal, name: str, description: str = "") -> Project:
        require_role(principal.role, Role.MEMBER)
        validate_name("project", name)
        validate_text("description", description)
        with self.uow() as uow:
            return uow.projects.add(name=name, description=description, actor=principal.name)

    def list(self, *, principal: Principal) -> list[Project]:
        with self.uow() as uow:
            return uow.projects.list()

    def get(self, *, principal: Principal, name: str) -> Project:
        with self.uow() as uow:
            return uow.projects.get(name)

    def delete(self, *, principal: Principal, name: str) -> None:
        require_role(principal.role, Role.MEMBER)
        with self.uow() as uow:
            project = uow.projects.get(name)
            if not uow.projects.is_empty(project.id):
                raise Conflict(
                    f"project '{name}' is not empty: it still has datasets, ML packages or jobs"
                )
            uow.projects.delete(project.id)
