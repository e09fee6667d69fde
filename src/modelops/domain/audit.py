"""The audit trail: append-only events (actor, action, target, before, after, reason, time).

Nothing updates or deletes an event: the store offers only ``append`` and reads, the API has
no route that writes one, and the database refuses UPDATE and DELETE on the table. Questions
about the past (which version of a model was deployed at a given time) are answered by
replaying these events, not by reading today's rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class AuditAction(StrEnum):
    VERSION_REGISTERED = "version_registered"  # upload, import or training made a version
    EVALUATE = "evaluate"  # an evaluation job or pipeline run moved a version to evaluated
    APPROVE = "approve"
    REJECT = "reject"
    DEPLOY = "deploy"
    RETIRE = "retire"
    SCHEDULE_SET = "schedule_set"
    SCHEDULE_CLEARED = "schedule_cleared"
    BATCH_RUN_STARTED = "batch_run_started"


class AuditTarget(StrEnum):
    MODEL_VERSION = "model_version"
    DEPLOYMENT = "deployment"


@dataclass(frozen=True)
class AuditEntry:
    """An event to append; the store gives it its id and time."""

    project_id: int
    actor: str
    action: AuditAction
    target_type: AuditTarget
    target_id: int
    target: str  # human label: "iris 1.1", "deployment iris-prod"
    package_id: int | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str = ""
    job_id: int | None = None
    at: datetime | None = None  # default: now; set to the recorded change's own time


@dataclass(frozen=True)
class AuditEvent:
    id: int
    project_id: int
    at: datetime
    actor: str
    action: AuditAction
    target_type: AuditTarget
    target_id: int
    target: str
    package_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str
    job_id: int | None


CSV_COLUMNS = (
    "id", "at", "actor", "action", "target_type", "target_id", "target", "before", "after",
    "reason", "job_id",
)


@dataclass(frozen=True)
class DeployedVersion:
    deployment_id: int
    deployment: str
    version: str
    model_version_id: int
    primary: bool
    since: datetime


def deployed_at(events: Iterable[AuditEvent], when: datetime) -> list[DeployedVersion]:
    """The deployments of one model that were active at ``when``, from its deploy and retire
    events (any order): deployed at or before ``when`` and not yet retired then."""
    active: dict[int, DeployedVersion] = {}
    for event in sorted(events, key=lambda e: (e.at, e.id)):
        if event.at > when:
            break
        after = event.after or {}
        if event.action is AuditAction.DEPLOY and event.target_type is AuditTarget.DEPLOYMENT:
            active[event.target_id] = DeployedVersion(
                deployment_id=event.target_id, deployment=str(after.get("deployment", "")),
                version=str(after.get("version", "")),
                model_version_id=int(after.get("model_version_id") or 0),
                primary=bool(after.get("primary", True)), since=event.at,
            )
        elif event.action is AuditAction.RETIRE and event.target_type is AuditTarget.DEPLOYMENT:
            active.pop(event.target_id, None)
    return sorted(active.values(), key=lambda d: (not d.primary, d.since))
