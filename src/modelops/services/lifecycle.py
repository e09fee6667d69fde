"""Approve or reject a model version. Each decision is a job of its own kind (approval,
rejection) with its events and logs, applied inside the request.

Why not a process: a decision runs no user code and must answer the caller with its outcome
(a racing second decision gets 409 at once, not a job that fails later). So the status
compare-and-set, the job (created → queued → running → completed, with its log lines) and the
audit event are written in ONE transaction: either all of it is committed or nothing is, and
the engine never sees these jobs queued. The same helper records deployments and retirements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelops.domain.audit import AuditAction, AuditEntry, AuditTarget
from modelops.domain.entities import ModelVersion, Principal
from modelops.domain.errors import InvalidInput
from modelops.domain.jobs import Job, JobKind, JobStatus, LogLevel
from modelops.domain.lifecycle import (
    ACTION_RULES,
    LIFECYCLE_JOB_KINDS,
    LifecycleAction,
    clean_reason,
)
from modelops.domain.roles import require_role
from modelops.domain.versions import parse_version
from modelops.ports import UnitOfWork, UnitOfWorkFactory
from modelops.services.audit import record
from modelops.services.job_kinds import CheckedParameters, PreparedJob

MODEL_VERSION_TARGET = "model_version"


def record_instant_job(
    uow: UnitOfWork, *, project_id: int, kind: JobKind, actor: str, parameters: dict[str, Any],
    target_type: str, target_id: int, lines: Sequence[str], result: dict[str, Any],
) -> Job:
    """A job applied in the caller's transaction: every status event and log line of a
    normal job, ending ``completed``; rolled back with the transaction if anything fails."""
    job = uow.jobs.add(
        project_id=project_id, kind=kind, actor=actor, parameters=parameters,
        target_type=target_type, target_id=target_id, timeout_seconds=None,
    )
    uow.jobs.transition(job.id, JobStatus.RUNNING, actor=actor,
                        detail={"applied": "in the request, in one transaction with its change"})
    now = datetime.now(UTC)
    uow.jobs.append_logs(job.id, [(now, "system", LogLevel.INFO, line) for line in lines])
    completed = uow.jobs.transition(job.id, JobStatus.COMPLETED, actor=actor, fields={"result": result})
    uow.jobs.append_logs(job.id, [(datetime.now(UTC), "system", LogLevel.INFO, "job completed")])
    return completed


class LifecycleJobKind:
    """Registered for approval, rejection, deployment and retirement so the job engine knows
    these kinds; they are recorded by the lifecycle services, never submitted bare."""

    def __init__(self, kind: JobKind) -> None:
        assert kind in LIFECYCLE_JOB_KINDS
        self.kind = kind

    def validate(self, *, project_id: int, parameters: dict[str, Any]) -> CheckedParameters:
        where = {
            JobKind.APPROVAL: "POST .../packages/{package}/versions/{version}/approve (CLI: modelops lifecycle approve)",
            JobKind.REJECTION: "POST .../packages/{package}/versions/{version}/reject (CLI: modelops lifecycle reject)",
            JobKind.DEPLOYMENT: "POST /projects/{project}/deployments (CLI: modelops deployments create)",
            JobKind.RETIREMENT: "POST .../deployments/{deployment}/retire (CLI: modelops deployments retire)",
        }[self.kind]
        raise InvalidInput(f"{self.kind.value} jobs are created by the lifecycle action itself: use {where}")

    def prepare(self, job: Job, workdir: Path) -> PreparedJob:
        raise InvalidInput(f"{self.kind.value} jobs are applied when requested and never run a process")

    def finish(self, job: Job, workdir: Path) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class Decision:
    job: Job
    version: ModelVersion


class LifecycleService:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self.uow = uow

    def approve(
        self, *, principal: Principal, project: str, package: str, version: str, reason: str | None,
    ) -> Decision:
        return self._decide(LifecycleAction.APPROVE, principal, project, package, version, reason)

    def reject(
        self, *, principal: Principal, project: str, package: str, version: str, reason: str | None,
    ) -> Decision:
        return self._decide(LifecycleAction.REJECT, principal, project, package, version, reason)

    def _decide(
        self, action: LifecycleAction, principal: Principal, project: str, package: str,
        version: str, reason: str | None,
    ) -> Decision:
        rule = ACTION_RULES[action]
        require_role(principal.role, rule.role)
        text = clean_reason(reason, action=action)
        major, minor = parse_version(version)
        with self.uow() as uow:
            proj = uow.projects.get(project)
            pkg = uow.packages.get(proj.id, package)
            found = uow.packages.get_version(pkg.id, major, minor)
            now = datetime.now(UTC).isoformat()
            review = {"decision": rule.past_tense, "reason": text, "by": principal.name, "at": now}
            # The one compare-and-set: a racing decision matches nothing and is refused (409)
            # by the transition table, with the status it found. The review is kept on the
            # version too, so reading the version shows who decided and why.
            changed = uow.packages.transition_version(
                found.id, rule.target_status, reason=text,
                fields={"lineage": {**found.lineage, "review": review}},
            )
            label = f"{pkg.name} {changed.version}"
            job = record_instant_job(
                uow, project_id=proj.id, kind=rule.job_kind, actor=principal.name,
                parameters={"package": pkg.name, "version": changed.version, "reason": text},
                target_type=MODEL_VERSION_TARGET, target_id=changed.id,
                lines=[
                    f"{action.value} {label} requested by {principal.name}",
                    f"reason: {text}",
                    f"model version {label}: {found.status} → {changed.status}",
                ],
                result={"package": pkg.name, "version": changed.version,
                        "status_before": found.status, "status": changed.status, "reason": text},
            )
            record(uow, AuditEntry(
                project_id=proj.id, actor=principal.name, action=AuditAction(action.value),
                target_type=AuditTarget.MODEL_VERSION, target_id=changed.id, target=label,
                package_id=pkg.id, before={"status": found.status}, after={"status": changed.status},
                reason=text, job_id=job.id,
            ))
        return Decision(job=job, version=changed)
