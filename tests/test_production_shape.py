"""Production shape: two API servers and a worker (job engine + schedulers, no API), three real
processes on one PostgreSQL database and one artifact store.

Every process runs a job engine and the schedulers, the harshest case: three claimers of each
queued job and three schedulers of each cron tick. Each job appends its id to a marker file when
it starts, so a job started twice would show; every job's events must form one unbroken chain
with no transition repeated, and its log lines must be numbered without a gap or a repeat.
Finally one API server is killed with SIGKILL while it runs jobs: another engine adopts them
once the dead one's heartbeat is older than ``MODELOPS_ENGINE_LOST_AFTER``, re-attaches to their
processes and records how they end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import MODELOPS_BIN, RunningServer, start_server
from sqlalchemy import create_engine, text
from support.schedules import (
    deploy_hourly,
    hourly_cron,
    move_next_run,
    past_ticks,
    scheduled_runs,
    wait_for,
)

from modelops.client import ApiError, ModelOpsClient

SLOTS = 2  # per engine: three engines, six slots
JOB_PY = '''
import os, sys, time
marker, seconds = sys.argv[1], float(sys.argv[2])
job = os.environ["MODELOPS_JOB_ID"]
print(f"job {job} starts", flush=True)
fd = os.open(marker, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, f"{job} {os.getpid()}\\n".encode())
os.close(fd)
for i in range(3):
    time.sleep(seconds / 3)
    print(f"line {i}", flush=True)
print("done", flush=True)
'''
MAIN_PY = '''
class Main:
    def __init__(self):
        pass

    def predict(self, rows):
        return rows
'''
TERMINAL = {"completed", "failed", "timed_out", "cancelled"}


def start_worker(home: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    home.mkdir(parents=True, exist_ok=True)
    log = open(home.parent / f"worker-{uuid.uuid4().hex[:6]}.log", "wb")  # noqa: SIM115
    return subprocess.Popen([MODELOPS_BIN, "worker"], env=dict(env, MODELOPS_HOME=str(home)),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def engines(url: str) -> dict[str, datetime]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {name: at for name, at in conn.execute(text("SELECT name, heartbeat_at FROM engines"))}
    finally:
        engine.dispose()


def check_chain(job: dict[str, Any], events: list[dict[str, Any]]) -> None:
    """One unbroken chain of transitions from creation to the job's status, none repeated."""
    assert events[0]["from_status"] is None and events[0]["to_status"] == "created", events
    for before, after in zip(events, events[1:], strict=False):
        assert after["from_status"] == before["to_status"], (job["id"], events)
    targets = [e["to_status"] for e in events]
    assert len(targets) == len(set(targets)), (job["id"], targets)
    assert targets[-1] == job["status"], (job["id"], targets)


def check_logs(client: ModelOpsClient, job: dict[str, Any]) -> list[str]:
    lines = client.jobs.logs(job["id"], limit=1000)
    if not lines:  # stopped while queued: cancelled at once, no process, nothing to log
        assert job["status"] == "cancelled" and job["started_at"] is None, job
        return []
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1)), job["id"]
    started = [line for line in lines if line["stream"] == "system" and line["text"].startswith("started: ")]
    assert len(started) <= 1, (job["id"], started)
    texts = [line["text"] for line in lines if line["stream"] == "stdout"]
    # The closing line comes last: no engine wrote on after the job ended.
    assert lines[-1]["stream"] == "system" and lines[-1]["text"].startswith(f"job {job['status']}"), lines[-3:]
    if job["status"] == "completed":
        assert len(started) == 1
        assert texts == [f"job {job['id']} starts", "line 0", "line 1", "line 2", "done"], texts
    return [line["text"] for line in lines]


def markers(path: Path) -> Counter[int]:
    if not path.exists():
        return Counter()
    return Counter(int(line.split()[0]) for line in path.read_text().splitlines())


@pytest.fixture
def cluster(tmp_path: Path, pg_schema_url: str) -> Iterator[tuple[list[RunningServer], subprocess.Popen[bytes], dict[str, str]]]:
    shared = {
        "MODELOPS_DATABASE_URL": pg_schema_url, "MODELOPS_ARTIFACTS_URL": str(tmp_path / "artifacts"),
        "MODELOPS_MAX_CONCURRENT_JOBS": str(SLOTS), "MODELOPS_ENGINE_HEARTBEAT": "0.5",
        "MODELOPS_ENGINE_LOST_AFTER": "3",
    }
    servers: list[RunningServer] = []
    worker: subprocess.Popen[bytes] | None = None
    try:
        servers.append(start_server(tmp_path / "a", extra_env=shared))
        # The first server made the admin token in the shared database; the others reuse it.
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "admin.token").write_text(servers[0].token)
        servers.append(start_server(tmp_path / "b", extra_env=shared))
        worker = start_worker(tmp_path / "w", servers[1].env)
        wait_for(lambda: len(engines(pg_schema_url)) == 3, timeout=60)
        yield servers, worker, shared
    finally:
        for running in servers:
            running.stop()
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def test_two_api_servers_and_a_worker_on_one_postgresql(
    tmp_path: Path, pg_schema_url: str,
    cluster: tuple[list[RunningServer], subprocess.Popen[bytes], dict[str, str]],
) -> None:
    (a, b), worker, _shared = cluster
    marker = tmp_path / "markers.txt"
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "main.py").write_text(textwrap.dedent(MAIN_PY))
    (package / "job.py").write_text(textwrap.dedent(JOB_PY))
    with a.client() as ca, b.client() as cb:
        ca.projects.create("prod")
        cb.packages.upload("prod", "pkg", package)
        clients = [ca, cb]

        # 1. A burst of jobs through both servers at once; every fifth one is stopped through
        #    the other server, wherever it runs.
        def submit(i: int) -> tuple[int, bool]:
            job = clients[i % 2].jobs.run_script("prod", "pkg", "1.0", ["python", "job.py", str(marker), "0.3"])
            if i % 5 == 0:
                try:
                    clients[(i + 1) % 2].jobs.stop(job["id"])
                except ApiError as exc:  # it ended first: nothing left to stop
                    assert exc.status == 409, exc
            return job["id"], i % 5 == 0

        with ThreadPoolExecutor(max_workers=8) as pool:
            submitted = list(pool.map(submit, range(40)))

        # 2. Meanwhile, a deployment's cron ticks come due for all three schedulers.
        cron = hourly_cron()
        deploy_hourly(ca, tmp_path, cron)
        ticks = past_ticks(cron, 2)
        for done, tick in enumerate(ticks, start=1):
            move_next_run(pg_schema_url, tick)
            wait_for(lambda n=done: len(scheduled_runs(ca)) >= n, timeout=60)

        ended = {job_id: ca.jobs.wait(job_id, timeout=180) for job_id, _ in submitted}
        time.sleep(1.5)  # a few more ticks of every scheduler
        assert [datetime.fromisoformat(t) for t in scheduled_runs(ca)] == ticks
        for run in ca.deployments.runs("sched", "nightly"):
            assert ca.jobs.wait(run["job_id"], timeout=120)["status"] == "completed"

        started = markers(marker)
        assert max(started.values()) == 1, started  # no job started twice
        for job_id, stopped in submitted:
            job = ended[job_id]
            check_chain(job, ca.jobs.events(job_id))
            check_logs(cb, job)
            if stopped:
                assert job["status"] in {"cancelled", "completed"}, job
            else:
                assert job["status"] == "completed", job
            if job["status"] == "completed":
                assert started[job_id] == 1
        assert sum(ended[j]["status"] == "cancelled" for j, s in submitted if s) >= 1
        ran_on = Counter(job["engine"] for job in ended.values() if job["status"] == "completed")
        assert len(ran_on) >= 2, ran_on  # the work really was shared
        assert set(ran_on) <= set(engines(pg_schema_url))

        # 3. Six long jobs fill the six slots, so each engine holds two; then server A dies.
        long_ids = [cb.jobs.run_script("prod", "pkg", "1.0", ["python", "job.py", str(marker), "9"])["id"]
                    for _ in range(3 * SLOTS)]
        wait_for(lambda: all(cb.jobs.get(i)["status"] == "running" for i in long_ids), timeout=60)
        wait_for(lambda: all(markers(marker)[i] == 1 for i in long_ids), timeout=60)
        owners = {i: cb.jobs.get(i)["engine"] for i in long_ids}
        assert Counter(owners.values()).most_common()[0][1] == SLOTS, owners
        a_engine = next(name for name in engines(pg_schema_url) if name.endswith(str(a.home.resolve())))
        orphans = [i for i in long_ids if owners[i] == a_engine]
        assert len(orphans) == SLOTS
        os.killpg(a.process.pid, signal.SIGKILL)
        a.process.wait()

        for job_id in long_ids:
            job = cb.jobs.wait(job_id, timeout=120)
            assert job["status"] == "completed", job
            check_chain(job, cb.jobs.events(job_id))
            texts = check_logs(cb, job)
            if job_id in orphans:
                assert job["engine"] != a_engine
                assert any("stopped answering" in line and "takes the job over" in line for line in texts), texts
                assert any("re-attached to the job's running process" in line for line in texts), texts
            else:
                assert job["engine"] == owners[job_id]
        assert max(markers(marker).values()) == 1
        assert worker.poll() is None


def test_a_second_server_cannot_take_a_live_engines_name(tmp_path: Path) -> None:
    shared = {"MODELOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
              "MODELOPS_ARTIFACTS_URL": str(tmp_path / "artifacts"), "MODELOPS_ENGINE_NAME": "engine-1"}
    first = start_server(tmp_path / "a", extra_env=shared)
    try:
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "admin.token").write_text(first.token)
        with pytest.raises(RuntimeError) as refused:
            start_server(tmp_path / "b", extra_env=shared)
        assert "the job engine name 'engine-1' is held by process" in str(refused.value)
        assert "MODELOPS_ENGINE_NAME" in str(refused.value)
        with first.client() as client:  # the first one is untouched
            assert client.jobs.list(client.projects.create("p")["name"]) == []
    finally:
        first.stop()
    # Once it has stopped, a server restarted under the same name is welcome at once.
    second = start_server(tmp_path / "b", extra_env=shared)
    second.stop()


def test_an_api_only_server_leaves_its_jobs_to_a_worker(tmp_path: Path) -> None:
    shared = {"MODELOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
              "MODELOPS_ARTIFACTS_URL": str(tmp_path / "artifacts")}
    api = start_server(tmp_path / "api", extra_env=dict(shared, MODELOPS_RUN_JOBS="false",
                                                         MODELOPS_RUN_SCHEDULER="false"))
    worker: subprocess.Popen[bytes] | None = None
    try:
        package = tmp_path / "pkg"
        package.mkdir()
        (package / "main.py").write_text(textwrap.dedent(MAIN_PY))
        (package / "job.py").write_text(textwrap.dedent(JOB_PY))
        with api.client() as client:
            client.projects.create("p")
            client.packages.upload("p", "pkg", package)
            job = client.jobs.run_script("p", "pkg", "1.0", ["python", "job.py", str(tmp_path / "m"), "0"])
            time.sleep(1.5)  # several ticks of an engine, had the server one
            assert client.jobs.get(job["id"])["status"] == "queued"
            worker = start_worker(tmp_path / "w", dict(api.env, MODELOPS_RUN_JOBS="true",
                                                       MODELOPS_RUN_SCHEDULER="true"))
            ended = client.jobs.wait(job["id"], timeout=60)
            assert ended["status"] == "completed", ended
            assert ended["engine"] is not None and ended["engine"].endswith(str((tmp_path / "w").resolve()))
    finally:
        api.stop()
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=15) == 0
