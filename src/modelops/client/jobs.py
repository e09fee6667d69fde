"""Client methods for jobs: ``client.jobs.submit(...)``, ``.logs(...)``, ``.follow_logs(...)``."""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Iterator
from functools import cached_property
from typing import Any, TypedDict

import httpx

from modelops.client.base import ApiError, ClientBase
from modelops.client.resources import _Resource, _seg, _transport_errors

# A followed log stream may stay quiet for as long as the job does.
FOLLOW_TIMEOUT = httpx.Timeout(60.0, read=None)
TERMINAL = frozenset({"completed", "failed", "timed_out", "cancelled"})


class Job(TypedDict):
    id: int
    project_id: int
    kind: str
    status: str
    actor: str
    parameters: dict[str, Any]
    target_type: str | None
    target_id: int | None
    timeout_seconds: float | None
    created_at: str
    queued_at: str | None
    started_at: str | None
    ended_at: str | None
    exit_code: int | None
    signal: int | None
    error: str | None
    result: dict[str, Any]
    terminal: bool
    engine: str | None


class JobEvent(TypedDict):
    id: int
    job_id: int
    at: str
    from_status: str | None
    to_status: str
    actor: str
    detail: dict[str, Any]


class LogLine(TypedDict):
    seq: int
    at: str
    stream: str
    level: str
    text: str


class JobsResource(_Resource):
    def submit(
        self, project: str, kind: str, parameters: dict[str, Any] | None = None, *,
        timeout_seconds: float | None = None,
    ) -> Job:
        body = {"kind": kind, "parameters": parameters or {}, "timeout_seconds": timeout_seconds}
        result: Job = self._call("POST", f"/projects/{_seg(project)}/jobs", json=body)
        return result

    def run_script(
        self, project: str, package: str, version: str, command: builtins.list[str], *,
        timeout_seconds: float | None = None,
    ) -> Job:
        """Run a command of a package version (``python`` means its environment's interpreter)."""
        parameters = {"package": package, "version": version, "command": command}
        return self.submit(project, "script", parameters, timeout_seconds=timeout_seconds)

    def list(
        self, project: str, *, kinds: builtins.list[str] | None = None,
        statuses: builtins.list[str] | None = None, limit: int = 200,
    ) -> builtins.list[Job]:
        params: dict[str, Any] = {"kind": kinds or [], "status": statuses or [], "limit": limit}
        result: builtins.list[Job] = self._call(
            "GET", f"/projects/{_seg(project)}/jobs", params=params
        )["data"]
        return result

    def get(self, job_id: int) -> Job:
        result: Job = self._call("GET", f"/jobs/{int(job_id)}")
        return result

    def wait(self, job_id: int, *, timeout: float = 120.0, interval: float = 0.1) -> Job:
        """Poll until the job has ended; ApiError(0, ...) if it has not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["status"] in TERMINAL:
                return job
            if time.monotonic() > deadline:
                raise ApiError(0, f"job {job_id} is still {job['status']} after {timeout:g} s")
            time.sleep(interval)

    def events(self, job_id: int) -> builtins.list[JobEvent]:
        result: builtins.list[JobEvent] = self._call("GET", f"/jobs/{int(job_id)}/events")["data"]
        return result

    def event(self, job_id: int, event_id: int) -> JobEvent:
        result: JobEvent = self._call("GET", f"/jobs/{int(job_id)}/events/{int(event_id)}")
        return result

    def logs(
        self, job_id: int, *, after: int = 0, level: str | None = None, limit: int = 1000
    ) -> builtins.list[LogLine]:
        params: dict[str, Any] = {"after": after, "limit": limit}
        if level:
            params["level"] = level
        result: builtins.list[LogLine] = self._call(
            "GET", f"/jobs/{int(job_id)}/logs", params=params
        )["data"]
        return result

    def follow_logs(
        self, job_id: int, *, after: int = 0, level: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield records as the server stores them: ``{"type": "log", ...line}``, and last
        ``{"type": "end", "status": ..., "error": ...}`` when the job has ended."""
        params: dict[str, Any] = {"after": after}
        if level:
            params["level"] = level
        path = f"/jobs/{int(job_id)}/logs/stream"
        with (
            _transport_errors(self.client.url),
            self.client.http.stream("GET", path, params=params, timeout=FOLLOW_TIMEOUT) as response,
        ):
            if not response.is_success:
                response.read()
                self.client.check(response)
            for raw in response.iter_lines():
                if raw.strip():
                    yield json.loads(raw)

    def stop(self, job_id: int) -> Job:
        result: Job = self._call("POST", f"/jobs/{int(job_id)}/stop")
        return result

    def stop_all(self, project: str) -> builtins.list[Job]:
        """Stop every queued and running job of a project; returns the jobs stopped."""
        result: builtins.list[Job] = self._call("POST", f"/projects/{_seg(project)}/jobs/stop")["data"]
        return result


class JobsApi(ClientBase):
    @cached_property
    def jobs(self) -> JobsResource:
        return JobsResource(self)
