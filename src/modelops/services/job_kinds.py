"""How a job kind plugs into the one job engine.

The engine owns statuses, processes, logs, timeouts, stop and recovery. A kind only says how to
prepare its process (server side: materialise inputs into the job's working folder, no user
code) and what to register when that process succeeds (outputs, new versions). User code runs
only in the job's process, through ``modelops.runtime``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from modelops.domain.jobs import Job, JobKind


@dataclass(frozen=True)
class PreparedJob:
    """What the job's process runs. ``argv[0]`` may be the literal ``{python}``: the engine
    replaces it with the interpreter of the package's environment (built from
    ``requirements`` inside the job process, logged as part of the job), or the platform's."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    requirements: Path | None = None


class JobKindHandler(Protocol):
    kind: JobKind

    def prepare(self, job: Job, workdir: Path) -> PreparedJob:
        """Materialise inputs under ``workdir``; raise a ModelOpsError to fail the job early."""
        ...

    def finish(self, job: Job, workdir: Path) -> dict[str, Any]:
        """After a clean exit: store outputs and register what the job produced; the returned
        dict becomes the job's ``result``. Raising fails the job with the error's message and
        must leave nothing registered. Not called for failed, timed-out or cancelled jobs."""
        ...


@dataclass(frozen=True)
class CheckedParameters:
    """A kind's verdict on submitted parameters: normalised, plus the job's target if any."""

    parameters: dict[str, Any]
    target_type: str | None = None  # "model_version" | "deployment" | "dataset_version"
    target_id: int | None = None


class ValidatingJobKindHandler(JobKindHandler, Protocol):
    """Optional: a handler that also has ``validate`` checks parameters at submit time, so bad
    input is refused with a 4xx before a job exists (otherwise it fails in ``prepare``)."""

    def validate(self, *, project_id: int, parameters: dict[str, Any]) -> CheckedParameters:
        """Raise InvalidInput / NotFound with a clear message, or return what to store."""
        ...


class JobKindRegistry:
    def __init__(self) -> None:
        self._handlers: dict[JobKind, JobKindHandler] = {}

    def register(self, handler: JobKindHandler) -> None:
        self._handlers[handler.kind] = handler

    def get(self, kind: JobKind) -> JobKindHandler | None:
        return self._handlers.get(kind)

    def kinds(self) -> list[JobKind]:
        return list(self._handlers)
