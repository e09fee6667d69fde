"""The BATCH_PREDICTION job kind: what the engine prepares for a batch run and registers after.

``prepare`` (server side, no user code, no model loading) copies the deployed version's files,
the input dataset version's CSV/Parquet files and the version's reference statistics (if any)
into the job's folder and runs ``modelops.runtime.batch_predict`` there. ``finish`` (clean exit
only) stores the predictions file, then in one transaction adds it as a new version of the
output dataset (its note names the job) and records rows and drift on the run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from modelops.archives import ArchiveLimits
from modelops.domain.byom import scoring_spec
from modelops.domain.entities import Dataset, ManifestEntry
from modelops.domain.errors import AlreadyExists, InvalidInput, NotFound
from modelops.domain.jobs import Job, JobKind
from modelops.domain.manifest import manifest_hash
from modelops.ports import ArtifactStore, UnitOfWork, UnitOfWorkFactory
from modelops.services.byom_kinds import (
    data_entries,
    is_imported,
)
from modelops.services.job_files import fetch_entries, read_job_json, runtime_argv, unpack_blob
from modelops.services.job_kinds import CheckedParameters, PreparedJob

OUTPUT_FILE = "predictions.parquet"
MAX_SUMMARY_BYTES = 16 * 1024 * 1024


def drift_summary(drift: Any) -> dict[str, Any] | None:
    """The few drift figures shown on the job itself; the full document is on the run."""
    if not isinstance(drift, dict):
        return None
    worst = drift.get("max_psi")
    drifted = drift.get("drifted_features")
    return {
        "max_psi": worst if isinstance(worst, int | float) and math.isfinite(worst) else None,
        "drifted_features": [str(f) for f in drifted][:100] if isinstance(drifted, list) else [],
        "sample_rows": drift.get("sample_rows") if isinstance(drift.get("sample_rows"), int) else None,
        "prediction_psi": (drift.get("predictions") or {}).get("psi")
        if isinstance(drift.get("predictions"), dict) else None,
    }


class BatchPredictionKind:
    kind = JobKind.BATCH_PREDICTION

    def __init__(self, *, uow: UnitOfWorkFactory, artifacts: ArtifactStore, limits: ArchiveLimits) -> None:
        self.uow = uow
        self.artifacts = artifacts
        self.limits = limits

    def validate(self, *, project_id: int, parameters: dict[str, Any]) -> CheckedParameters:
        raise InvalidInput(
            "batch predictions run for a deployment: POST /projects/{project}/deployments/"
            "{deployment}/runs (CLI: modelops deployments run), or give the deployment a schedule"
        )

    def prepare(self, job: Job, workdir: Path) -> PreparedJob:
        params = job.parameters
        with self.uow() as uow:
            version = uow.packages.get_version_by_id(int(params["model_version_id"]))
            data = uow.datasets.get_version_by_id(int(params["dataset_version_id"]))
            try:
                reference: dict[str, Any] | None = uow.statistics.latest(version.id).stats
            except NotFound:
                reference = None
        model_dir, data_dir = workdir / "model", workdir / "data"
        unpack_blob(self.artifacts, version.zip_sha256, model_dir, self.limits)
        requirements = None
        if not is_imported(version):  # an ML package scores with its own environment
            code = model_dir.joinpath(*version.code_root.split("/")) if version.code_root else model_dir
            if (code / "requirements.txt").is_file():
                requirements = code / "requirements.txt"
        entries = data_entries(data, params.get("folder", ""))
        if not entries:
            raise InvalidInput(f"dataset '{params['dataset']}' version {params['dataset_version']} "
                               "has no CSV or Parquet file to score")
        fetch_entries(self.artifacts, entries, data_dir)
        (workdir / "spec.json").write_text(json.dumps(scoring_spec(version.lineage, version.code_root)),
                                           encoding="utf-8")
        (workdir / "output").mkdir()
        options: dict[str, Path | str | int] = {
            "model_dir": model_dir, "spec": workdir / "spec.json", "data": data_dir,
            "out": workdir / "output" / OUTPUT_FILE, "summary": workdir / "summary.json",
            "job_id": job.id, "chunk_rows": int(params.get("chunk_rows") or 50_000),
        }
        if reference is not None:
            (workdir / "reference.json").write_text(json.dumps(reference), encoding="utf-8")
            options["reference"] = workdir / "reference.json"
        return PreparedJob(argv=runtime_argv("batch_predict", **options), requirements=requirements)

    def finish(self, job: Job, workdir: Path) -> dict[str, Any]:
        params = job.parameters
        # The process ran the user's model: what it wrote is checked, not trusted.
        summary = read_job_json(workdir / "summary.json", limit=MAX_SUMMARY_BYTES, what="batch summary")
        rows = summary.get("rows") if isinstance(summary, dict) else None
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise InvalidInput("the batch prediction ended without a valid summary")
        output = workdir / "output" / OUTPUT_FILE
        if output.is_symlink() or not output.is_file():
            raise InvalidInput("the batch prediction ended without writing its predictions")
        drift = summary.get("drift") if isinstance(summary.get("drift"), dict) else None
        blob = self.artifacts.put_file(output)
        files = [ManifestEntry(path=OUTPUT_FILE, size=blob.size, sha256=blob.sha256)]
        source = f"dataset '{params['dataset']}' version {params['dataset_version']}"
        if params.get("folder"):
            source += f" (folder '{params['folder']}')"
        note = (f"batch prediction job {job.id}: deployment '{params['deployment']}' "
                f"({params['package']} {params['version']}) on {source}")
        with self.uow() as uow:
            dataset = self._output_dataset(uow, job.project_id, params["output_dataset"], job.actor)
            added = uow.datasets.add_version(
                dataset_id=dataset.id, files=files, content_hash=manifest_hash(files), note=note,
                actor=job.actor,
            )
            uow.deployments.update_run(job.id, {
                "output_dataset_version_id": added.id, "output_version": added.version,
                "rows": rows, "drift": drift,
            })
        return {
            "deployment": params["deployment"], "package": params["package"],
            "version": params["version"], "rows": rows,
            "input": {"dataset": params["dataset"], "version": params["dataset_version"],
                      "folder": params.get("folder", "")},
            "output": {"dataset": params["output_dataset"], "version": added.version,
                       "file": OUTPUT_FILE, "size": blob.size},
            "drift": drift_summary(drift),
        }

    @staticmethod
    def _output_dataset(uow: UnitOfWork, project_id: int, name: str, actor: str) -> Dataset:
        try:
            return uow.datasets.get(project_id, name)
        except NotFound:
            try:
                return uow.datasets.add(
                    project_id=project_id, name=name,
                    description="predictions written by batch prediction jobs", actor=actor,
                )
            except AlreadyExists:  # a concurrent run created it first
                return uow.datasets.get(project_id, name)
