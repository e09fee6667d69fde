"""Request and response bodies of the jobs API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobSubmit(BaseModel):
    kind: str = Field(description="job kind, e.g. 'script'")
    parameters: dict[str, Any] = Field(default_factory=dict, description="the kind's parameters")
    timeout_seconds: float | None = Field(
        default=None, gt=0, description="stop the job as timed_out after this long"
    )


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class JobRead(_Read):
    id: int
    project_id: int
    kind: str
    status: str
    actor: str
    parameters: dict[str, Any]
    target_type: str | None
    target_id: int | None
    timeout_seconds: float | None
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    signal: int | None
    error: str | None = Field(description="the last error, for a job that did not complete")
    result: dict[str, Any]
    terminal: bool
    engine: str | None = Field(
        default=None, description="the job engine (server process) that runs or ran the job"
    )


class JobEventRead(_Read):
    id: int
    job_id: int
    at: datetime
    from_status: str | None
    to_status: str
    actor: str
    detail: dict[str, Any]


class LogLineRead(_Read):
    seq: int
    at: datetime
    stream: str = Field(description="stdout, stderr or system (the engine's own lines)")
    level: str
    text: str
