"""Ports: what services need from storage, artifacts and executors. Adapters implement them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from modelops.domain.entities import (
    ApiToken,
    Dataset,
    DatasetVersion,
    ManifestEntry,
    ModelPackage,
    ModelVersion,
    Project,
)
from modelops.domain.jobs import Job, JobEvent, JobKind, JobStatus, LogLevel, LogLine
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
    def list(self) -> list[Project]: ...
    def delete(self, project_id: int) -> None: ...
    def is_empty(self, project_id: int) -> bool: ...


class TokenStore(Protocol):
    def add(self, *, name: str, role: Role, token_hash: str, actor: str) -> ApiToken: ...
    def find_by_hash(self, token_hash: str) -> ApiToken | None: ...
    def get(self, token_id: int) -> ApiToken: ...
    def list(self) -> list[ApiToken]: ...
    def revoke(self, token_id: int) -> ApiToken: ...
    def count(self) -> int: ...


class DatasetStore(Protocol):
    def add(self, *, project_id: int, name: str, description: str, actor: str) -> Dataset: ...
    def get(self, project_id: int, name: str) -> Dataset: ...
    def list(self, project_id: int) -> list[Dataset]: ...
    def add_version(
        self, *, dataset_id: int, files: Sequence[ManifestEntry], content_hash: str,
        note: str, actor: str,
    ) -> DatasetVersion:
        """Allocate the next version number atomically and store the manifest."""
        ...
    def get_version(self, dataset_id: int, version: int, *, with_files: bool = True) -> DatasetVersion: ...
    def get_version_by_id(self, version_id: int, *, with_files: bool = True) -> DatasetVersion: ...
    def list_versions(self, dataset_id: int) -> list[DatasetVersion]: ...


class PackageStore(Protocol):
    def add(self, *, project_id: int, name: str, description: str, actor: str) -> ModelPackage: ...
    def get(self, project_id: int, name: str) -> ModelPackage: ...
    def get_or_add(self, *, project_id: int, name: str, actor: str) -> ModelPackage: ...
    def list(self, project_id: int) -> list[ModelPackage]: ...
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
    def list_versions(self, package_id: int) -> list[ModelVersion]: ...


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
    ) -> list[Job]: ...
    def transition(
        self, job_id: int, to: JobStatus, *, actor: str, detail: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Job:
        """Compare-and-set: move the job to ``to`` from any status the table allows, writing
        the event in the same transaction. Raises InvalidTransition if the row was not in an
        allowed status (the loser of a race)."""
        ...
    def update_fields(self, job_id: int, fields: dict[str, Any]) -> None: ...
    def claim_next_queued(self, *, actor: str, exclude_kinds: Sequence[JobKind] = ()) -> Job | None:
        """Atomically move the oldest queued job to running and return it (None if none)."""
        ...
    def events(self, job_id: int) -> list[JobEvent]: ...
    def event(self, job_id: int, event_id: int) -> JobEvent: ...
    def append_logs(self, job_id: int, lines: Sequence[tuple[datetime, str, LogLevel, str]]) -> None: ...
    def logs(
        self, job_id: int, *, after_seq: int = 0, min_level: LogLevel | None = None, limit: int = 1000
    ) -> list[LogLine]: ...


class UnitOfWork(Protocol):
    """One transaction; commit on clean exit, roll back on an exception."""

    projects: ProjectStore
    tokens: TokenStore
    datasets: DatasetStore
    packages: PackageStore
    jobs: JobStore

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(self, *exc: object) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


# --------------------------------------------------------------------------- executors


@dataclass(frozen=True)
class JobSpec:
    """Everything an executor needs to run one job's process; holds no secrets."""

    job_id: int
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class ExecutorOutcome:
    """How a job's process ended, as seen by the executor."""

    exit_code: int | None
    signal: int | None = None
    timed_out: bool = False
    cancelled: bool = False
    lost: bool = False  # the worker vanished and cannot be re-attached
    detail: str = ""


class Executor(Protocol):
    """Runs job processes. Local subprocesses by default; a cluster engine behind the same calls."""

    def submit(self, spec: JobSpec) -> str:
        """Start the job; return a handle (worker_ref) that survives a server restart."""
        ...

    def poll(self, worker_ref: str) -> ExecutorOutcome | None:
        """None while running, else how it ended."""
        ...

    def cancel(self, worker_ref: str) -> None:
        """Stop the job's whole process tree."""
        ...

    def recover(self, worker_ref: str) -> bool:
        """After a server restart: True if the job's process is still alive and re-attached."""
        ...

    def stream_logs(self, worker_ref: str) -> Iterator[tuple[str, str]]:
        """Yield (stream, line) pairs not yet read, without blocking."""
        ...
