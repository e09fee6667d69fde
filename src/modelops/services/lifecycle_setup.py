"""Builds the lifecycle part of the platform (decisions, deployments, batch runs, audit and the
deployment scheduler) and registers its job kinds, so the composition root wires it in a line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modelops.archives import ArchiveLimits
from modelops.domain.lifecycle import LIFECYCLE_JOB_KINDS
from modelops.ports import ArtifactStore, UnitOfWorkFactory
from modelops.services.audit import AuditService
from modelops.services.batch_kind import BatchPredictionKind
from modelops.services.batch_prediction import BatchPredictionService, DeploymentScheduler
from modelops.services.deployments import DeploymentService
from modelops.services.job_kinds import JobKindRegistry
from modelops.services.lifecycle import LifecycleJobKind, LifecycleService


@dataclass
class LifecycleServices:
    decisions: LifecycleService
    deployments: DeploymentService
    batch: BatchPredictionService
    audit: AuditService
    scheduler: DeploymentScheduler


def build_lifecycle(
    *, uow: UnitOfWorkFactory, artifacts: ArtifactStore, limits: ArchiveLimits,
    registry: JobKindRegistry, wake: Callable[[], None], default_timeout: float | None,
) -> LifecycleServices:
    for kind in sorted(LIFECYCLE_JOB_KINDS):
        registry.register(LifecycleJobKind(kind))
    registry.register(BatchPredictionKind(uow=uow, artifacts=artifacts, limits=limits))
    return LifecycleServices(
        decisions=LifecycleService(uow=uow),
        deployments=DeploymentService(uow=uow),
        batch=BatchPredictionService(uow=uow, wake=wake, default_timeout=default_timeout),
        audit=AuditService(uow=uow),
        scheduler=DeploymentScheduler(uow=uow, wake=wake, default_timeout=default_timeout),
    )
