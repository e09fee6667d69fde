"""Pure pipeline rules: run statuses, parameters, schedules, _results.json and cron times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelops.domain.errors import InvalidInput
from modelops.domain.jobs import JobKind, JobStatus
from modelops.domain.pipelines import (
    PipelineType,
    RunStatus,
    ScheduleKind,
    check_schedule_shape,
    check_score,
    normalise_parameters,
    results_document,
    run_status,
)
from modelops.services.pipeline_scheduler import next_cron_time

NOW = datetime(2030, 1, 31, 10, 2, 30, tzinfo=UTC)


def test_every_job_status_maps_to_a_run_status_in_the_platforms_words() -> None:
    expected = {
        JobStatus.CREATED: "Scheduled", JobStatus.QUEUED: "Scheduled",
        JobStatus.RUNNING: "Running", JobStatus.CANCELLING: "Running",
        JobStatus.COMPLETED: "Successful", JobStatus.FAILED: "Failed",
        JobStatus.TIMED_OUT: "Failed", JobStatus.CANCELLED: "Killed",
    }
    assert {status: run_status(status).value for status in JobStatus} == expected
    assert {s.value for s in RunStatus} == {"Scheduled", "Running", "Successful", "Failed", "Killed"}


def test_pipeline_types_map_to_their_job_kinds() -> None:
    assert PipelineType.TRAINING.job_kind is JobKind.TRAINING
    assert PipelineType.EVALUATION.job_kind is JobKind.EVALUATION
    assert PipelineType.FULL.job_kind is JobKind.FULL_PIPELINE
    assert PipelineType.for_job_kind(JobKind.FULL_PIPELINE) is PipelineType.FULL
    assert [t.creates_version for t in PipelineType] == [True, False, True]
    assert [t.records_score for t in PipelineType] == [False, True, True]


def test_parameters_get_the_documented_defaults_and_keep_user_variables() -> None:
    assert normalise_parameters({}) == {"artifacts_directory": "artifacts", "save_training_data": "false"}
    env = normalise_parameters({"C": 0.5, "epochs": 3, "save_training_data": True,
                                "artifacts_directory": "out/./plots/"})
    assert env == {"artifacts_directory": "out/plots", "save_training_data": "true", "C": "0.5",
                   "epochs": "3"}
    assert normalise_parameters({"save_training_data": "TRUE"})["save_training_data"] == "true"


@pytest.mark.parametrize("parameters, message", [
    ({"2fast": "x"}, "invalid parameter name"),
    ({"has space": "x"}, "invalid parameter name"),
    ({"PATH": "/tmp"}, "reserved"),
    ({"PYTHONPATH": "/tmp"}, "reserved"),
    ({"MODELOPS_DATABASE_URL": "x"}, "reserved"),
    ({"data_directory": "/etc"}, "reserved"),
    ({"artifacts_directory": "../escape"}, "inside the package's working directory"),
    ({"artifacts_directory": "/abs"}, "inside the package's working directory"),
    ({"artifacts_directory": "."}, "inside the package's working directory"),
    ({"save_training_data": "maybe"}, "true or false"),
    ({"x": {"nested": 1}}, "text, a number or a boolean"),
    ({"x": "a\0b"}, "no NUL"),
])
def test_bad_parameters_are_refused_with_a_reason(parameters: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        normalise_parameters(parameters)


def test_schedule_shapes() -> None:
    assert check_schedule_shape("now", run_at=None, cron=None, now=NOW).kind is ScheduleKind.NOW
    later = NOW + timedelta(hours=1)
    assert check_schedule_shape("once", run_at=later, cron=None, now=NOW).run_at == later
    assert check_schedule_shape("cron", run_at=None, cron=" 0  3 * * 1 ", now=NOW).cron == "0 3 * * 1"
    for kind, run_at, cron, message in [
        ("weekly", None, None, "use now, once or cron"),
        ("now", later, None, "neither"),
        ("once", None, None, "needs a time"),
        ("once", NOW - timedelta(seconds=1), None, "in the past"),
        ("once", datetime(2030, 2, 1), None, "time zone"),
        ("cron", None, None, "needs a cron expression"),
        ("cron", None, "0 3 * * 1 2030", "five fields"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            check_schedule_shape(kind, run_at=run_at, cron=cron, now=NOW)


def test_next_cron_time_is_strictly_after_and_in_utc() -> None:
    assert next_cron_time("*/5 * * * *", NOW) == datetime(2030, 1, 31, 10, 5, tzinfo=UTC)
    assert next_cron_time("*/5 * * * *", datetime(2030, 1, 31, 10, 5, tzinfo=UTC)) == datetime(
        2030, 1, 31, 10, 10, tzinfo=UTC)
    assert next_cron_time("0 3 * * *", NOW) == datetime(2030, 2, 1, 3, 0, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="invalid cron expression"):
        next_cron_time("61 * * * *", NOW)


def test_results_document_has_exactly_the_documented_structure() -> None:
    doc = results_document(
        pipeline="nightly", package="iris", version="1.0", train_data="datasets/iris/versions/2/train",
        gpu=False, env={"artifacts_directory": "artifacts", "C": "2"}, start_at=100.0,
        end_at=112.3456, saved_train_data="runs/7/train_data", artifacts_data="runs/7/artifacts",
        new_version="1.1",
    )
    assert doc == {
        "parameters": {
            "pipeline": "nightly",
            "inputs": {"package": "iris", "version": "1.0",
                       "train_data": "datasets/iris/versions/2/train", "gpu": "False"},
            "env": {"artifacts_directory": "artifacts", "C": "2"},
        },
        "run_summary": {
            "execution_time": 12.346, "start_at": 100.0, "end_at": 112.346,
            "outputs": {"train_data": "runs/7/train_data", "artifacts_data": "runs/7/artifacts",
                        "package": "iris", "version": "1.1"},
        },
    }


def test_scores_must_be_finite_numbers() -> None:
    assert check_score(1) == 1.0
    for bad in (True, "0.9", None, float("nan"), float("inf")):
        with pytest.raises(InvalidInput):
            check_score(bad)
