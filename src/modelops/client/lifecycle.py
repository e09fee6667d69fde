"""Client methods for the lifecycle: ``client.lifecycle.approve(...)``, ``client.deployments``
(deploy, retire, schedule, Run now, runs, Jobs tab) and ``client.audit`` (list, export, deployed
at a time). Results are the server's JSON as dicts."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from modelops.client.base import ClientBase
from modelops.client.resources import TRANSFER_TIMEOUT, _Resource, _seg, _transport_errors

Record = dict[str, Any]


def _when(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class LifecycleApi(_Resource):
    def _version(self, project: str, package: str, version: str) -> str:
        return f"/projects/{_seg(project)}/packages/{_seg(package)}/versions/{_seg(version)}"

    def approve(self, project: str, package: str, version: str, *, reason: str) -> Record:
        """Approve an evaluated version; returns ``{"job": ..., "version": ...}``."""
        result: Record = self._call("POST", self._version(project, package, version) + "/approve",
                                    json={"reason": reason})
        return result

    def reject(self, project: str, package: str, version: str, *, reason: str) -> Record:
        result: Record = self._call("POST", self._version(project, package, version) + "/reject",
                                    json={"reason": reason})
        return result

    def champion(self, project: str, package: str) -> Record:
        """``{"package", "champion": version or None, "deployment": ... or None}``."""
        result: Record = self._call("GET", f"/projects/{_seg(project)}/packages/{_seg(package)}/champion")
        return result


class DeploymentsApi(_Resource):
    @staticmethod
    def _base(project: str, deployment: str | int | None = None) -> str:
        path = f"/projects/{_seg(project)}/deployments"
        return path if deployment is None else f"{path}/{_seg(deployment)}"

    def create(
        self, project: str, package: str, version: str, *, name: str | None = None,
        replace: bool = False, side_by_side: bool = False, reason: str = "",
        dataset: str | None = None, dataset_version: int | None = None, folder: str = "",
        output_dataset: str | None = None, chunk_rows: int | None = None,
        cron: str | None = None, timezone: str | None = None, description: str = "",
        mode: str = "batch",
    ) -> Record:
        """Deploy an approved version; returns ``{"deployment", "job", "replaced", "retirement_job"}``."""
        body = {
            "package": package, "version": version, "name": name, "mode": mode, "replace": replace,
            "side_by_side": side_by_side, "reason": reason, "description": description,
            "dataset": dataset, "dataset_version": dataset_version, "folder": folder,
            "output_dataset": output_dataset, "chunk_rows": chunk_rows, "cron": cron,
            "timezone": timezone,
        }
        result: Record = self._call("POST", self._base(project), json=body)
        return result

    def list(self, project: str, *, package: str | None = None, status: str | None = None) -> builtins.list[Record]:
        params = {k: v for k, v in {"package": package, "status": status}.items() if v}
        result: builtins.list[Record] = self._call("GET", self._base(project), params=params)["data"]
        return result

    def get(self, project: str, deployment: str | int) -> Record:
        result: Record = self._call("GET", self._base(project, deployment))
        return result

    def retire(self, project: str, deployment: str | int, *, reason: str) -> Record:
        """Returns ``{"deployment", "job"}``."""
        result: Record = self._call("POST", self._base(project, deployment) + "/retire", json={"reason": reason})
        return result

    def jobs(self, project: str, deployment: str | int, *, limit: int = 200) -> builtins.list[Record]:
        """The deployment's Jobs tab, newest first."""
        result: builtins.list[Record] = self._call(
            "GET", self._base(project, deployment) + "/jobs", params={"limit": limit}
        )["data"]
        return result

    def schedule(self, project: str, deployment: str | int, *, count: int = 5) -> Record:
        """The schedule and its next ``count`` firing times (``upcoming``, UTC)."""
        result: Record = self._call("GET", self._base(project, deployment) + "/schedule", params={"count": count})
        return result

    def set_schedule(self, project: str, deployment: str | int, cron: str, *, timezone: str | None = None) -> Record:
        result: Record = self._call(
            "PUT", self._base(project, deployment) + "/schedule", json={"cron": cron, "timezone": timezone}
        )
        return result

    def clear_schedule(self, project: str, deployment: str | int) -> Record:
        result: Record = self._call("DELETE", self._base(project, deployment) + "/schedule")
        return result

    def run_now(
        self, project: str, deployment: str | int, *, dataset: str | None = None,
        dataset_version: int | None = None, folder: str | None = None,
        timeout_seconds: float | None = None,
    ) -> Record:
        """Start a batch prediction now; returns ``{"run", "job"}``."""
        body = {"dataset": dataset, "dataset_version": dataset_version, "folder": folder,
                "timeout_seconds": timeout_seconds}
        result: Record = self._call("POST", self._base(project, deployment) + "/runs", json=body)
        return result

    def runs(self, project: str, deployment: str | int, *, limit: int = 200) -> builtins.list[Record]:
        result: builtins.list[Record] = self._call(
            "GET", self._base(project, deployment) + "/runs", params={"limit": limit}
        )["data"]
        return result

    def run(self, project: str, deployment: str | int, job_id: int) -> Record:
        """One run and its job: ``{"run": {..., "drift"}, "job": {...}}``."""
        result: Record = self._call("GET", self._base(project, deployment) + f"/runs/{int(job_id)}")
        return result


class AuditApi(_Resource):
    @staticmethod
    def _params(package: str | None, actions: builtins.list[str] | None,
                since: datetime | str | None, until: datetime | str | None) -> Record:
        params: Record = {"package": package, "action": actions or [], "since": _when(since),
                          "until": _when(until)}
        return {k: v for k, v in params.items() if v not in (None, [])}

    def list(
        self, project: str, *, package: str | None = None, actions: builtins.list[str] | None = None,
        since: datetime | str | None = None, until: datetime | str | None = None,
        after: int = 0, limit: int = 1000,
    ) -> builtins.list[Record]:
        params = {**self._params(package, actions, since, until), "after": after, "limit": limit}
        result: builtins.list[Record] = self._call("GET", f"/projects/{_seg(project)}/audit", params=params)["data"]
        return result

    def export_chunks(
        self, project: str, *, format: str = "csv", package: str | None = None,
        actions: builtins.list[str] | None = None, since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> Iterator[bytes]:
        """The export as it streams from the server."""
        params = {**self._params(package, actions, since, until), "format": format}
        path = f"/projects/{_seg(project)}/audit/export"
        with (
            _transport_errors(self.client.url),
            self.client.http.stream("GET", path, params=params, timeout=TRANSFER_TIMEOUT) as response,
        ):
            if not response.is_success:
                response.read()
                self.client.check(response)
            yield from response.iter_bytes()

    def export(self, project: str, destination: Path | str, **options: Any) -> Path:
        """Write the export to ``destination`` (complete, or not at all)."""
        target = Path(destination).expanduser()
        part = target.with_name(f".{target.name}.part")
        try:
            with open(part, "wb") as handle:
                for chunk in self.export_chunks(project, **options):
                    handle.write(chunk)
            part.replace(target)
        finally:
            part.unlink(missing_ok=True)
        return target

    def deployed_at(self, project: str, package: str, at: datetime | str | None = None) -> Record:
        """Which version(s) of ``package`` were deployed at ``at`` (default now)."""
        params = {k: v for k, v in {"package": package, "at": _when(at)}.items() if v}
        result: Record = self._call("GET", f"/projects/{_seg(project)}/audit/deployed-at", params=params)
        return result


class LifecycleMixin(ClientBase):
    @cached_property
    def lifecycle(self) -> LifecycleApi:
        return LifecycleApi(self)

    @cached_property
    def deployments(self) -> DeploymentsApi:
        return DeploymentsApi(self)

    @cached_property
    def audit(self) -> AuditApi:
        return AuditApi(self)
