"""Words and links the pages show for jobs, statuses and versions (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelops.domain.jobs import Job, JobKind, JobStatus
from modelops.web.rendering import segment

KIND_LABELS: dict[str, str] = {
    JobKind.TRAINING: "Training",
    JobKind.EVALUATION: "Evaluation",
    JobKind.FULL_PIPELINE: "Full pipeline",
    JobKind.APPROVAL: "Approval",
    JobKind.REJECTION: "Rejection",
    JobKind.DEPLOYMENT: "Deployment",
    JobKind.RETIREMENT: "Retirement",
    JobKind.IMPORT: "Import",
    JobKind.COMPUTE_STATISTICS: "Compute statistics",
    JobKind.BATCH_PREDICTION: "Batch prediction",
    JobKind.SCRIPT: "Script",
}
PIPELINE_KINDS = frozenset({JobKind.TRAINING, JobKind.EVALUATION, JobKind.FULL_PIPELINE})
ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING, JobStatus.CREATED})


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, str(kind).replace("_", " ").capitalize())


@dataclass(frozen=True)
class Link:
    text: str
    url: str | None = None


def version_url(project: str, package: str, version: str) -> str:
    return f"/ui/projects/{segment(project)}/packages/{segment(package)}/versions/{segment(version)}"


def job_url(project: str, job_id: int) -> str:
    return f"/ui/projects/{segment(project)}/jobs/{job_id}"


def job_target(project: str, job: Job) -> Link:
    """What a job works on, in words, linked to its page where there is one."""
    params: dict[str, Any] = job.parameters or {}
    package, version = params.get("package"), params.get("version")
    if isinstance(package, str) and isinstance(version, str) and version:
        return Link(f"{package} {version}", version_url(project, package, version))
    if job.kind == JobKind.IMPORT and isinstance(package, str):
        made = (job.result or {}).get("version")
        if isinstance(made, str):
            return Link(f"{package} {made}", version_url(project, package, made))
        return Link(f"{package} (new version)")
    if job.target_type == "deployment" and job.target_id is not None:
        return Link(
            f"deployment {job.target_id}",
            f"/ui/projects/{segment(project)}/deployments/{job.target_id}",
        )
    if job.target_type and job.target_id is not None:
        return Link(f"{job.target_type.replace('_', ' ')} {job.target_id}")
    return Link("—")


def run_url(project: str, job: Job) -> str | None:
    """The pipeline run page of a pipeline job (its artifacts and _results.json)."""
    if job.kind in PIPELINE_KINDS:
        return f"/ui/projects/{segment(project)}/runs/{job.id}"
    return None
