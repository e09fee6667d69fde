"""The EVALUATION job kind: one kind for every evaluation of a model version.

Two kinds of job share it. A run of an evaluation pipeline (its parameters name the pipeline)
is handed to the pipeline handler unchanged: the package's ``train.py`` ``evaluate()`` gives a
score. Any other evaluation job evaluates a version (imported, trained or uploaded) on a
labelled dataset version:

``prepare`` (server side, no model is opened) unpacks the version's zip into ``model/``, copies
the dataset's files into ``data/`` and runs ``modelops.runtime.evaluation``, which scores the
rows, computes the task's metrics, draws the plots into ``plots/`` and, for a package with
``train.py``, also calls its ``evaluate()``. ``finish`` reads that report as untrusted input,
stores the plots by content, and in one transaction compares the metrics with the model's
champion (the version of its production deployment) and moves the version to ``evaluated``
with the report as its metrics. A failed job stores nothing on the version.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelops.archives import ArchiveLimits
from modelops.domain.byom import (
    MAX_CLASSES,
    ModelTask,
    check_feature_names,
    parse_features,
    parse_task,
    scoring_spec,
)
from modelops.domain.champion import compare_to_champion
from modelops.domain.deployments import DeploymentStatus
from modelops.domain.entities import ModelVersion
from modelops.domain.errors import InvalidInput, NotFound
from modelops.domain.jobs import Job, JobKind
from modelops.domain.manifest import normalise_folder, select_folder
from modelops.domain.model_status import ModelStatus, check_model_transition
from modelops.domain.pipelines import check_score
from modelops.domain.versions import parse_version
from modelops.ports import ArtifactStore, UnitOfWork, UnitOfWorkFactory
from modelops.services.audit import record_evaluation
from modelops.services.byom_kinds import (
    data_entries,
    is_imported,
)
from modelops.services.job_files import fetch_entries, read_job_json, runtime_argv, unpack_blob
from modelops.services.job_kinds import CheckedParameters, JobKindHandler, PreparedJob

DEFAULT_LABEL = "target"
PARAMETERS = ("package", "version", "dataset", "dataset_version", "folder", "label", "features", "task")
REPORT_FILE = "evaluation-report.json"
PLOTS_FOLDER = "plots"
PLOT_NAMES = frozenset({"confusion_matrix.png", "roc_curve.png", "residuals.png"})
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_REPORT_BYTES = 64 * 1024 * 1024
MAX_PLOT_BYTES = 32 * 1024 * 1024
MAX_CURVE_POINTS = 1000
TASK_METRICS = {
    ModelTask.CLASSIFICATION: ("accuracy", "precision", "recall", "f1", "roc_auc"),
    ModelTask.REGRESSION: ("mae", "rmse", "r2"),
}


def is_pipeline_run(parameters: dict[str, Any]) -> bool:
    return "pipeline_id" in parameters


# --------------------------------------------------------------------------- the request


def check_request(uow: UnitOfWork, *, project_id: int, parameters: dict[str, Any]) -> CheckedParameters:
    """Everything that can be checked before the job exists, in the caller's transaction."""
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise InvalidInput(
            f"unknown parameter(s) for an evaluation: {', '.join(unknown)}; it takes "
            f"{', '.join(PARAMETERS)} (a pipeline's evaluation runs with modelops pipelines run)"
        )
    name, version_text, dataset_name = (parameters.get(k) for k in ("package", "version", "dataset"))
    if not isinstance(name, str) or not isinstance(version_text, str) or not name:
        raise InvalidInput("an evaluation needs 'package' and 'version' (e.g. \"1.0\")")
    if not isinstance(dataset_name, str) or not dataset_name:
        raise InvalidInput("an evaluation needs 'dataset': a labelled dataset (CSV or Parquet files)")
    label = parameters.get("label") or DEFAULT_LABEL
    if not isinstance(label, str):
        raise InvalidInput("label must be the name of the column holding the true values")
    label = check_feature_names([label], what="label column")[0]
    features = parameters.get("features")
    if isinstance(features, str):
        features = parse_features(features)
    elif features is not None:
        if not isinstance(features, list):
            raise InvalidInput("features must be a list of column names")
        features = check_feature_names(features) if features else None
    if features and label in features:
        raise InvalidInput(f"the label column {label!r} cannot also be a feature")
    task = parse_task(parameters.get("task"))
    folder = normalise_folder(parameters.get("folder") or "")

    major, minor = parse_version(version_text)
    package = uow.packages.get(project_id, name)
    version = uow.packages.get_version(package.id, major, minor)
    # Refused now, with a 409, rather than after the work: e.g. an approved or deployed version.
    check_model_transition(ModelStatus(version.status), ModelStatus.EVALUATED,
                           version_label=f"{name} {version.version}")
    if is_imported(version):
        recorded = scoring_spec(version.lineage)
        if features and set(features) != set(recorded.get("features") or []):
            raise InvalidInput(
                f"{name} {version.version} is an imported model with its own features "
                f"({', '.join((recorded.get('features') or [])[:10])}): leave features out"
            )
        if task and recorded.get("task") and task.value != recorded["task"]:
            raise InvalidInput(f"{name} {version.version} is a {recorded['task']} model, not {task.value}")
        if label in (recorded.get("features") or []):
            raise InvalidInput(f"the label column {label!r} is one of the model's features")
    elif not version.can_serve:
        raise InvalidInput(
            f"{name} {version.version} cannot score rows: it is neither an imported model nor a "
            "package with main.py (class Main with predict); run its train.py evaluate() with an "
            "evaluation pipeline instead"
        )
    dataset = uow.datasets.get(project_id, dataset_name)
    number = parameters.get("dataset_version")
    if number is None:
        if dataset.latest_version == 0:
            raise NotFound(f"dataset '{dataset_name}' has no version yet")
        number = dataset.latest_version
    if not isinstance(number, int) or isinstance(number, bool):
        raise InvalidInput("dataset_version must be a version number")
    dataset_version = uow.datasets.get_version(dataset.id, number)
    if not data_entries(dataset_version, folder):
        where = f" in folder '{folder}'" if folder else ""
        raise InvalidInput(f"dataset '{dataset_name}' version {number} has no CSV or Parquet file{where}")
    return CheckedParameters(
        parameters={
            "package": package.name, "version": version.version, "dataset": dataset.name,
            "dataset_version": number, "dataset_version_id": dataset_version.id, "folder": folder,
            "label": label, "features": features, "task": task.value if task else None,
        },
        target_type="model_version", target_id=version.id,
    )


# --------------------------------------------------------------------------- the job's report


def _number(value: Any, what: str, *, optional: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"the evaluation report's {what} is not a finite number")
    return float(value)


def _plain_list(value: Any, what: str, *, limit: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise InvalidInput(f"the evaluation report's {what} is not a list of at most {limit} items")
    if not all(isinstance(v, str | int | float | bool) for v in value):
        raise InvalidInput(f"the evaluation report's {what} must hold plain values")
    return value


def check_metrics(task: ModelTask, metrics: Any) -> dict[str, Any]:
    """Keep what the task's metrics should hold, each checked; anything else is dropped."""
    if not isinstance(metrics, dict):
        raise InvalidInput("the evaluation report has no metrics")
    kept: dict[str, Any] = {
        name: _number(metrics.get(name), f"metric '{name}'", optional=name in ("roc_auc", "r2"))
        for name in TASK_METRICS[task]
    }
    count = metrics.get("n_samples")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise InvalidInput("the evaluation report's n_samples is not a positive count")
    kept["n_samples"] = count
    if task is ModelTask.REGRESSION:
        return kept
    if metrics.get("average") in ("binary", "macro"):
        kept["average"] = metrics["average"]
    if isinstance(metrics.get("positive_label"), str | int | float):
        kept["positive_label"] = metrics["positive_label"]
    matrix = metrics.get("confusion_matrix")
    if not isinstance(matrix, dict):
        raise InvalidInput("the evaluation report has no confusion matrix")
    labels = _plain_list(matrix.get("labels"), "confusion matrix labels", limit=MAX_CLASSES)
    rows = matrix.get("matrix")
    if not isinstance(rows, list) or len(rows) != len(labels) or not all(
        isinstance(row, list) and len(row) == len(labels)
        and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in row)
        for row in rows
    ):
        raise InvalidInput("the evaluation report's confusion matrix is not a square table of counts")
    kept["confusion_matrix"] = {"labels": labels, "matrix": rows}
    curve = metrics.get("roc_curve")
    if isinstance(curve, dict):
        fpr = _plain_list(curve.get("fpr"), "ROC curve", limit=MAX_CURVE_POINTS)
        tpr = _plain_list(curve.get("tpr"), "ROC curve", limit=MAX_CURVE_POINTS)
        if len(fpr) == len(tpr):
            kept["roc_curve"] = {"fpr": [_number(x, "ROC curve point", optional=False) for x in fpr],
                                 "tpr": [_number(y, "ROC curve point", optional=False) for y in tpr]}
    return kept


def read_report(workdir: Path) -> dict[str, Any]:
    report = read_job_json(workdir / REPORT_FILE, limit=MAX_REPORT_BYTES, what="evaluation report")
    if not isinstance(report, dict) or report.get("format_version") != 1:
        raise InvalidInput("the job's evaluation report does not have the documented format")
    task = parse_task(report.get("task") if isinstance(report.get("task"), str) else None)
    if task is None:
        raise InvalidInput("the evaluation report names no task")
    plots = report.get("plots")
    if not isinstance(plots, list) or not set(plots) <= PLOT_NAMES or len(set(plots)) != len(plots):
        raise InvalidInput("the evaluation report lists unexpected plot files")
    features = report.get("features")
    return {
        "task": task,
        "metrics": check_metrics(task, report.get("metrics")),
        "score": check_score(report["score"]) if report.get("score") is not None else None,
        "plots": sorted(plots),
        "features": check_feature_names(features) if isinstance(features, list) and features else [],
        "rows": report.get("rows") if isinstance(report.get("rows"), int) else None,
    }


# --------------------------------------------------------------------------- the kind


class EvaluationKind:
    kind = JobKind.EVALUATION

    def __init__(
        self, *, uow: UnitOfWorkFactory, artifacts: ArtifactStore, limits: ArchiveLimits,
        pipeline_runs: JobKindHandler | None,
    ) -> None:
        self.uow = uow
        self.artifacts = artifacts
        self.limits = limits
        self.pipeline_runs = pipeline_runs  # the handler of evaluation pipeline runs

    def validate(self, *, project_id: int, parameters: dict[str, Any]) -> CheckedParameters:
        with self.uow() as uow:
            return check_request(uow, project_id=project_id, parameters=parameters)

    def _pipeline_handler(self) -> JobKindHandler:
        if self.pipeline_runs is None:
            raise InvalidInput("evaluation pipelines cannot run here")
        return self.pipeline_runs

    def prepare(self, job: Job, workdir: Path) -> PreparedJob:
        if is_pipeline_run(job.parameters):
            return self._pipeline_handler().prepare(job, workdir)
        params = job.parameters
        if job.target_id is None:
            raise InvalidInput("the job names no model version")
        with self.uow() as uow:
            version = uow.packages.get_version_by_id(job.target_id)
            dataset_version = uow.datasets.get_version_by_id(int(params["dataset_version_id"]))
        model_dir, data_dir = workdir / "model", workdir / "data"
        unpack_blob(self.artifacts, version.zip_sha256, model_dir, self.limits)
        folder = params.get("folder") or ""
        fetch_entries(self.artifacts, select_folder(dataset_version.files, folder), data_dir)
        chosen = data_dir.joinpath(*folder.split("/")) if folder else data_dir
        spec = scoring_spec(version.lineage, version.code_root)
        for key in ("features", "task"):
            if params.get(key):
                spec[key] = params[key]
        (workdir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        options: dict[str, Path | str | int] = {
            "model_dir": model_dir, "spec": workdir / "spec.json", "data": chosen,
            "label": params["label"], "plots": workdir / PLOTS_FOLDER, "out": workdir / REPORT_FILE,
        }
        env: dict[str, str] = {}
        requirements = None
        if not is_imported(version):
            code = model_dir.joinpath(*version.code_root.split("/")) if version.code_root else model_dir
            if (code / "requirements.txt").is_file():
                requirements = code / "requirements.txt"
            if version.can_train and (code / "train.py").is_file():
                # Its own evaluate() runs too, with what an evaluation pipeline would give it.
                options["package_code"] = code
                env = {"data_directory": str(chosen),
                       "artifacts_directory": str(workdir / "package-artifacts")}
        return PreparedJob(argv=runtime_argv("evaluation", **options), env=env, requirements=requirements)

    def finish(self, job: Job, workdir: Path) -> dict[str, Any]:
        if is_pipeline_run(job.parameters):
            return self._pipeline_handler().finish(job, workdir)
        report = read_report(workdir)
        params = job.parameters
        plots = [self._store_plot(workdir / PLOTS_FOLDER, name) for name in report["plots"]]
        assert job.target_id is not None
        with self.uow() as uow:
            version = uow.packages.get_version_by_id(job.target_id)
            evaluation: dict[str, Any] = {
                "job_id": job.id, "task": report["task"].value, "label": params["label"],
                "features": report["features"], "dataset": params["dataset"],
                "dataset_version": params["dataset_version"], "dataset_folder": params.get("folder", ""),
                "rows": report["rows"], "at": datetime.now(UTC).isoformat(), "by": job.actor,
                "plots": plots,
            }
            metrics: dict[str, Any] = dict(report["metrics"])
            if report["score"] is not None:
                metrics["score"] = report["score"]  # the package's own evaluate(), as pipelines record it
            evaluation["champion"] = self._champion_comparison(uow, job.project_id, version, metrics, evaluation)
            # The version's metrics are those of its latest evaluation, whole.
            changed = record_evaluation(
                uow, version,
                uow.packages.transition_version(
                    version.id, ModelStatus.EVALUATED, fields={"metrics": {**metrics, "evaluation": evaluation}}
                ),
                project_id=job.project_id, package=params["package"], actor=job.actor, job_id=job.id,
                evaluated_on={k: evaluation[k] for k in ("dataset", "dataset_version", "dataset_folder")},
            )
        return {
            "package": params["package"], "version": changed.version, "status": changed.status,
            "task": report["task"].value, "dataset": params["dataset"],
            "dataset_version": params["dataset_version"],
            "metrics": {k: v for k, v in metrics.items() if k != "roc_curve"},
            "score": report["score"], "plots": plots, "champion": evaluation["champion"],
        }

    def _store_plot(self, folder: Path, name: str) -> dict[str, Any]:
        path = folder / name
        if path.is_symlink() or not path.is_file():
            raise InvalidInput(f"the evaluation report lists plot {name}, which the job did not write")
        if path.stat().st_size > MAX_PLOT_BYTES:
            raise InvalidInput(f"plot {name} is larger than {MAX_PLOT_BYTES} bytes")
        with open(path, "rb") as handle:
            if handle.read(len(PNG_MAGIC)) != PNG_MAGIC:
                raise InvalidInput(f"plot {name} is not a PNG image")
        blob = self.artifacts.put_file(path)
        return {"name": name, "media_type": "image/png", "size": blob.size, "sha256": blob.sha256}

    @staticmethod
    def _champion_comparison(
        uow: UnitOfWork, project_id: int, version: ModelVersion, metrics: dict[str, Any],
        evaluation: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Metric by metric against the model's champion now; None when it has none (or is it)."""
        active = uow.deployments.list(project_id, package_id=version.package_id,
                                      status=DeploymentStatus.ACTIVE)
        primary = next((d for d in active if d.primary), None)
        if primary is None or primary.model_version_id == version.id:
            return None
        champion = uow.packages.get_version_by_id(primary.model_version_id)
        theirs = {k: v for k, v in champion.metrics.items() if k != "evaluation"}
        source = champion.metrics.get("evaluation")
        source = source if isinstance(source, dict) else {}
        evaluated_on = {k: source.get(k) for k in ("job_id", "dataset", "dataset_version", "dataset_folder")}
        same_data = all(evaluated_on[k] == evaluation[k] for k in ("dataset", "dataset_version", "dataset_folder"))
        return {
            "version": champion.version, "deployment": primary.name,
            "evaluated_on": evaluated_on if source else None, "same_data": bool(source) and same_data,
            **compare_to_champion(metrics, theirs).as_dict(),
        }
