"""The job engine in-process on real subprocesses, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from fixtures.jobs.support import (
    ALICE,
    VIEWER,
    close_engine_container,
    engine_container,
    log_texts,
    run_script,
    upload_fixture_package,
    wait_for,
    wait_terminal,
)

from modelops.bootstrap import Container
from modelops.domain.errors import InvalidInput, InvalidTransition, NotFound, PermissionDenied
from modelops.domain.jobs import Job, JobKind, JobStatus, LogLevel
from modelops.services.job_kinds import PreparedJob

HANG = (
    "import os, subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print('pids', os.getpid(), child.pid, flush=True)\n"
    "open('output.txt', 'w').write('partial')\n"
    "time.sleep(600)\n"
)


class RecordingKind:
    """A job kind that records finish() calls, so tests see what the engine registers."""

    kind = JobKind.COMPUTE_STATISTICS

    def __init__(self) -> None:
        self.finished: list[int] = []

    def prepare(self, job: Job, workdir: Path) -> PreparedJob:
        if job.parameters.get("prepare_error"):
            raise InvalidInput(job.parameters["prepare_error"])
        return PreparedJob(argv=["{python}", "-c", job.parameters["code"]])

    def finish(self, job: Job, workdir: Path) -> dict[str, Any]:
        self.finished.append(job.id)
        if job.parameters.get("finish_error"):
            raise InvalidInput(job.parameters["finish_error"])
        return {"outputs": sorted(p.name for p in workdir.iterdir())}


@pytest.fixture
def engine(tmp_path: Path, database_url: str) -> Iterator[Container]:
    container = engine_container(tmp_path / "home", database_url)
    upload_fixture_package(container, tmp_path)
    container.job_kinds.register(RecordingKind())
    try:
        yield container
    finally:
        close_engine_container(container)


def recording(container: Container) -> RecordingKind:
    handler = container.job_kinds.get(JobKind.COMPUTE_STATISTICS)
    assert isinstance(handler, RecordingKind)
    return handler


def submit_code(container: Container, code: str, timeout: float | None = None, **parameters: Any) -> Job:
    return container.jobs.submit(principal=ALICE, project="p", kind="compute_statistics",
                                 parameters={"code": code, **parameters}, timeout_seconds=timeout)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_printing_job_completes_with_each_line_stored_with_stream_and_level(engine: Container) -> None:
    job = wait_terminal(engine, run_script(engine, "print").id)
    assert job.status is JobStatus.COMPLETED and job.exit_code == 0 and job.error is None
    lines = engine.jobs.logs(principal=ALICE, job_id=job.id)
    own = [(line.stream, line.level, line.text) for line in lines if line.stream != "system"]
    assert ("stdout", LogLevel.INFO, "hello from the job") in own
    assert ("stderr", LogLevel.WARNING, "WARNING:root:disk almost full") in own
    assert ("stdout", LogLevel.ERROR, "ERROR:trainer:could not read row 7") in own
    assert ("stderr", LogLevel.INFO, "to stderr") in own
    assert ("stdout", LogLevel.INFO, "raw \ufffd bytes") in own  # NUL dropped, bad UTF-8 replaced
    assert [line.seq for line in lines] == list(range(1, len(lines) + 1))
    warnings = engine.jobs.logs(principal=ALICE, job_id=job.id, min_level=LogLevel.WARNING)
    assert {line.text for line in warnings} == {"WARNING:root:disk almost full",
                                                "ERROR:trainer:could not read row 7"}
    events = engine.jobs.events(principal=ALICE, job_id=job.id)
    assert [e.to_status for e in events] == [JobStatus.CREATED, JobStatus.QUEUED, JobStatus.RUNNING,
                                            JobStatus.COMPLETED]
    assert engine.jobs.event(principal=ALICE, job_id=job.id, event_id=events[-1].id).detail == {"exit_code": 0}


def test_a_raising_job_fails_with_its_exception_line_and_the_traceback_as_errors(engine: Container) -> None:
    job = wait_terminal(engine, run_script(engine, "raise").id)
    assert job.status is JobStatus.FAILED and job.exit_code == 1
    assert job.error == "ValueError: boom: bad value"
    stderr = [(line.level, line.text) for line in engine.jobs.logs(principal=ALICE, job_id=job.id)
              if line.stream == "stderr"]
    assert stderr[0] == (LogLevel.ERROR, "Traceback (most recent call last):")
    assert stderr[-1] == (LogLevel.ERROR, "ValueError: boom: bad value")
    assert all(level is LogLevel.ERROR for level, _ in stderr)
    failed = engine.jobs.events(principal=ALICE, job_id=job.id)[-1]
    assert failed.detail["error"] == "ValueError: boom: bad value" and failed.detail["exit_code"] == 1


def test_a_job_killed_by_sigkill_fails_with_the_signal_recorded(engine: Container) -> None:
    job = wait_terminal(engine, run_script(engine, "sigkill").id)
    assert job.status is JobStatus.FAILED
    assert (job.signal, job.exit_code) == (9, None)
    assert job.error == "killed by signal 9 (SIGKILL)"


def test_a_hanging_job_times_out_with_its_whole_process_tree_killed(engine: Container) -> None:
    # Long enough for the interpreter and its child to start on a loaded machine, so the job
    # prints its pids before the timeout ends it.
    job = submit_code(engine, HANG, timeout=5.0)
    pids = wait_for(lambda: next((t for t in log_texts(engine, job.id) if t.startswith("pids")), None),
                    what="the job's pids")
    ended = wait_terminal(engine, job.id, timeout=20)
    assert ended.status is JobStatus.TIMED_OUT
    assert ended.error == "timed out after 5 s"
    assert all(gone(int(pid)) for pid in pids.split()[1:])
    assert recording(engine).finished == []


def test_stop_cancels_a_running_job_within_two_seconds_and_registers_nothing(engine: Container) -> None:
    job = submit_code(engine, HANG)
    pids = wait_for(lambda: next((t for t in log_texts(engine, job.id) if t.startswith("pids")), None),
                    what="the job's pids")
    started = time.monotonic()
    stopping = engine.jobs.stop(principal=ALICE, job_id=job.id)
    assert stopping.status is JobStatus.CANCELLING
    ended = wait_terminal(engine, job.id, timeout=5)
    assert time.monotonic() - started < 2.0
    assert ended.status is JobStatus.CANCELLED and ended.error is None
    assert all(gone(int(pid)) for pid in pids.split()[1:])
    assert recording(engine).finished == []
    events = engine.jobs.events(principal=ALICE, job_id=job.id)
    assert [(e.to_status, e.actor) for e in events[-2:]] == [(JobStatus.CANCELLING, "alice"),
                                                            (JobStatus.CANCELLED, "engine")]
    with pytest.raises(InvalidTransition):
        engine.jobs.stop(principal=ALICE, job_id=job.id)


def test_a_queued_job_can_be_stopped_and_never_starts(tmp_path: Path, database_url: str) -> None:
    container = engine_container(tmp_path / "home", database_url, max_concurrent_jobs=1)
    try:
        upload_fixture_package(container, tmp_path)
        blocker = run_script(container, "sleep", "30")
        queued = run_script(container, "print")
        wait_for(lambda: container.jobs.get(principal=ALICE, job_id=blocker.id).status is JobStatus.RUNNING)
        assert container.jobs.get(principal=ALICE, job_id=queued.id).status is JobStatus.QUEUED
        stopped = container.jobs.stop(principal=ALICE, job_id=queued.id)
        assert stopped.status is JobStatus.CANCELLED and stopped.started_at is None
        container.jobs.stop(principal=ALICE, job_id=blocker.id)
        assert wait_terminal(container, blocker.id).status is JobStatus.CANCELLED
        assert log_texts(container, queued.id, streams=("stdout", "stderr", "system")) == []
    finally:
        close_engine_container(container)


def test_no_more_job_processes_run_at_once_than_the_limit(engine: Container) -> None:
    jobs = [run_script(engine, "span", "0.4") for _ in range(5)]
    ended = [wait_terminal(engine, job.id) for job in jobs]
    assert [job.status for job in ended] == [JobStatus.COMPLETED] * 5
    spans = [tuple(map(float, log_texts(engine, job.id)[0].split()[1:])) for job in jobs]
    # The most processes alive at once: count overlaps at every start.
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most == 2  # the limit, and reached


def test_a_job_sees_only_allow_listed_variables_in_its_own_folder(
    engine: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELOPS_DATABASE_URL", "postgresql://secret@db/meta")
    monkeypatch.setenv("MODELOPS_TOKEN", "mo_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    job = wait_terminal(engine, run_script(engine, "env").id)
    seen = json.loads(log_texts(engine, job.id)[0])
    assert not {"MODELOPS_DATABASE_URL", "MODELOPS_TOKEN", "AWS_SECRET_ACCESS_KEY"} & set(seen["env"])
    assert seen["env"]["MODELOPS_JOB_ID"] == str(job.id)
    assert seen["env"]["PYTHONUNBUFFERED"] == "1"
    # The server's HOME (where the admin token lives by default) is not the job's.
    assert seen["env"]["HOME"] != str(Path.home())
    assert Path(seen["env"]["HOME"]).is_relative_to(engine.settings.work_dir)
    assert Path(seen["cwd"]) == engine.settings.work_dir / "jobs" / str(job.id) / "run"
    job_dir = engine.settings.work_dir / "jobs" / str(job.id)
    wait_for(lambda: not job_dir.exists(), what="the job's folder to be cleaned up")


def test_logs_are_stored_while_the_job_runs(engine: Container) -> None:
    job = run_script(engine, "ticks", "40", "0.05")
    wait_for(lambda: "tick 3" in log_texts(engine, job.id), what="live lines")
    assert engine.jobs.get(principal=ALICE, job_id=job.id).status is JobStatus.RUNNING
    ended = wait_terminal(engine, job.id)
    assert ended.status is JobStatus.COMPLETED
    assert log_texts(engine, job.id) == [f"tick {i}" for i in range(40)]


def test_finish_registers_the_result_of_a_clean_exit_only(engine: Container) -> None:
    ok = wait_terminal(engine, submit_code(engine, "open('model.bin', 'w').write('m')").id)
    assert ok.status is JobStatus.COMPLETED and ok.result == {"outputs": ["model.bin"]}
    bad = wait_terminal(engine, submit_code(engine, "raise SystemExit(4)").id)
    assert bad.status is JobStatus.FAILED and bad.exit_code == 4
    refused = wait_terminal(engine, submit_code(engine, "pass", finish_error="metrics missing").id)
    assert refused.status is JobStatus.FAILED and refused.error == "metrics missing"
    assert recording(engine).finished == [ok.id, refused.id]


def test_a_failing_prepare_fails_the_job_with_its_message(engine: Container) -> None:
    job = wait_terminal(engine, submit_code(engine, "pass", prepare_error="dataset 3 is empty").id)
    assert job.status is JobStatus.FAILED and job.error == "dataset 3 is empty"
    assert job.exit_code is None and recording(engine).finished == []


def test_a_package_under_a_top_folder_runs_from_its_code_root(engine: Container, tmp_path: Path) -> None:
    from fixtures.jobs.support import package_zip

    archive = package_zip(tmp_path / "nested.zip", top_folder="nested-pkg")
    engine.packages.upload(principal=ALICE, project="p", name="nested", archive=archive)
    job = wait_terminal(engine, run_script(engine, "print", package="nested").id)
    assert job.status is JobStatus.COMPLETED, job.error


@pytest.mark.parametrize(
    ("kind", "parameters", "error", "message"),
    [
        ("nonsense", {}, InvalidInput, "unknown job kind 'nonsense'"),
        ("script", {"package": "pkg", "version": "1.0"}, InvalidInput, "needs 'command'"),
        ("script", {"package": "pkg", "version": "1.0", "command": "python job.py"}, InvalidInput,
         "non-empty list of strings"),
        ("script", {"package": "pkg", "version": "9.0", "command": ["python"]}, NotFound, "9.0"),
        ("script", {"package": "nope", "version": "1.0", "command": ["python"]}, NotFound, "nope"),
        ("script", {"package": "pkg", "version": "1.0", "command": ["x"], "extra": 1}, InvalidInput,
         "unknown parameter"),
    ],
)
def test_bad_submissions_are_refused_before_a_job_exists(
    engine: Container, kind: str, parameters: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        engine.jobs.submit(principal=ALICE, project="p", kind=kind, parameters=parameters)
    assert engine.jobs.list(principal=ALICE, project="p") == []


def test_a_kind_without_a_handler_is_refused(engine: Container) -> None:
    from modelops.services.job_kinds import JobKindRegistry
    from modelops.services.jobs import JobService

    bare = JobService(uow=engine.uow, registry=JobKindRegistry())
    with pytest.raises(InvalidInput, match="job kind 'script' cannot be run here; available: none"):
        bare.submit(principal=ALICE, project="p", kind="script", parameters={})


def test_viewers_read_but_cannot_submit_or_stop(engine: Container) -> None:
    job = run_script(engine, "print")
    with pytest.raises(PermissionDenied):
        run_script_as_viewer(engine)
    with pytest.raises(PermissionDenied):
        engine.jobs.stop(principal=VIEWER, job_id=job.id)
    assert engine.jobs.get(principal=VIEWER, job_id=job.id).id == job.id
    wait_terminal(engine, job.id)


def test_a_command_that_does_not_exist_fails_the_job_clearly(engine: Container) -> None:
    job = engine.jobs.submit(principal=ALICE, project="p", kind="script",
                             parameters={"package": "pkg", "version": "1.0", "command": ["no-such-tool-xyz"]})
    ended = wait_terminal(engine, job.id)
    assert ended.status is JobStatus.FAILED
    assert ended.error == "cannot start the job: command not found: no-such-tool-xyz"


def run_script_as_viewer(container: Container) -> Job:
    return container.jobs.submit(principal=VIEWER, project="p", kind="script",
                                 parameters={"package": "pkg", "version": "1.0", "command": ["python"]})
