"""The job engine on a real Ray cluster (one head per test session, loopback only).

The core engine tests of ``test_job_engine`` and ``test_job_envs`` run here a second time,
unchanged, with their ``engine`` fixture replaced by one whose executor is Ray; the tests
below add what only Ray needs showing (stop and timeout through Ray's ``stop_job`` with the
process tree gone, re-attaching by submission id after an engine restart). SQLite only: the
database side is the same for every executor and is covered on PostgreSQL by the local runs.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.jobs.support import (
    ALICE,
    close_engine_container,
    engine_container,
    log_texts,
    run_script,
    upload_fixture_package,
    wait_for,
    wait_terminal,
)
from ray.job_submission import JobSubmissionClient
from support.ray_cluster import RayHead, ray_head  # noqa: F401  (the session fixture)
from test_job_engine import (  # noqa: F401  (the test_* names are collected again here, on Ray)
    HANG,
    RecordingKind,
    gone,
    recording,
    submit_code,
    test_a_command_that_does_not_exist_fails_the_job_clearly,
    test_a_job_killed_by_sigkill_fails_with_the_signal_recorded,
    test_a_job_sees_only_allow_listed_variables_in_its_own_folder,
    test_a_printing_job_completes_with_each_line_stored_with_stream_and_level,
    test_a_raising_job_fails_with_its_exception_line_and_the_traceback_as_errors,
    test_finish_registers_the_result_of_a_clean_exit_only,
    test_logs_are_stored_while_the_job_runs,
)
from test_job_envs import (  # noqa: F401
    test_a_package_with_requirements_runs_in_its_own_environment_then_reuses_it,
)

from modelops.adapters.executors.ray import RayExecutor
from modelops.bootstrap import Container
from modelops.domain.jobs import JobStatus

# Ray starts each job through a supervisor actor and signals a stopped tree with a grace of
# its own, so its deadlines are looser than the local executor's 2 s.
RAY_STOP_DEADLINE = 15.0


def ray_container(home: Path, head: RayHead, **settings: object) -> Container:
    return engine_container(home, f"sqlite:///{home.parent / 'meta.db'}", executor="ray",
                            ray_address=head.address, **settings)


@pytest.fixture
def engine(request: pytest.FixtureRequest, tmp_path: Path, ray_head: RayHead) -> Iterator[Container]:  # noqa: F811
    container = ray_container(tmp_path / "home", ray_head)
    assert isinstance(container.executor, RayExecutor)
    # Set up as the fixture of the module each test comes from: the environment tests
    # upload their own package (with requirements) as version 1.0.
    if request.function.__module__ != "test_job_envs":
        upload_fixture_package(container, tmp_path)
        container.job_kinds.register(RecordingKind())
    try:
        yield container
    finally:
        close_engine_container(container)


def ray_jobs_of(head: RayHead, job_id: int) -> list[str]:
    client = JobSubmissionClient(head.address)
    return [info.submission_id for info in client.list_jobs()
            if (info.metadata or {}).get("modelops_job_id") == str(job_id)]


def hang_pids(container: Container, job_id: int) -> list[int]:
    line = wait_for(lambda: next((t for t in log_texts(container, job_id) if t.startswith("pids")), None),
                    timeout=60, what="the job's pids")
    return [int(pid) for pid in line.split()[1:]]


def test_stop_ends_a_ray_job_cancelled_with_its_process_tree_gone(engine: Container) -> None:
    job = submit_code(engine, HANG)
    pids = hang_pids(engine, job.id)
    started = time.monotonic()
    engine.jobs.stop(principal=ALICE, job_id=job.id)
    ended = wait_terminal(engine, job.id, timeout=RAY_STOP_DEADLINE)
    assert time.monotonic() - started < RAY_STOP_DEADLINE
    assert ended.status is JobStatus.CANCELLED and ended.error is None
    wait_for(lambda: all(gone(pid) for pid in pids), timeout=10, what="the job's processes to end")
    assert recording(engine).finished == []


def test_a_hanging_ray_job_times_out_with_its_process_tree_gone(engine: Container) -> None:
    # The timeout counts from the claim, and Ray takes seconds to start a job: room for both.
    job = submit_code(engine, HANG, timeout=12.0)
    pids = hang_pids(engine, job.id)
    ended = wait_terminal(engine, job.id, timeout=RAY_STOP_DEADLINE + 12)
    assert ended.status is JobStatus.TIMED_OUT and ended.error == "timed out after 12 s"
    wait_for(lambda: all(gone(pid) for pid in pids), timeout=10, what="the job's processes to end")


def test_a_restarted_engine_re_attaches_a_running_ray_job_by_its_submission_id(
    tmp_path: Path, ray_head: RayHead  # noqa: F811
) -> None:
    home = tmp_path / "home"
    first = ray_container(home, ray_head)
    upload_fixture_package(first, tmp_path)
    job = run_script(first, "ticks", "60", "0.1")
    wait_for(lambda: "tick 5" in log_texts(first, job.id), timeout=60, what="live lines")
    first.job_engine.stop()  # the server goes away; the Ray job does not
    first.close()
    assert len(ray_jobs_of(ray_head, job.id)) == 1

    second = ray_container(home, ray_head)
    try:
        ended = wait_terminal(second, job.id, timeout=60)
        assert ended.status is JobStatus.COMPLETED, ended.error
        # Every line exactly once: the stored cursor carried across the restart.
        assert log_texts(second, job.id) == [f"tick {i}" for i in range(60)]
        system = log_texts(second, job.id, streams=("system",))
        assert "the server restarted: re-attached to the job's running process" in system
        assert len(ray_jobs_of(ray_head, job.id)) <= 1  # never submitted twice (released: 0)
    finally:
        close_engine_container(second)


def test_a_ray_job_unknown_to_the_cluster_after_a_restart_fails_as_lost(
    tmp_path: Path, ray_head: RayHead  # noqa: F811
) -> None:
    home = tmp_path / "home"
    first = ray_container(home, ray_head)
    upload_fixture_package(first, tmp_path)
    job = run_script(first, "ticks", "600", "0.1")
    wait_for(lambda: "tick 1" in log_texts(first, job.id), timeout=60, what="live lines")
    first.job_engine.stop()
    first.close()
    (submission_id,) = ray_jobs_of(ray_head, job.id)
    client = JobSubmissionClient(ray_head.address)
    client.stop_job(submission_id)  # as if the cluster had been replaced while we were down
    wait_for(lambda: client.get_job_status(submission_id).is_terminal(), timeout=30, what="Ray stop")
    client.delete_job(submission_id)

    second = ray_container(home, ray_head)
    try:
        ended = wait_terminal(second, job.id, timeout=30)
        assert ended.status is JobStatus.FAILED
        assert ended.error is not None and ended.error.startswith("worker lost: ")
    finally:
        close_engine_container(second)


def test_the_ray_executor_needs_an_address(tmp_path: Path) -> None:
    from modelops.adapters.executors import build_executor
    from modelops.domain.errors import InvalidInput
    from modelops.settings import Settings

    with pytest.raises(InvalidInput, match="MODELOPS_RAY_ADDRESS"):
        build_executor(Settings(home=tmp_path, executor="ray"))


def test_upload_mode_ships_the_working_folder_and_keeps_the_allow_list(
    tmp_path: Path, ray_head: RayHead, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("MODELOPS_DATABASE_URL", "postgresql://secret@db/meta")
    container = ray_container(tmp_path / "home", ray_head, ray_workdir_mode="upload",
                              ray_python=sys.executable)
    try:
        upload_fixture_package(container, tmp_path)
        job = wait_terminal(container, run_script(container, "env").id, timeout=60)
        assert job.status is JobStatus.COMPLETED, job.error
        seen = json.loads(log_texts(container, job.id)[0])
        workdir = container.settings.work_dir / "jobs" / str(job.id) / "run"
        # job.py ran from Ray's unpacked copy of the folder, not the server's (outputs stay there).
        assert Path(seen["cwd"]) != workdir
        assert "MODELOPS_DATABASE_URL" not in seen["env"] and seen["env"]["MODELOPS_JOB_ID"] == str(job.id)
        assert not Path(seen["env"]["HOME"]).is_relative_to(container.settings.work_dir)
    finally:
        close_engine_container(container)


class _LossyProxy:
    """A real HTTP proxy in front of the Jobs API that forwards the first job submission to Ray
    and then drops the connection instead of answering, as a network cut would; or, with
    ``hang``, accepts connections and never answers anything."""

    def __init__(self, target: str, *, hang: bool = False) -> None:
        import http.server
        import socketserver
        import threading

        import httpx

        proxy = self
        self.dropped = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _forward(self) -> None:
                if hang:
                    time.sleep(30)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx.request(self.command, target + self.path, content=body, headers=headers, timeout=60)
                if self.command == "POST" and self.path.rstrip("/") == "/api/jobs" and proxy.dropped == 0:
                    proxy.dropped += 1
                    self.close_connection = True  # Ray has the job; its answer is lost
                    return
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = _forward  # noqa: N815

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_submission_whose_answer_is_lost_is_tracked_not_orphaned(
    tmp_path: Path, ray_head: RayHead  # noqa: F811
) -> None:
    proxy = _LossyProxy(ray_head.address)
    home = tmp_path / "home"
    container = engine_container(home, f"sqlite:///{tmp_path / 'meta.db'}", executor="ray",
                                 ray_address=proxy.address)  # the cluster, through the lossy proxy
    try:
        upload_fixture_package(container, tmp_path)
        job = run_script(container, "print")
        ended = wait_terminal(container, job.id, timeout=120)
        assert proxy.dropped == 1  # the submission's answer really was lost
        assert ended.status is JobStatus.COMPLETED, ended.error
        assert "hello from the job" in log_texts(container, job.id)
        assert len(ray_jobs_of(ray_head, job.id)) <= 1  # one Ray job, watched to its end
    finally:
        close_engine_container(container)
        proxy.close()


def test_a_jobs_api_that_never_answers_times_out(tmp_path: Path) -> None:
    proxy = _LossyProxy("http://127.0.0.1:9", hang=True)
    try:
        executor = RayExecutor(address=proxy.address, root=tmp_path / "executor",
                               envs_root=tmp_path / "envs", request_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(Exception, match="(?i)timed? ?out"):
            executor.client.get_job_info("modelops-1-abc")
        assert time.monotonic() - started < 20  # bounded by the timeout, not by the server
    finally:
        proxy.close()
