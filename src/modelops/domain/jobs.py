"""Jobs: kinds, the status machine (one transition table) and log levels.

Nothing else decides which status may follow which; stores apply a transition as a
compare-and-set on the allowed source statuses so racing requests give one winner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from modelops.domain.errors import InvalidTransition


class JobKind(StrEnum):
    TRAINING = "training"
    EVALUATION = "evaluation"
    FULL_PIPELINE = "full_pipeline"
    APPROVAL = "approval"
    REJECTION = "rejection"
    DEPLOYMENT = "deployment"
    RETIREMENT = "retirement"
    IMPORT = "import"
    COMPUTE_STATISTICS = "compute_statistics"
    BATCH_PREDICTION = "batch_prediction"
    # Runs a command of the user's package (tests, diagnostics): the engine's simplest job.
    SCRIPT = "script"


class JobStatus(StrEnum):
    CREATED = "created"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.CREATED: frozenset({JobStatus.QUEUED}),
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLING, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLING}
    ),
    JobStatus.CANCELLING: frozenset({JobStatus.CANCELLED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.TIMED_OUT: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}

TERMINAL_JOB_STATUSES = frozenset(s for s, nxt in JOB_TRANSITIONS.items() if not nxt)
ACTIVE_JOB_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING})


def job_sources_for(target: JobStatus) -> frozenset[JobStatus]:
    """Statuses from which ``target`` may be reached: the WHERE clause of a compare-and-set."""
    return frozenset(s for s, nxt in JOB_TRANSITIONS.items() if target in nxt)


def check_job_transition(current: JobStatus, target: JobStatus, *, job_id: int) -> None:
    if target not in JOB_TRANSITIONS[current]:
        raise InvalidTransition(
            entity=f"job {job_id}",
            current=current.value,
            requested=target.value,
            allowed=sorted(s.value for s in JOB_TRANSITIONS[current]),
        )


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return ("debug", "info", "warning", "error").index(self.value)


@dataclass(frozen=True)
class Job:
    id: int
    project_id: int
    kind: JobKind
    status: JobStatus
    actor: str
    created_at: datetime
    parameters: dict[str, Any] = field(default_factory=dict)
    target_type: str | None = None  # "model_version" | "deployment" | "dataset_version" | None
    target_id: int | None = None
    timeout_seconds: float | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    worker_ref: str | None = None  # executor's handle (pid, submission id) for re-attach
    exit_code: int | None = None
    signal: int | None = None
    error: str | None = None  # the last error, shown in the job's details
    result: dict[str, Any] = field(default_factory=dict)
    engine: str | None = None  # the engine that claimed it (one per server process)
    work_dir: str | None = None  # its working folder, where that engine put it
    finishing: bool = False  # its results are being registered: it can no longer be stopped

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES


@dataclass(frozen=True)
class Engine:
    """A job engine as the database knows it: alive while its heartbeat is recent."""

    name: str
    instance: str
    host: str
    pid: int
    process_started: float  # with host and pid, tells the very process (pids are reused)
    started_at: datetime
    heartbeat_at: datetime
    silent_seconds: float | None = None  # since its last heartbeat, by the database's clock


@dataclass(frozen=True)
class JobEvent:
    id: int
    job_id: int
    at: datetime
    from_status: JobStatus | None
    to_status: JobStatus
    actor: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LogLine:
    job_id: int
    seq: int
    at: datetime
    stream: str  # "stdout" | "stderr" | "system"
    level: LogLevel
    text: str
