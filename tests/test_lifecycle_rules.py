"""Approve, reject, deploy and retire through the services, on SQLite and on PostgreSQL: the
transition table decides, each action is a job with events and logs, and leaves one audit event."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from support.lifecycle import ADMIN, approve, seed_container

from modelops.bootstrap import Container
from modelops.domain.entities import Principal
from modelops.domain.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    InvalidTransition,
    PermissionDenied,
)
from modelops.domain.jobs import JobKind, JobStatus
from modelops.domain.roles import Role

MEMBER = Principal(token_id=0, name="mia", role=Role.MEMBER)
APPROVER = Principal(token_id=0, name="ann", role=Role.APPROVER)


def status_of(container: Container, version_id: int) -> str:
    with container.uow() as uow:
        return uow.packages.get_version_by_id(version_id).status


def test_approval_is_a_job_with_events_logs_and_one_audit_event(container: Container, tmp_path: Path) -> None:
    (version,) = seed_container(container, tmp_path)
    decision = container.lifecycle.decisions.approve(
        principal=APPROVER, project="p", package="tiny", version="1.0", reason="accuracy is fine",
    )
    assert decision.version.status == "approved"
    assert decision.version.lineage["review"]["reason"] == "accuracy is fine"
    job = container.jobs.get(principal=ADMIN, job_id=decision.job.id)
    assert (job.kind, job.status, job.actor) == (JobKind.APPROVAL, JobStatus.COMPLETED, "ann")
    events = [e.to_status for e in container.jobs.events(principal=ADMIN, job_id=job.id)]
    assert events == ["created", "queued", "running", "completed"]
    logs = "\n".join(line.text for line in container.jobs.logs(principal=ADMIN, job_id=job.id))
    assert "reason: accuracy is fine" in logs and "evaluated → approved" in logs
    (event,) = container.lifecycle.audit.list(principal=ADMIN, project="p", actions=["approve"])
    assert (event.actor, event.target, event.before, event.after, event.reason, event.job_id) == (
        "ann", "tiny 1.0", {"status": "evaluated"}, {"status": "approved"}, "accuracy is fine", job.id,
    )
    assert version.id == event.target_id


def test_only_approvers_decide_and_a_reason_is_required(container: Container, tmp_path: Path) -> None:
    (version,) = seed_container(container, tmp_path)
    decisions = container.lifecycle.decisions
    for role in (Role.VIEWER, Role.MEMBER):
        who = Principal(token_id=0, name=role.value, role=role)
        with pytest.raises(PermissionDenied):
            decisions.approve(principal=who, project="p", package="tiny", version="1.0", reason="x")
    with pytest.raises(InvalidInput, match="reason"):
        decisions.reject(principal=APPROVER, project="p", package="tiny", version="1.0", reason="  ")
    assert status_of(container, version.id) == "evaluated"
    assert container.jobs.list(principal=ADMIN, project="p", kinds=["approval", "rejection"]) == []
    assert container.lifecycle.audit.list(principal=ADMIN, project="p", actions=["approve", "reject"]) == []


def test_refused_transitions_name_the_status_and_leave_nothing_behind(container: Container, tmp_path: Path) -> None:
    (evaluated,) = seed_container(container, tmp_path)
    # Deploying before approval is refused by the table: 409 naming what is allowed.
    with pytest.raises(InvalidTransition, match="is 'evaluated'; cannot move to 'deployed'") as refused:
        container.lifecycle.deployments.deploy(principal=MEMBER, project="p", package="tiny", version="1.0")
    assert refused.value.allowed == ["approved", "evaluated", "rejected"]
    container.lifecycle.decisions.reject(principal=APPROVER, project="p", package="tiny", version="1.0",
                                         reason="overfits")
    with pytest.raises(InvalidTransition, match="'rejected'.*none \\(terminal\\)"):
        container.lifecycle.decisions.approve(principal=APPROVER, project="p", package="tiny",
                                              version="1.0", reason="changed my mind")
    with pytest.raises(InvalidTransition):
        container.lifecycle.deployments.deploy(principal=MEMBER, project="p", package="tiny", version="1.0")
    assert status_of(container, evaluated.id) == "rejected"
    assert [j.kind for j in container.jobs.list(principal=ADMIN, project="p")] == [JobKind.REJECTION]
    assert container.lifecycle.deployments.list(principal=ADMIN, project="p") == []


def test_deploy_replace_side_by_side_and_the_champion(container: Container, tmp_path: Path) -> None:
    first, second, third = seed_container(container, tmp_path, versions=3)
    for version in (first, second, third):
        approve(container, version)
    deployments = container.lifecycle.deployments
    one = deployments.deploy(principal=MEMBER, project="p", package="tiny", version="1.0", dataset="iris")
    assert one.deployment.primary and one.job.kind is JobKind.DEPLOYMENT
    assert deployments.champion(principal=ADMIN, project="p", package="tiny").version == "1.0"
    # A second production deployment needs an explicit choice.
    with pytest.raises(Conflict, match="already in production with deployment 'tiny-1.0'"):
        deployments.deploy(principal=MEMBER, project="p", package="tiny", version="2.0")
    assert status_of(container, second.id) == "approved"  # the refusal rolled everything back
    side = deployments.deploy(principal=MEMBER, project="p", package="tiny", version="2.0", side_by_side=True)
    assert not side.deployment.primary
    assert deployments.champion(principal=ADMIN, project="p", package="tiny").version == "1.0"
    # Replace: the old production deployment is retired in the same step, its version too.
    swap = deployments.deploy(principal=MEMBER, project="p", package="tiny", version="3.0", replace=True,
                              reason="better recall")
    assert swap.replaced is not None and swap.replaced.name == "tiny-1.0"
    assert swap.replaced.status.value == "retired" and "replaced by deployment 'tiny-3.0'" in (swap.replaced.retire_reason or "")
    assert swap.retirement_job is not None and swap.retirement_job.kind is JobKind.RETIREMENT
    assert [status_of(container, v.id) for v in (first, second, third)] == ["retired", "deployed", "deployed"]
    assert deployments.champion(principal=ADMIN, project="p", package="tiny").version == "3.0"
    jobs_tab = deployments.jobs(principal=ADMIN, project="p", deployment="tiny-1.0")
    assert [j.kind for j in jobs_tab] == [JobKind.RETIREMENT, JobKind.DEPLOYMENT]
    actions = [e.action.value for e in container.lifecycle.audit.list(principal=ADMIN, project="p")]
    assert actions == ["version_registered"] * 3 + ["approve"] * 3 + ["deploy", "deploy", "retire", "deploy"]


def test_retire_needs_a_reason_ends_the_schedule_and_happens_once(container: Container, tmp_path: Path) -> None:
    (version,) = seed_container(container, tmp_path)
    approve(container, version)
    deployments = container.lifecycle.deployments
    deployments.deploy(principal=MEMBER, project="p", package="tiny", version="1.0", dataset="iris",
                       cron="0 3 * * *", timezone="Europe/Paris")
    with pytest.raises(InvalidInput, match="reason"):
        deployments.retire(principal=MEMBER, project="p", deployment="tiny-1.0", reason="")
    with pytest.raises(PermissionDenied):
        deployments.retire(principal=Principal(token_id=0, name="v", role=Role.VIEWER), project="p",
                           deployment="tiny-1.0", reason="x")
    retired, job = deployments.retire(principal=MEMBER, project="p", deployment="tiny-1.0", reason="drifted")
    assert retired.status.value == "retired" and retired.next_run_at is None and job.kind is JobKind.RETIREMENT
    assert status_of(container, version.id) == "retired"
    with pytest.raises(InvalidTransition, match="'retired'"):
        deployments.retire(principal=MEMBER, project="p", deployment="tiny-1.0", reason="again")
    with container.uow() as uow:
        assert uow.deployments.due(retired.deployed_at.replace(year=2100)) == []


def test_the_database_keeps_one_primary_per_model_and_the_audit_trail_append_only(
    container: Container, tmp_path: Path
) -> None:
    first, second = seed_container(container, tmp_path, versions=2)
    for version in (first, second):
        approve(container, version)
    container.lifecycle.deployments.deploy(principal=MEMBER, project="p", package="tiny", version="1.0")
    with pytest.raises(AlreadyExists), container.uow() as uow:
        uow.deployments.add(fields={  # bypassing the service: the index still refuses it
            "project_id": uow.projects.get("p").id, "name": "sneaky", "package_id": first.package_id,
            "package_name": "tiny", "model_version_id": second.id, "version": "2.0", "mode": "batch",
            "status": "active", "is_primary": True, "input_folder": "",
        }, actor="x")
    trail = container.lifecycle.audit.list(principal=ADMIN, project="p")
    assert [e.action.value for e in trail] == ["version_registered"] * 2 + ["approve"] * 2 + ["deploy"]
    for statement in ("UPDATE audit_events SET reason = 'rewritten'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), container.engine.begin() as conn:
            conn.execute(text(statement))
    assert container.lifecycle.audit.list(principal=ADMIN, project="p") == trail
