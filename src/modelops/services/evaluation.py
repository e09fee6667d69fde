"""Evaluate any model version (imported, trained or uploaded) on a labelled dataset, and read
the latest evaluation report: metrics by task, plots, and the comparison with the champion.

An evaluation is one EVALUATION job (``services.evaluation_kind``): it scores the dataset's rows
in its own process, and only when it succeeds is the report stored on the version, which moves
to ``evaluated`` and can then be approved. The report is the version's ``metrics`` (format in
docs/evaluation.md); its plots are stored by content and read through ``open_plot``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, BinaryIO

from modelops.domain.entities import Principal
from modelops.domain.errors import NotFound
from modelops.domain.jobs import Job, JobKind
from modelops.domain.versions import parse_version
from modelops.ports import ArtifactStore, UnitOfWorkFactory
from modelops.services.jobs import JobService


@dataclass(frozen=True)
class EvaluationReport:
    """The latest evaluation of a version, read from its metrics."""

    package: str
    version: str
    status: str
    metrics: dict[str, Any]  # the task's metrics (and ``score``: the package's own evaluate())
    evaluation: dict[str, Any]  # where they come from: job, dataset, label, task, time, actor
    plots: list[dict[str, Any]] = field(default_factory=list)  # name, media_type, size, sha256
    champion: dict[str, Any] | None = None  # the comparison made when it was evaluated


class EvaluationService:
    def __init__(self, *, uow: UnitOfWorkFactory, artifacts: ArtifactStore, jobs: JobService) -> None:
        self.uow = uow
        self.artifacts = artifacts
        self.jobs = jobs

    def submit(
        self, *, principal: Principal, project: str, name: str, version: str, dataset: str,
        dataset_version: int | None = None, folder: str = "", label: str | None = None,
        features: str | list[str] | None = None, task: str | None = None,
        timeout_seconds: float | None = None,
    ) -> Job:
        """Start the EVALUATION job of a version on a dataset version (default: its latest);
        ``label`` names the column of true values (default ``target``). Bad requests are
        refused here, before a job exists."""
        parameters: dict[str, Any] = {"package": name, "version": version, "dataset": dataset}
        optional = {"dataset_version": dataset_version, "folder": folder or None, "label": label,
                    "features": features or None, "task": task}
        parameters.update({k: v for k, v in optional.items() if v is not None})
        return self.jobs.submit(
            principal=principal, project=project, kind=JobKind.EVALUATION, parameters=parameters,
            timeout_seconds=timeout_seconds,
        )

    def report(self, *, principal: Principal, project: str, name: str, version: str) -> EvaluationReport:
        """The version's latest evaluation (by an evaluation job or pipeline run)."""
        major, minor = parse_version(version)
        with self.uow() as uow:
            package = uow.packages.get(uow.projects.get(project).id, name)
            found = uow.packages.get_version(package.id, major, minor)
        source = found.metrics.get("evaluation")
        if not found.metrics or not isinstance(source, dict):
            raise NotFound(
                f"{name} {found.version} has not been evaluated yet: evaluate it on a labelled "
                "dataset (POST .../versions/{version}/evaluate, CLI: modelops models evaluate)"
            )
        plots = source.get("plots")
        champion = source.get("champion")
        return EvaluationReport(
            package=package.name, version=found.version, status=found.status,
            metrics={k: v for k, v in found.metrics.items() if k != "evaluation"},
            evaluation={k: v for k, v in source.items() if k not in ("plots", "champion")},
            plots=list(plots) if isinstance(plots, list) else [],
            champion=champion if isinstance(champion, dict) else None,
        )

    def open_plot(
        self, *, principal: Principal, project: str, name: str, version: str, plot: str
    ) -> tuple[dict[str, Any], BinaryIO]:
        """One plot of the latest report (its record, an open stream of its bytes)."""
        report = self.report(principal=principal, project=project, name=name, version=version)
        found = next((p for p in report.plots if p.get("name") == plot), None)
        if found is None:
            shown = ", ".join(str(p.get("name")) for p in report.plots) or "none"
            raise NotFound(f"the evaluation of {name} {report.version} has no plot {plot!r} (plots: {shown})")
        return found, self.artifacts.open(str(found["sha256"]))
