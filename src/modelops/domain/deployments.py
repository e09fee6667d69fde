"""Deployments: a model version put into production, its batch schedule and its batch runs.

A deployment is ``active`` until it is retired (``retired`` is terminal); the model version it
serves moves ``approved → deployed → retired`` with it. Per model, at most one active
deployment is the *primary* (production) one, whose version is the model's champion; other
active deployments exist only when the user asked for them side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from modelops.domain.errors import InvalidInput, InvalidTransition

DEFAULT_CHUNK_ROWS = 50_000
MAX_CHUNK_ROWS = 5_000_000
DEPLOYMENT_TARGET = "deployment"  # Job.target_type of every job a deployment owns


class DeploymentMode(StrEnum):
    BATCH = "batch"
    REALTIME = "realtime"  # named now so the API's vocabulary is stable; not served yet


class DeploymentStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


DEPLOYMENT_TRANSITIONS: dict[DeploymentStatus, frozenset[DeploymentStatus]] = {
    DeploymentStatus.ACTIVE: frozenset({DeploymentStatus.RETIRED}),
    DeploymentStatus.RETIRED: frozenset(),
}


def check_deployment_transition(current: DeploymentStatus, target: DeploymentStatus, *, name: str) -> None:
    if target not in DEPLOYMENT_TRANSITIONS[current]:
        raise InvalidTransition(
            entity=f"deployment '{name}'", current=current.value, requested=target.value,
            allowed=sorted(s.value for s in DEPLOYMENT_TRANSITIONS[current]),
        )


def parse_mode(text: str | None) -> DeploymentMode:
    try:
        mode = DeploymentMode((text or "batch").strip().lower())
    except ValueError:
        raise InvalidInput(f"unknown deployment mode {text!r}: use batch") from None
    if mode is DeploymentMode.REALTIME:
        raise InvalidInput("real-time deployments are not available yet: use mode 'batch'")
    return mode


def check_chunk_rows(value: Any) -> int:
    if value is None:
        return DEFAULT_CHUNK_ROWS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CHUNK_ROWS:
        raise InvalidInput(f"chunk_rows must be a whole number from 1 to {MAX_CHUNK_ROWS}")
    return value


def default_output_dataset(deployment: str) -> str:
    """Where a deployment's predictions go unless told otherwise (a valid dataset name)."""
    return f"{deployment[:52].rstrip('.')}-predictions"


class BatchTrigger(StrEnum):
    MANUAL = "manual"  # "Run now"
    SCHEDULE = "schedule"  # fired by the scheduler for one cron time


@dataclass(frozen=True)
class BatchInput:
    """What a batch run scores: a dataset (its newest version at run time unless pinned), or
    one folder of it. Predictions go to ``output_dataset`` as a new version per run."""

    dataset_id: int
    dataset: str
    version: int | None
    folder: str
    output_dataset: str
    chunk_rows: int = DEFAULT_CHUNK_ROWS


@dataclass(frozen=True)
class CronSchedule:
    cron: str
    timezone: str


@dataclass(frozen=True)
class Deployment:
    id: int
    project_id: int
    name: str
    package_id: int
    package: str
    model_version_id: int
    version: str
    mode: DeploymentMode
    status: DeploymentStatus
    primary: bool  # the production deployment of its model: its version is the champion
    batch_input: BatchInput | None
    schedule: CronSchedule | None
    next_run_at: datetime | None
    deployed_at: datetime
    deployed_by: str
    deploy_job_id: int | None
    description: str = ""
    retired_at: datetime | None = None
    retired_by: str | None = None
    retire_reason: str | None = None
    retire_job_id: int | None = None

    @property
    def active(self) -> bool:
        return self.status is DeploymentStatus.ACTIVE


@dataclass(frozen=True)
class BatchRun:
    """One batch prediction of a deployment: its job, where its rows came from and went, and
    how far the scored data drifted from the version's reference statistics."""

    id: int
    project_id: int
    deployment_id: int
    job_id: int
    trigger: BatchTrigger
    scheduled_at: datetime | None
    created_at: datetime
    input_dataset_version_id: int | None
    parameters: dict[str, Any] = field(default_factory=dict)
    output_dataset_version_id: int | None = None
    output_version: int | None = None
    rows: int | None = None
    drift: dict[str, Any] | None = None
