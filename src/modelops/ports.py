"""Ports: what services need from storage, artifacts and executors. Adapters implement them."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from modelops.domain.audit import AuditAction, AuditEntry, AuditEvent
from modelops.domain.byom import ModelStatistics
from modelops.domain.deployments import (
    BatchRun,
    BatchTrigger,
    CronSchedule,
    Deployment,
    DeploymentStatus,
)
from modelops.domain.entities import (
    ApiToken,
    Dataset,
    DatasetVersion,
    ManifestEntry,
    ModelPackage,
    ModelVersion,
    Project,
)
from modelops.domain.jobs import Engine, Job, JobEvent, JobKind, JobStatus, LogLevel, LogLine
from modelops.domain.model_status import ModelStatus
from modelops.domain.pipelines import Pipeline, PipelineRun, RunFile, RunTrigger
from modelops.domain.roles import Role

# --------------------------------------------------------------------------- artifacts


@dataclass(frozen=True)
class BlobRef:
    sha256: str
    size: int


class ArtifactStore(Protocol):
    """Content-addressed blobs. A blob is visible only once complete; equal content is stored once."""

    def put_stream(self, chunks: Iterable[bytes]) -> BlobRef: ...

    def put_file(self, path: Path) -> BlobRef: ...

    def open(self, sha256: str) -> BinaryIO:
        """Open a blob for streaming reads; raises NotFound."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def fetch_to(self, sha256: str, destination: Path) -> None:
        """Copy a blob to a local file (written to a temp name, then renamed)."""
        ...


# --------------------------------------------------------------------------- metadata stores


class ProjectStore(Protocol):
    def add(self, *, name: str, description: str, actor: str) -> Project: ...
    def get(self, name: str) -> Project: ...
    def get_by_id(self, project_id: int) -> Project: ...
    def list(self) -> builtins.list[Project]: ...
    def delete(self, project_id: int) -> None: ...
    def is_empty(self, project_id: int) -> bool: ...


class TokenStore(Protocol):
    def add(self, *, name: str, role: Role, token_hash: str, actor: str) -> ApiToken: ...
    def find_by_hash(self, token_hash: str) -> ApiToken | None: ...
    def get(self, token_id: int) -> ApiToken: ...
    def list(self) -> builtins.list[ApiToken]: ...
    def revoke(self, token_id: int) -> ApiToken: ...
    def count(self) -> int: ...


class DatasetStore(Protocol):
    def add(self, *, project_id: int, name: str, description: str, actor: str) -> Dataset: ...
    def get(self, project_id: int, name: str) -> Dataset: ...
    def list(self, project_id: int) -> builtins.list[Dataset]: ...
    def add_version(
        self, *, dataset_id: int, files: Sequence[ManifestEntry], content_hash: str,
        note: str, actor: str,
    ) -> DatasetVersion:
        """Allocate the next version number atomically and store the manifest."""
        ...
    def get_version(self, dataset_id: int, version: int, *, with_files: bool = True) -> DatasetVersion: ...
    def get_version_by_id(self, version_id: int, *, with_files: bool = True) -> DatasetVersion: ...
    def list_versions(self, dataset_id: int) -> builtins.list[DatasetVersion]: ...


class PackageStore(Protocol):
    def add(self, *, project_id: int, name: str, description: str, actor: str) -> ModelPackage: ...
    def get(self, project_id: int, name: str) -> ModelPackage: ...
    def get_or_add(self, *, project_id: int, name: str, actor: str) -> ModelPackage: ...
    def list(self, project_id: int) -> builtins.list[ModelPackage]: ...
    def add_major_version(self, *, package_id: int, fields: dict[str, Any], actor: str) -> ModelVersion:
        """Allocate N.0 with N = latest major + 1, atomically."""
        ...
    def add_minor_version(
        self, *, package_id: int, major: int, fields: dict[str, Any], actor: str
    ) -> ModelVersion:
        """Allocate N.(max minor of N + 1), atomically."""
        ...
    def get_version(self, package_id: int, major: int, minor: int) -> ModelVersion: ...
    def get_version_by_id(self, version_id: int) -> ModelVersion: ...
    def list_versions(self, package_id: int) -> builtins.list[ModelVersion]: ...
    def transition_version(
        self, version_id: int, to: ModelStatus, *, reason: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Compare-and-set a version's status, checked by the domain's transition table;
        raises InvalidTransition for the loser of a race. ``fields`` are written with it."""
        ...


class PipelineStore(Protocol):
    """Pipelines, their runs (one per job; scheduled ones unique per scheduled time) and the
    files each run produced."""

    def add(self, *, fields: dict[str, Any], actor: str) -> Pipeline: ...
    def get(self, project_id: int, name: str) -> Pipeline: ...
    def get_by_id(self, pipeline_id: int) -> Pipeline: ...
    def list(self, project_id: int) -> builtins.list[Pipeline]: ...
    def delete(self, pipeline_id: int) -> None: ...
    def due(self, now: datetime, *, limit: int = 50) -> builtins.list[Pipeline]: ...
    def advance(self, pipeline_id: int, *, expected: datetime, next_run_at: datetime | None) -> bool:
        """Compare-and-set the next firing time; False if it was no longer ``expected``."""
        ...
    def add_run(
        self, *, project_id: int, pipeline: Pipeline, job_id: int, trigger: RunTrigger,
        scheduled_at: datetime | None,
    ) -> PipelineRun:
        """Raises AlreadyExists if the pipeline already has a run for ``scheduled_at``."""
        ...
    def get_run(self, job_id: int) -> PipelineRun: ...
    def list_runs(
        self, *, project_id: int, pipeline_id: int | None = None, limit: int = 200
    ) -> builtins.list[PipelineRun]: ...
    def update_run(self, job_id: int, fields: dict[str, Any]) -> PipelineRun: ...
    def add_files(self, job_id: int, files: Sequence[RunFile]) -> None: ...
    def files(self, job_id: int, area: str) -> builtins.list[RunFile]: ...
    def file(self, job_id: int, area: str, path: str) -> RunFile: ...


class StatisticsStore(Protocol):
    """Statistics of model versions on dataset versions (BYOM COMPUTE_STATISTICS results)."""

    def add(
        self, *, model_version_id: int, dataset_version_id: int, job_id: int, folder: str,
        stats: dict[str, Any], actor: str,
    ) -> ModelStatistics: ...
    def latest(self, model_version_id: int, dataset_version_id: int | None = None) -> ModelStatistics:
        """The newest statistics of a version (on one dataset version if given); raises NotFound."""
        ...
    def history(self, model_version_id: int) -> builtins.list[ModelStatistics]:
        """Every statistics row of a version, oldest first."""
        ...


class JobStore(Protocol):
    def add(
        self, *, project_id: int, kind: JobKind, actor: str, parameters: dict[str, Any],
        target_type: str | None, target_id: int | None, timeout_seconds: float | None,
    ) -> Job:
        """Insert a job as ``created`` and move it to ``queued`` (two events)."""
        ...
    def get(self, job_id: int) -> Job: ...
    def list(
        self, *, project_id: int | None = None, kinds: Sequence[JobKind] = (),
        statuses: Sequence[JobStatus] = (), limit: int = 200,
    ) -> builtins.list[Job]: ...
    def transition(
        self, job_id: int, to: JobStatus, *, actor: str, detail: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Job:
        """Compare-and-set: move the job to ``to`` from any status the table allows, writing
        the event in the same transaction. Raises InvalidTransition if the row was not in an
        allowed status (the loser of a race)."""
        ...
    def claim_queued(
        self, *, actor: str, limit: int, engine: str | None = None,
        work_dirs: Callable[[int], str] | None = None,
    ) -> builtins.list[Job]:
        """Move up to ``limit`` of the oldest queued jobs to running, each as a compare-and-set,
        owned by ``engine`` with the working folder ``work_dirs(id)``, and return them (fewer
        than ``limit`` means the queue is drained)."""
        ...
    def lock_engine(self, name: str) -> Engine | None:
        """The engine row of ``name`` (with how long it has been silent, by the database's
        clock), locked until the transaction ends; None if no engine had that name."""
        ...
    def register_engine(
        self, *, name: str, instance: str, host: str, pid: int, process_started: float
    ) -> None:
        """Record that engine ``name`` now runs as ``instance`` (after ``lock_engine``)."""
        ...
    def beat(self, *, name: str, instance: str) -> bool:
        """Refresh the engine's heartbeat; False if another process took the name meanwhile."""
        ...
    def owned(self, engine: str) -> builtins.list[Job]:
        """Running and stopping jobs of ``engine``, after taking any claimed before engines had
        names."""
        ...
    def still_owned(self, engine: str, job_ids: Sequence[int]) -> set[int]: ...
    def orphaned(self, *, engine: str, lost_after: float) -> builtins.list[Job]:
        """Running and stopping jobs of other engines silent for ``lost_after`` seconds."""
        ...
    def adopt(self, job_id: int, *, from_engine: str, to_engine: str, lost_after: float) -> Job | None:
        """Take over a lost engine's job (compare-and-set on its owner, re-checking that the
        owner is still silent); None if another engine won or the owner came back."""
        ...
    def forget_engines(self, *, silent_for: float) -> int:
        """Delete the records of engines silent that long that hold no running job."""
        ...
    def record_worker(self, job_id: int, *, engine: str, worker_ref: str) -> bool:
        """Store the worker of a running job ``engine`` still holds; False if it does not."""
        ...
    def mark_finishing(self, job_id: int) -> bool:
        """Compare-and-set on a running job: its results are being registered, stops are
        refused from now on. False if it is no longer running."""
        ...
    def events(self, job_id: int) -> builtins.list[JobEvent]: ...
    def event(self, job_id: int, event_id: int) -> JobEvent: ...
    def append_logs(
        self, job_id: int, lines: Sequence[tuple[datetime, str, LogLevel, str]], *,
        cursor: str | None = None,
    ) -> None:
        """Number and store lines after the job's last one; ``cursor`` (the executor's read
        position) is saved in the same transaction, so a re-attached job repeats no line."""
        ...
    def log_cursor(self, job_id: int) -> str | None: ...
    def last_error(self, job_id: int) -> str | None:
        """Text of the job's last error-level log line, if any."""
        ...
    def logs(
        self, job_id: int, *, after_seq: int = 0, min_level: LogLevel | None = None, limit: int = 1000
    ) -> builtins.list[LogLine]: ...


class DeploymentStore(Protocol):
    """Deployments, their batch runs (scheduled ones unique per scheduled time) and their jobs."""

    def add(self, *, fields: dict[str, Any], actor: str) -> Deployment: ...
    def get_by_id(self, deployment_id: int) -> Deployment: ...
    def find(self, project_id: int, ref: str) -> Deployment:
        """By name, or by numeric id when no deployment has that name."""
        ...
    def list(
        self, project_id: int, *, package_id: int | None = None,
        status: DeploymentStatus | None = None,
    ) -> builtins.list[Deployment]: ...
    def lock_package(self, package_id: int) -> None:
        """Serialise deployment changes of one model until the transaction ends."""
        ...
    def set_deploy_job(self, deployment_id: int, job_id: int) -> None: ...
    def retire(self, deployment_id: int, *, actor: str, reason: str, job_id: int | None) -> Deployment:
        """Compare-and-set active → retired (InvalidTransition for the loser); ends the schedule."""
        ...
    def set_schedule(
        self, deployment_id: int, *, schedule: CronSchedule | None, next_run_at: datetime | None
    ) -> Deployment: ...
    def due(self, now: datetime, *, limit: int = 50) -> builtins.list[Deployment]: ...
    def advance(self, deployment_id: int, *, expected: datetime, next_run_at: datetime | None) -> bool:
        """Compare-and-set the next firing time; False if it was no longer ``expected``."""
        ...
    def add_run(
        self, *, project_id: int, deployment_id: int, job_id: int, trigger: BatchTrigger,
        scheduled_at: datetime | None, input_dataset_version_id: int | None,
        parameters: dict[str, Any],
    ) -> BatchRun:
        """Raises AlreadyExists if the deployment already has a run for ``scheduled_at``."""
        ...
    def get_run(self, job_id: int) -> BatchRun: ...
    def list_runs(self, deployment_id: int, *, limit: int = 200) -> builtins.list[BatchRun]: ...
    def update_run(self, job_id: int, fields: dict[str, Any]) -> BatchRun: ...
    def jobs(self, deployment_id: int, *, limit: int = 200) -> builtins.list[Job]: ...


class AuditStore(Protocol):
    """The append-only audit trail: there is no update and no delete."""

    def append(self, entry: AuditEntry) -> AuditEvent: ...
    def list(
        self, *, project_id: int, package_id: int | None = None,
        actions: Sequence[AuditAction] = (), since: datetime | None = None,
        until: datetime | None = None, after_id: int = 0, limit: int = 1000,
    ) -> builtins.list[AuditEvent]:
        """Oldest first, ids above ``after_id``."""
        ...


class UnitOfWork(Protocol):
    """One transaction; commit on clean exit, roll back on an exception."""

    # Read-only properties, so any class whose attributes are concrete stores satisfies them.
    @property
    def projects(self) -> ProjectStore: ...
    @property
    def tokens(self) -> TokenStore: ...
    @property
    def datasets(self) -> DatasetStore: ...
    @property
    def packages(self) -> PackageStore: ...
    @property
    def jobs(self) -> JobStore: ...
    @property
    def statistics(self) -> StatisticsStore: ...
    @property
    def pipelines(self) -> PipelineStore: ...
    @property
    def deployments(self) -> DeploymentStore: ...
    @property
    def audit(self) -> AuditStore: ...

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(self, exc_type: object, exc: object, tb: object) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


# --------------------------------------------------------------------------- executors


@dataclass(frozen=True)
class JobSpec:
    """Everything an executor needs to run one job's process; holds no secrets.

    ``argv`` may contain the literal ``{python}``: the interpreter of the package's environment
    (built from ``requirements`` inside the job's process, so the build is part of its logs)
    or, without requirements, the platform's own interpreter."""

    job_id: int
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    timeout_seconds: float | None = None
    requirements: Path | None = None


@dataclass(frozen=True)
class ExecutorOutcome:
    """How a job's process ended, as seen by the executor."""

    exit_code: int | None
    signal: int | None = None
    timed_out: bool = False
    cancelled: bool = False
    lost: bool = False  # the worker vanished without recording how it ended
    detail: str = ""


@dataclass(frozen=True)
class LogBatch:
    """Output lines read from a job, in order per stream, and where to read on from."""

    lines: list[tuple[str, str]]  # (stream, text): stream is "stdout" or "stderr"
    cursor: str  # opaque; store it with the lines and pass it back
    more: bool = False  # a read limit was hit: call again to drain


class Executor(Protocol):
    """Runs job processes: local subprocesses by default; a cluster engine behind the same calls.

    ``worker_ref`` is an opaque string the engine stores on the job row, so every call below
    must work with a ref from before a server restart."""

    def subscribe(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from any thread) when a job's process ends, so the engine need not
        wait for its next tick. Best effort: ``poll`` stays the source of truth."""
        ...

    def submit(self, spec: JobSpec) -> str:
        """Start the job's process in its own process group and working directory; return
        its worker_ref. Raises a ModelOpsError if it cannot start (e.g. unknown command)."""
        ...

    def poll(self, worker_ref: str) -> ExecutorOutcome | None:
        """None while the job runs, else how it ended (``lost`` if nobody can tell)."""
        ...

    def cancel(self, worker_ref: str) -> None:
        """Begin stopping the job's whole process tree; returns at once, ``poll`` reports the
        end. Terminates politely first and kills whatever is left after a short grace."""
        ...

    def recover(self, worker_ref: str) -> bool:
        """After a server restart: True if the job's process is still alive (the same process,
        not a reused pid) and now watched again."""
        ...

    def stream_logs(self, worker_ref: str, *, cursor: str | None, final: bool = False) -> LogBatch:
        """Complete output lines after ``cursor`` without blocking; ``final`` (after the end)
        also returns a last line that has no newline."""
        ...

    def release(self, worker_ref: str) -> None:
        """Forget a finished job and delete what the executor kept for it."""
        ...

    def forget(self, worker_ref: str) -> None:
        """Stop watching a job another engine has taken over; delete nothing of it."""
        ...

    def close(self) -> None:
        """The engine stops: let go of anything kept ready for future jobs (running jobs stay)."""
        ...
