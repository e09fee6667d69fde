"""Pipelines: training, evaluation and full runs of an ML package on a dataset.

A pipeline is a saved definition (package version, dataset or one folder of it, parameters,
GPU flag, schedule); each run of it is one job. What a user reads about a run (its status in
the platform's words, its ``_results.json``) is computed here, from plain values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from modelops.domain.errors import InvalidInput
from modelops.domain.jobs import Job, JobKind, JobStatus


class PipelineType(StrEnum):
    TRAINING = "training"
    EVALUATION = "evaluation"
    FULL = "full"

    @property
    def job_kind(self) -> JobKind:
        return _JOB_KINDS[self]

    @property
    def creates_version(self) -> bool:
        return self is not PipelineType.EVALUATION

    @property
    def records_score(self) -> bool:
        return self is not PipelineType.TRAINING

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def for_job_kind(cls, kind: JobKind) -> PipelineType:
        for pipeline_type, job_kind in _JOB_KINDS.items():
            if job_kind is kind:
                return pipeline_type
        raise InvalidInput(f"job kind '{kind}' is not a pipeline run")


_JOB_KINDS = {
    PipelineType.TRAINING: JobKind.TRAINING,
    PipelineType.EVALUATION: JobKind.EVALUATION,
    PipelineType.FULL: JobKind.FULL_PIPELINE,
}
_LABELS = {
    PipelineType.TRAINING: "Training run",
    PipelineType.EVALUATION: "Evaluation run",
    PipelineType.FULL: "Full pipeline run",
}
PIPELINE_JOB_KINDS = frozenset(_JOB_KINDS.values())

# The methods of train.py's class Main each pipeline type calls, in order. process_data is
# optional for a full pipeline: without it, train() gets the input data directly.
REQUIRED_METHODS: dict[PipelineType, tuple[str, ...]] = {
    PipelineType.TRAINING: ("train", "save"),
    PipelineType.EVALUATION: ("evaluate",),
    PipelineType.FULL: ("train", "evaluate", "save"),
}


class ScheduleKind(StrEnum):
    NOW = "now"  # run once, as soon as the pipeline is created
    ONCE = "once"  # run once, at a given time
    CRON = "cron"  # run at every time a five-field cron expression matches (UTC)


class RunTrigger(StrEnum):
    MANUAL = "manual"  # created with "now", or "run now" on an existing pipeline
    SCHEDULE = "schedule"  # fired by the scheduler at its scheduled time


class RunStatus(StrEnum):
    """A run's status in the words users see; derived from its job, never stored."""

    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    KILLED = "Killed"


_RUN_STATUS: dict[JobStatus, RunStatus] = {
    JobStatus.CREATED: RunStatus.SCHEDULED,
    JobStatus.QUEUED: RunStatus.SCHEDULED,
    JobStatus.RUNNING: RunStatus.RUNNING,
    # A stop was asked for but the process has not ended yet: it is still running.
    JobStatus.CANCELLING: RunStatus.RUNNING,
    JobStatus.COMPLETED: RunStatus.SUCCESSFUL,
    JobStatus.FAILED: RunStatus.FAILED,
    # Nobody asked for a timeout to end the run: that is a failure, not a kill.
    JobStatus.TIMED_OUT: RunStatus.FAILED,
    JobStatus.CANCELLED: RunStatus.KILLED,
}


def run_status(job_status: JobStatus) -> RunStatus:
    return _RUN_STATUS[job_status]


# --------------------------------------------------------------------------- parameters

ARTIFACTS_DIRECTORY = "artifacts_directory"
SAVE_TRAINING_DATA = "save_training_data"
DEFAULT_PARAMETERS: dict[str, str] = {ARTIFACTS_DIRECTORY: "artifacts", SAVE_TRAINING_DATA: "false"}

# Set by the platform for every run; a user value would silently lose, so it is refused.
PLATFORM_VARIABLES = frozenset({"data_directory", "training_data_directory", "test_data_directory"})
_RESERVED_PREFIXES = ("MODELOPS_", "PYTHON", "LD_", "DYLD_")
_RESERVED_NAMES = frozenset({"PATH", "HOME", "VIRTUAL_ENV"})
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_PARAMETERS = 100
MAX_VALUE_LENGTH = 4096


def _as_text(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        text = str(value)
    else:
        raise InvalidInput(f"parameter {name!r}: the value must be text, a number or a boolean")
    if len(text) > MAX_VALUE_LENGTH or "\0" in text:
        raise InvalidInput(
            f"parameter {name!r}: the value must be at most {MAX_VALUE_LENGTH} characters, no NUL"
        )
    return text


def _check_artifacts_directory(value: str) -> str:
    cleaned = value.strip().replace("\\", "/")
    parts = [p for p in cleaned.split("/") if p not in ("", ".")]
    if cleaned.startswith("/") or not parts or ".." in parts:
        raise InvalidInput(
            f"parameter '{ARTIFACTS_DIRECTORY}' must be a folder inside the package's working "
            f"directory, e.g. 'artifacts' (got {value!r})"
        )
    return str(PurePosixPath(*parts))


def normalise_parameters(raw: Mapping[str, object] | None) -> dict[str, str]:
    """The run's environment variables: the defaults, overridden and extended by the user's."""
    raw = dict(raw or {})
    if len(raw) > MAX_PARAMETERS:
        raise InvalidInput(f"at most {MAX_PARAMETERS} parameters are allowed")
    result = dict(DEFAULT_PARAMETERS)
    for name, value in raw.items():
        if not isinstance(name, str) or not _VARIABLE.match(name):
            raise InvalidInput(
                f"invalid parameter name {name!r}: use letters, digits and '_', not starting "
                "with a digit (it becomes an environment variable)"
            )
        if (
            name in PLATFORM_VARIABLES
            or name in _RESERVED_NAMES
            or name.startswith(_RESERVED_PREFIXES)
        ):
            raise InvalidInput(f"parameter {name!r} is reserved by the platform")
        result[name] = _as_text(name, value)
    result[ARTIFACTS_DIRECTORY] = _check_artifacts_directory(result[ARTIFACTS_DIRECTORY])
    flag = result[SAVE_TRAINING_DATA].strip().lower()
    if flag not in ("true", "false"):
        raise InvalidInput(f"parameter '{SAVE_TRAINING_DATA}' must be true or false")
    result[SAVE_TRAINING_DATA] = flag
    return result


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class Schedule:
    kind: ScheduleKind
    run_at: datetime | None = None  # ONCE
    cron: str | None = None  # CRON, five fields, evaluated in UTC


def check_schedule_shape(
    kind: str, *, run_at: datetime | None, cron: str | None, now: datetime
) -> Schedule:
    """The schedule's fields agree with its kind; cron syntax itself is checked by the scheduler."""
    try:
        schedule_kind = ScheduleKind(kind)
    except ValueError:
        raise InvalidInput(f"invalid schedule {kind!r}: use now, once or cron") from None
    if schedule_kind is ScheduleKind.NOW:
        if run_at is not None or cron:
            raise InvalidInput("a 'now' schedule takes neither a time nor a cron expression")
        return Schedule(kind=schedule_kind)
    if schedule_kind is ScheduleKind.ONCE:
        if run_at is None or cron:
            raise InvalidInput("a 'once' schedule needs a time (run_at) and no cron expression")
        if run_at.tzinfo is None:
            raise InvalidInput("the scheduled time must carry a time zone")
        if run_at < now:
            raise InvalidInput(f"the scheduled time {run_at.isoformat()} is in the past")
        return Schedule(kind=schedule_kind, run_at=run_at)
    if run_at is not None or not cron or not cron.strip():
        raise InvalidInput("a 'cron' schedule needs a cron expression and no time")
    expression = " ".join(cron.split())
    if len(expression.split(" ")) != 5:
        raise InvalidInput(
            f"invalid cron expression {cron!r}: use five fields (minute hour day month weekday)"
        )
    return Schedule(kind=schedule_kind, cron=expression)


# --------------------------------------------------------------------------- entities


@dataclass(frozen=True)
class DataSelection:
    """A dataset, a version of it (None: the newest at each run) and a folder ('' for all)."""

    dataset_id: int
    dataset: str
    version: int | None
    folder: str = ""


@dataclass(frozen=True)
class Pipeline:
    id: int
    project_id: int
    name: str
    pipeline_type: PipelineType
    package_id: int
    package: str
    version_id: int
    version: str
    data: DataSelection
    evaluation_data: DataSelection | None
    parameters: dict[str, str]
    gpu: bool
    schedule: Schedule
    next_run_at: datetime | None
    timeout_seconds: float | None
    description: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class RunFile:
    area: str  # "artifacts" | "train_data"
    path: str  # POSIX, relative to the area
    size: int
    sha256: str


@dataclass(frozen=True)
class PipelineRun:
    id: int
    project_id: int
    pipeline_id: int | None  # None once the pipeline is deleted; the run's record stays
    pipeline: str
    pipeline_type: PipelineType
    job_id: int
    trigger: RunTrigger
    scheduled_at: datetime | None
    created_at: datetime
    inputs: dict[str, Any] = field(default_factory=dict)  # resolved when the job is prepared
    score: float | None = None
    new_version_id: int | None = None
    new_version: str | None = None
    results: dict[str, Any] = field(default_factory=dict)
    results_sha256: str | None = None


@dataclass(frozen=True)
class RunDetail:
    run: PipelineRun
    job: Job

    @property
    def status(self) -> RunStatus:
        return run_status(self.job.status)


# --------------------------------------------------------------------------- storage names

RESULTS_FILE = "_results.json"
ARTIFACTS_AREA = "artifacts"
TRAIN_DATA_AREA = "train_data"
RUN_FILE_AREAS = (ARTIFACTS_AREA, TRAIN_DATA_AREA)


def dataset_location(dataset: str, version: int, folder: str) -> str:
    base = f"datasets/{dataset}/versions/{version}"
    return f"{base}/{folder}" if folder else base


def run_location(job_id: int, area: str) -> str:
    return f"runs/{job_id}/{area}"


# --------------------------------------------------------------------------- _results.json


def results_document(
    *, pipeline: str, package: str, version: str, train_data: str, gpu: bool,
    env: Mapping[str, str], start_at: float, end_at: float, saved_train_data: str | None,
    artifacts_data: str, new_version: str | None,
) -> dict[str, Any]:
    """The run's ``_results.json``: inputs, parameters, times (epoch seconds) and outputs."""
    return {
        "parameters": {
            "pipeline": pipeline,
            "inputs": {
                "package": package,
                "version": version,
                "train_data": train_data,
                "gpu": "True" if gpu else "False",
            },
            "env": dict(env),
        },
        "run_summary": {
            "execution_time": round(max(end_at - start_at, 0.0), 3),
            "start_at": round(start_at, 3),
            "end_at": round(end_at, 3),
            "outputs": {
                "train_data": saved_train_data,
                "artifacts_data": artifacts_data,
                "package": package,
                "version": new_version,
            },
        },
    }


def check_score(value: object) -> float:
    """evaluate()'s return as a finite float; the runtime applies the same rule in the job."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"the score must be a number, got {type(value).__name__}")
    score = float(value)
    if score != score or score in (float("inf"), float("-inf")):
        raise InvalidInput(f"the score must be a finite number, got {score}")
    return score
