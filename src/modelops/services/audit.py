"""The audit trail: read it, export it (CSV or JSON), and ask which version of a model was
deployed at a given time. Writing happens only through ``record`` inside the transaction of
the action it records, so an action and its audit event commit together or not at all.
"""

from __future__ import annotations

import builtins
import csv
import io
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from modelops.domain.audit import (
    CSV_COLUMNS,
    AuditAction,
    AuditEntry,
    AuditEvent,
    AuditTarget,
    DeployedVersion,
    deployed_at,
)
from modelops.domain.entities import ModelVersion, Principal
from modelops.domain.errors import InvalidInput
from modelops.ports import UnitOfWork, UnitOfWorkFactory

PAGE = 1000
MAX_LIMIT = 10_000
EXPORT_FORMATS = ("csv", "json")


def record(uow: UnitOfWork, entry: AuditEntry) -> AuditEvent:
    return uow.audit.append(entry)


def record_registration(
    uow: UnitOfWork, version: ModelVersion, *, project_id: int, package: str
) -> ModelVersion:
    """Audit a new model version (upload, import, training) in the transaction that made it;
    returns the version so callers can wrap the call in one line."""
    uow.audit.append(AuditEntry(
        project_id=project_id, actor=version.created_by, action=AuditAction.VERSION_REGISTERED,
        target_type=AuditTarget.MODEL_VERSION, target_id=version.id,
        target=f"{package} {version.version}", package_id=version.package_id, before=None,
        after={"status": version.status, "version": version.version,
               "source": str(version.lineage.get("source", ""))},
        job_id=_int(version.lineage.get("job_id") or version.lineage.get("import_job_id")),
    ))
    return version


def record_evaluation(
    uow: UnitOfWork, before: ModelVersion, after: ModelVersion, *, project_id: int, package: str,
    actor: str, job_id: int, evaluated_on: dict[str, Any] | None = None,
) -> ModelVersion:
    """Audit a version moved to ``evaluated`` (an evaluation job or pipeline run), in the
    transaction of that change; returns the changed version."""
    uow.audit.append(AuditEntry(
        project_id=project_id, actor=actor, action=AuditAction.EVALUATE,
        target_type=AuditTarget.MODEL_VERSION, target_id=after.id,
        target=f"{package} {after.version}", package_id=after.package_id,
        before={"status": before.status}, after={"status": after.status, **(evaluated_on or {})},
        job_id=job_id,
    ))
    return after


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_actions(values: Sequence[str]) -> list[AuditAction]:
    found = []
    for value in values:
        try:
            found.append(AuditAction(value.strip().lower()))
        except ValueError:
            choices = ", ".join(a.value for a in AuditAction)
            raise InvalidInput(f"unknown audit action {value!r}: choose one of {choices}") from None
    return found


def as_utc(value: datetime | None) -> datetime | None:
    """A naive time is read as UTC; an aware one is converted."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def event_record(event: AuditEvent) -> dict[str, Any]:
    return {
        # The same text as the API's JSON gives for a time.
        "id": event.id, "at": event.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "actor": event.actor,
        "action": event.action.value, "target_type": event.target_type.value,
        "target_id": event.target_id, "target": event.target, "before": event.before,
        "after": event.after, "reason": event.reason, "job_id": event.job_id,
    }


class AuditService:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self.uow = uow

    def _filters(self, uow: UnitOfWork, project: str, package: str | None) -> tuple[int, int | None]:
        project_id = uow.projects.get(project).id
        package_id = uow.packages.get(project_id, package).id if package else None
        return project_id, package_id

    def list(
        self, *, principal: Principal, project: str, package: str | None = None,
        actions: Sequence[str] = (), since: datetime | None = None, until: datetime | None = None,
        after_id: int = 0, limit: int = PAGE,
    ) -> builtins.list[AuditEvent]:
        """Oldest first; page on with ``after_id`` = the last id received."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
        parsed = parse_actions(actions)
        with self.uow() as uow:
            project_id, package_id = self._filters(uow, project, package)
            return uow.audit.list(
                project_id=project_id, package_id=package_id, actions=parsed,
                since=as_utc(since), until=as_utc(until), after_id=after_id, limit=limit,
            )

    def export(
        self, *, principal: Principal, project: str, fmt: str, package: str | None = None,
        actions: Sequence[str] = (), since: datetime | None = None, until: datetime | None = None,
    ) -> Iterator[str]:
        """The whole (filtered) trail as CSV or a JSON array, produced page by page so an
        export of any length streams in bounded memory. Arguments are checked before the
        first chunk, so a bad request fails as a plain 4xx."""
        if fmt not in EXPORT_FORMATS:
            raise InvalidInput(f"unknown export format {fmt!r}: use csv or json")
        parsed = parse_actions(actions)
        with self.uow() as uow:
            project_id, package_id = self._filters(uow, project, package)

        def pages() -> Iterator[list[AuditEvent]]:
            after_id = 0
            while True:
                with self.uow() as uow:
                    page = uow.audit.list(
                        project_id=project_id, package_id=package_id, actions=parsed,
                        since=as_utc(since), until=as_utc(until), after_id=after_id, limit=PAGE,
                    )
                if not page:
                    return
                yield page
                after_id = page[-1].id

        return _csv(pages()) if fmt == "csv" else _json(pages())

    def deployed_at(
        self, *, principal: Principal, project: str, package: str, at: datetime
    ) -> builtins.list[DeployedVersion]:
        """The deployments of ``package`` active at ``at``, the primary (champion) first,
        replayed from the deploy and retire events of the trail."""
        when = as_utc(at)
        assert when is not None
        events: builtins.list[AuditEvent] = []
        with self.uow() as uow:
            project_id, package_id = self._filters(uow, project, package)
            after_id = 0
            while True:
                page = uow.audit.list(
                    project_id=project_id, package_id=package_id,
                    actions=[AuditAction.DEPLOY, AuditAction.RETIRE], until=when,
                    after_id=after_id, limit=PAGE,
                )
                events += page
                if len(page) < PAGE:
                    break
                after_id = page[-1].id
        return deployed_at(events, when)


def _csv(pages: Iterator[list[AuditEvent]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for page in pages:
        for event in page:
            item = event_record(event)
            writer.writerow([
                json.dumps(item[c], sort_keys=True) if c in ("before", "after") and item[c] is not None
                else ("" if item[c] is None else item[c])
                for c in CSV_COLUMNS
            ])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def _json(pages: Iterator[list[AuditEvent]]) -> Iterator[str]:
    yield "["
    first = True
    for page in pages:
        chunk = ",\n".join(json.dumps(event_record(e), sort_keys=True) for e in page)
        yield ("\n" if first else ",\n") + chunk
        first = False
    yield "\n]\n"
