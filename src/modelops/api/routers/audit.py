"""The audit trail: list, export (CSV or JSON), and which version was deployed at a time.

Read-only on purpose: no route adds, changes or deletes an event; actions append them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from modelops.api.deps import ContainerDep, PrincipalDep
from modelops.api.schemas import ListOf
from modelops.api.schemas_lifecycle import (
    AuditEventRead,
    DeployedAtRead,
    deployed_at_read,
    event_read,
)

router = APIRouter(prefix="/projects/{project}/audit", tags=["audit"])

ActionsQuery = Annotated[list[str], Query(alias="action", description="only these actions (repeatable)")]


@router.get("", response_model=ListOf[AuditEventRead])
def list_events(
    project: str, container: ContainerDep, principal: PrincipalDep,
    package: str | None = None, actions: ActionsQuery = [],  # noqa: B006
    since: datetime | None = None, until: datetime | None = None, after: int = 0, limit: int = 1000,
) -> ListOf[AuditEventRead]:
    """Oldest first; page on with ``after`` = the last id received."""
    events = container.lifecycle.audit.list(
        principal=principal, project=project, package=package, actions=actions, since=since,
        until=until, after_id=after, limit=limit,
    )
    return ListOf(data=[event_read(e) for e in events], count=len(events))


@router.get(
    "/export", response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
def export_events(
    project: str, container: ContainerDep, principal: PrincipalDep, format: str = "csv",
    package: str | None = None, actions: ActionsQuery = [],  # noqa: B006
    since: datetime | None = None, until: datetime | None = None,
) -> StreamingResponse:
    """The whole trail (filtered), streamed as a CSV or JSON file."""
    chunks = container.lifecycle.audit.export(
        principal=principal, project=project, fmt=format, package=package, actions=actions,
        since=since, until=until,
    )
    media = "text/csv" if format == "csv" else "application/json"
    filename = f"audit-{project}.{format}"
    return StreamingResponse(
        chunks, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get("/deployed-at", response_model=DeployedAtRead)
def deployed_at(
    project: str, package: str, container: ContainerDep, principal: PrincipalDep,
    at: datetime | None = None,
) -> DeployedAtRead:
    """Which version(s) of ``package`` were deployed at ``at`` (default now; naive = UTC)."""
    when = at or datetime.now(UTC)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    found = container.lifecycle.audit.deployed_at(principal=principal, project=project, package=package, at=when)
    return deployed_at_read(package, when, found)
