"""Client methods for bring-your-own-model: ``client.models.import_model(...)``, statistics, and
the evaluation of any version (``client.models.evaluate(...)``, ``evaluation``, ``download_plot``)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from modelops.client.base import ClientBase
from modelops.client.jobs import Job
from modelops.client.resources import ProgressCallback, _archive_of, _local_source, _Resource, _seg


class ModelsApi(_Resource):
    def import_model(
        self, project: str, name: str, path: Path | str, *, format: str | None = None,
        task: str | None = None, features: list[str] | None = None, target: str | None = None,
        dataset: str | None = None, dataset_version: int | None = None, folder: str = "",
        sample_rows: int | None = None, description: str = "",
        timeout_seconds: float | None = None, progress: ProgressCallback | None = None,
    ) -> Job:
        """Upload a model file, or a folder (zipped on the fly, e.g. an MLflow model), and
        start its IMPORT job. Wait for it with ``client.jobs.wait(job["id"])``: its result
        names the new version, and the statistics job that follows when ``dataset`` is given."""
        source = _local_source(path)
        self._call("GET", f"/projects/{_seg(project)}")
        params: dict[str, Any] = {
            "format": format, "task": task, "features": ",".join(features) if features else None,
            "target": target, "dataset": dataset, "dataset_version": dataset_version,
            "folder": folder or None, "sample_rows": sample_rows, "description": description or None,
            "timeout_seconds": timeout_seconds,
        }
        with _archive_of(source, kind="zip") as archive:
            # The file's own name tells the server its format; a folder arrives as a zip.
            params["filename"] = source.name if source.is_file() else archive.name
            result: Job = self._upload(
                f"/projects/{_seg(project)}/models/{_seg(name)}/import", archive,
                params={k: str(v) for k, v in params.items() if v is not None},
                content_type="application/octet-stream", progress=progress,
            )
        return result

    def compute_statistics(
        self, project: str, name: str, version: str, *, dataset: str,
        dataset_version: int | None = None, folder: str = "", sample_rows: int | None = None,
        target: str | None = None, timeout_seconds: float | None = None,
    ) -> Job:
        """Start a COMPUTE_STATISTICS job of a version on a dataset version (default: latest)."""
        params: dict[str, Any] = {
            "dataset": dataset, "dataset_version": dataset_version, "folder": folder or None,
            "sample_rows": sample_rows, "target": target, "timeout_seconds": timeout_seconds,
        }
        result: Job = self._call(
            "POST", f"/projects/{_seg(project)}/packages/{_seg(name)}/versions/{_seg(version)}/statistics",
            params={k: v for k, v in params.items() if v is not None},
        )
        return result

    def statistics(
        self, project: str, name: str, version: str, *, dataset: str | None = None,
        dataset_version: int | None = None,
    ) -> dict[str, Any]:
        """The newest statistics of a version; ``statistics`` holds the documented JSON."""
        params = {k: v for k, v in {"dataset": dataset, "dataset_version": dataset_version}.items()
                  if v is not None}
        result: dict[str, Any] = self._call(
            "GET", f"/projects/{_seg(project)}/packages/{_seg(name)}/versions/{_seg(version)}/statistics",
            params=params,
        )
        return result


    def _version_path(self, project: str, name: str, version: str) -> str:
        return f"/projects/{_seg(project)}/packages/{_seg(name)}/versions/{_seg(version)}"

    def evaluate(
        self, project: str, name: str, version: str, *, dataset: str,
        dataset_version: int | None = None, folder: str = "", label: str | None = None,
        features: list[str] | None = None, task: str | None = None,
        timeout_seconds: float | None = None,
    ) -> Job:
        """Start the EVALUATION job of any version on a labelled dataset version (default:
        latest; ``label`` defaults to ``target``). Wait for it with ``client.jobs.wait``; its
        result holds the metrics, plots and champion comparison, as ``evaluation()`` does."""
        params: dict[str, Any] = {
            "dataset": dataset, "dataset_version": dataset_version, "folder": folder or None,
            "label": label, "features": ",".join(features) if features else None, "task": task,
            "timeout_seconds": timeout_seconds,
        }
        result: Job = self._call(
            "POST", self._version_path(project, name, version) + "/evaluate",
            params={k: v for k, v in params.items() if v is not None},
        )
        return result

    def evaluation(self, project: str, name: str, version: str) -> dict[str, Any]:
        """The version's latest evaluation report: metrics, evaluation, plots (with ``url``), champion."""
        result: dict[str, Any] = self._call("GET", self._version_path(project, name, version) + "/evaluation")
        return result

    def download_plot(self, project: str, name: str, version: str, plot: str, destination: Path | str) -> Path:
        """Save one plot of the latest evaluation (e.g. ``confusion_matrix.png``); ``destination``
        is a file or a folder."""
        return self._download(
            self._version_path(project, name, version) + f"/evaluation/plots/{_seg(plot)}", destination,
            params={}, fallback_name=plot, progress=None,
        )


class ModelsMixin(ClientBase):
    @cached_property
    def models(self) -> ModelsApi:
        return ModelsApi(self)
