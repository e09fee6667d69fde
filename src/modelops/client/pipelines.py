"""Client methods for pipelines and their runs (``client.pipelines.create(...)``)."""

from __future__ import annotations

import builtins
import time
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from modelops.client.base import ApiError, ClientBase
from modelops.client.resources import _Resource, _seg

Record = dict[str, Any]
FINAL_RUN_STATUSES = frozenset({"Successful", "Failed", "Killed"})


class PipelinesApi(_Resource):
    @staticmethod
    def _base(project: str) -> str:
        return f"/projects/{_seg(project)}"

    def create(
        self, project: str, name: str, *, type: str, package: str, version: str, dataset: str,
        dataset_version: int | None = None, folder: str = "",
        evaluation_dataset: str | None = None, evaluation_dataset_version: int | None = None,
        evaluation_folder: str = "", parameters: dict[str, Any] | None = None, gpu: bool = False,
        schedule: str = "now", run_at: datetime | str | None = None, cron: str | None = None,
        timeout_seconds: float | None = None, description: str = "",
    ) -> Record:
        """Save a pipeline; with ``schedule='now'`` the answer's ``run`` is its first run."""
        body: Record = {
            "name": name, "type": type, "package": package, "version": version,
            "dataset": dataset, "dataset_version": dataset_version, "folder": folder,
            "evaluation_dataset": evaluation_dataset,
            "evaluation_dataset_version": evaluation_dataset_version,
            "evaluation_folder": evaluation_folder, "parameters": parameters or {}, "gpu": gpu,
            "schedule": schedule,
            "run_at": run_at.isoformat() if isinstance(run_at, datetime) else run_at,
            "cron": cron, "timeout_seconds": timeout_seconds, "description": description,
        }
        result: Record = self._call("POST", self._base(project) + "/pipelines", json=body)
        return result

    def list(self, project: str) -> builtins.list[Record]:
        result: builtins.list[Record] = self._call("GET", self._base(project) + "/pipelines")["data"]
        return result

    def get(self, project: str, name: str) -> Record:
        result: Record = self._call("GET", f"{self._base(project)}/pipelines/{_seg(name)}")
        return result

    def delete(self, project: str, name: str) -> None:
        """Remove a pipeline and its schedule; its runs stay on record."""
        self._call("DELETE", f"{self._base(project)}/pipelines/{_seg(name)}")

    def run(self, project: str, name: str) -> Record:
        """Run a saved pipeline now; returns the new run."""
        result: Record = self._call("POST", f"{self._base(project)}/pipelines/{_seg(name)}/runs")
        return result

    def runs(self, project: str, pipeline: str | None = None) -> builtins.list[Record]:
        params = {"pipeline": pipeline} if pipeline else {}
        result: builtins.list[Record] = self._call(
            "GET", self._base(project) + "/pipeline-runs", params=params
        )["data"]
        return result

    def get_run(self, project: str, job_id: int) -> Record:
        result: Record = self._call("GET", f"{self._base(project)}/pipeline-runs/{_seg(job_id)}")
        return result

    def wait_run(
        self, project: str, job_id: int, *, timeout: float = 3600.0, poll: float = 0.5
    ) -> Record:
        """Poll a run until it is Successful, Failed or Killed; returns its details."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get_run(project, job_id)
            if run["status"] in FINAL_RUN_STATUSES:
                return run
            if time.monotonic() > deadline:
                raise ApiError(0, f"run {job_id} is still {run['status']} after {timeout:g} s")
            time.sleep(poll)

    def _files(self, project: str, job_id: int, segment: str, folder: str) -> builtins.list[Record]:
        params = {"folder": folder} if folder else {}
        result: builtins.list[Record] = self._call(
            "GET", f"{self._base(project)}/pipeline-runs/{_seg(job_id)}/{segment}", params=params
        )["data"]
        return result

    def artifacts(self, project: str, job_id: int, folder: str = "") -> builtins.list[Record]:
        return self._files(project, job_id, "artifacts", folder)

    def train_data(self, project: str, job_id: int, folder: str = "") -> builtins.list[Record]:
        return self._files(project, job_id, "train-data", folder)

    def download_artifact(
        self, project: str, job_id: int, path: str, destination: Path | str, *,
        train_data: bool = False,
    ) -> Path:
        """Save one artifact (or snapshot file); ``destination`` is a file or a folder."""
        segment = "train-data" if train_data else "artifacts"
        quoted = "/".join(_seg(part) for part in path.strip("/").split("/"))
        return self._download(
            f"{self._base(project)}/pipeline-runs/{_seg(job_id)}/{segment}/{quoted}", destination,
            params={}, fallback_name=path.rsplit("/", 1)[-1] or "artifact", progress=None,
        )

    def download_results(self, project: str, job_id: int, destination: Path | str) -> Path:
        return self._download(
            f"{self._base(project)}/pipeline-runs/{_seg(job_id)}/results", destination,
            params={}, fallback_name="_results.json", progress=None,
        )

    def results(self, project: str, job_id: int) -> Record:
        """The run's ``_results.json``, parsed."""
        result: Record = self._call("GET", f"{self._base(project)}/pipeline-runs/{_seg(job_id)}/results")
        return result


class PipelinesMixin(ClientBase):
    @cached_property
    def pipelines(self) -> PipelinesApi:
        return PipelinesApi(self)
