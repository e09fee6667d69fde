"""Approve or reject a model version (each a job of its own kind), and read its champion."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from modelops.api.deps import ContainerDep, PrincipalDep
from modelops.api.routers.jobs import job_read
from modelops.api.routers.packages import version_read
from modelops.api.schemas_lifecycle import (
    ChampionRead,
    DecisionRead,
    DecisionRequest,
    deployment_read,
)
from modelops.services.lifecycle import Decision

router = APIRouter(prefix="/projects/{project}/packages/{name}", tags=["lifecycle"])

REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "the token's role is below approver"},
    409: {"description": "the version's status does not allow it: the body names the current "
                         "status and the allowed ones"},
}


def decision_read(decision: Decision) -> DecisionRead:
    return DecisionRead(job=job_read(decision.job), version=version_read(decision.version))


@router.post("/versions/{version}/approve", response_model=DecisionRead, status_code=201, responses=REFUSALS)
async def approve_version(
    project: str, name: str, version: str, body: DecisionRequest, container: ContainerDep,
    principal: PrincipalDep,
) -> DecisionRead:
    """Approve an evaluated version, with a reason (approver or admin); an APPROVAL job records it."""
    decision = await run_in_threadpool(lambda: container.lifecycle.decisions.approve(
        principal=principal, project=project, package=name, version=version, reason=body.reason,
    ))
    return decision_read(decision)


@router.post("/versions/{version}/reject", response_model=DecisionRead, status_code=201, responses=REFUSALS)
async def reject_version(
    project: str, name: str, version: str, body: DecisionRequest, container: ContainerDep,
    principal: PrincipalDep,
) -> DecisionRead:
    """Reject an evaluated version, with a reason (approver or admin); a REJECTION job records it."""
    decision = await run_in_threadpool(lambda: container.lifecycle.decisions.reject(
        principal=principal, project=project, package=name, version=version, reason=body.reason,
    ))
    return decision_read(decision)


@router.get("/champion", response_model=ChampionRead)
def show_champion(project: str, name: str, container: ContainerDep, principal: PrincipalDep) -> ChampionRead:
    """The model's champion: the version of its active production deployment (null if none)."""
    found = container.lifecycle.deployments.champion(principal=principal, project=project, package=name)
    return ChampionRead(
        package=name, champion=found.version if found else None,
        deployment=deployment_read(found) if found else None,
    )
