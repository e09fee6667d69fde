"""Typed dependencies: the container and the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from modelops.bootstrap import Container
from modelops.domain.entities import Principal


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return None


def get_principal(request: Request, container: ContainerDep) -> Principal:
    return container.auth.authenticate(bearer_token(request))


PrincipalDep = Annotated[Principal, Depends(get_principal)]
