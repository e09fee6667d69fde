"""The audit log: every lifecycle action with its actor, target, before, after and reason,
filtered by model, action and time, newest first, and exported as CSV or JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from modelops.domain.audit import AuditAction
from modelops.domain.errors import InvalidInput
from modelops.web.rendering import render
from modelops.web.routing import ContainerDep, UserDep, WebRoute
from modelops.web.views.deployments import lifecycle

router = APIRouter(route_class=WebRoute)

SCAN_LIMIT = 10_000
SHOWN = 300


def parse_day(value: str, *, end: bool = False) -> datetime | None:
    """A date (YYYY-MM-DD) from the filter form, as the start (or end) of that UTC day."""
    if not value.strip():
        return None
    try:
        day = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"invalid date {value!r}: use YYYY-MM-DD") from None
    if end and len(value.strip()) == 10:
        day = day.replace(hour=23, minute=59, second=59, microsecond=999999)
    return day if day.tzinfo else day.replace(tzinfo=UTC)


def _filters(package: str, action: str, since: str, until: str) -> dict[str, Any]:
    return {
        "package": package or None, "actions": [action] if action else [],
        "since": parse_day(since), "until": parse_day(until, end=True),
    }


@router.get("/projects/{project}/audit")
def audit_page(
    request: Request, project: str, container: ContainerDep, user: UserDep, package: str = "",
    action: str = "", since: str = "", until: str = "",
) -> Response:
    found = container.projects.get(principal=user, name=project)
    services = getattr(container, "lifecycle", None)
    events = []
    if services is not None:
        events = services.audit.list(
            principal=user, project=project, limit=SCAN_LIMIT, **_filters(package, action, since, until)
        )
    newest = list(reversed(events))
    query = {k: v for k, v in {"package": package, "action": action, "since": since, "until": until}.items() if v}
    return render(
        request, "audit.html", project=found, events=newest[:SHOWN], total=len(events),
        capped=len(events) >= SCAN_LIMIT, available=services is not None,
        packages=container.packages.list(principal=user, project=project),
        actions=[a.value for a in AuditAction], package=package, action=action, since=since,
        until=until, export_query=urlencode(query), active_nav="audit",
    )


@router.get("/projects/{project}/audit/export")
def export_audit(
    project: str, container: ContainerDep, user: UserDep, format: str = "csv", package: str = "",
    action: str = "", since: str = "", until: str = "",
) -> StreamingResponse:
    chunks = lifecycle(container).audit.export(
        principal=user, project=project, fmt=format, **_filters(package, action, since, until)
    )
    media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(chunks, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="audit-{project}-{stamp}.{format}"',
    })
