"""The jobs REST API, client and CLI against a real ``modelops up`` on SQLite and PostgreSQL.

One server per backend for the module (starting one costs seconds); each test makes its own
jobs and stops what it starts.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import psutil
import pytest
from conftest import RunningServer, pg_base_url, start_server
from fixtures.jobs.support import PACKAGE_DIR, wait_for
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelops.client import ApiError, ModelOpsClient


@dataclass
class Api:
    server: RunningServer
    backend: str
    client: ModelOpsClient

    def script(self, *args: str, project: str = "p", timeout: float | None = None) -> dict:
        return self.client.jobs.run_script(project, "pkg", "1.0", ["python", "job.py", *args],
                                           timeout_seconds=timeout)

    def pids(self, job_id: int) -> list[int]:
        def found() -> list[int] | None:
            for line in self.client.jobs.logs(job_id):
                if line["text"].startswith("pids "):
                    return [int(pid) for pid in line["text"].split()[1:]]
            return None

        return wait_for(found, what=f"pids of job {job_id}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    env = {"MODELOPS_MAX_CONCURRENT_JOBS": "3", "MODELOPS_SCHEDULER_INTERVAL": "0.05"}
    schema = None
    if request.param == "postgresql":
        base = pg_base_url()
        if not base:
            pytest.skip("MODELOPS_TEST_DATABASE_URL is not set: no PostgreSQL to test against")
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with create_engine(base).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        env["MODELOPS_DATABASE_URL"] = make_url(base).update_query_dict(
            {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    server = start_server(tmp_path_factory.mktemp(f"jobs-api-{request.param}") / "home", extra_env=env)
    client = server.client()
    try:
        for project in ("p", "q"):
            client.projects.create(project)
            client.packages.upload(project, "pkg", PACKAGE_DIR)
        yield Api(server=server, backend=request.param, client=client)
    finally:
        for project in ("p", "q"):
            with contextlib.suppress(ApiError):
                client.jobs.stop_all(project)
        client.close()
        server.stop()
        if schema:
            with create_engine(pg_base_url() or "").begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def test_a_submitted_job_is_queued_at_once_then_runs_with_events_and_logs(api: Api) -> None:
    job = api.script("print")
    assert job["status"] in ("queued", "running") and job["kind"] == "script"
    assert job["target_type"] == "model_version" and job["actor"] == "admin"
    ended = api.client.jobs.wait(job["id"])
    assert ended["status"] == "completed" and ended["exit_code"] == 0 and ended["terminal"]
    events = api.client.jobs.events(job["id"])
    assert [e["to_status"] for e in events] == ["created", "queued", "running", "completed"]
    assert api.client.jobs.event(job["id"], events[0]["id"])["detail"] == {"kind": "script"}
    errors = api.client.jobs.logs(job["id"], level="error")
    assert [(line["stream"], line["text"]) for line in errors] == [
        ("stdout", "ERROR:trainer:could not read row 7")
    ]
    listed = api.client.jobs.list("p", kinds=["script"], statuses=["completed"])
    assert job["id"] in [j["id"] for j in listed]
    assert api.client.jobs.list("p", statuses=["timed_out"]) == [] or all(
        j["status"] == "timed_out" for j in api.client.jobs.list("p", statuses=["timed_out"]))


def test_following_logs_streams_lines_live_and_ends_with_the_status(api: Api) -> None:
    job = api.script("ticks", "15", "0.1")
    records = []
    first_seen_while = None
    for record in api.client.jobs.follow_logs(job["id"]):
        records.append(record)
        if record.get("text") == "tick 0":
            first_seen_while = api.client.jobs.get(job["id"])["status"]
    assert first_seen_while == "running"
    ticks = [r["text"] for r in records if r["type"] == "log" and r["stream"] == "stdout"]
    assert ticks == [f"tick {i}" for i in range(15)]
    assert records[-1] == {"type": "end", "status": "completed", "error": None, "exit_code": 0,
                           "signal": None}


def test_fifty_concurrent_stops_give_one_transition_and_409_for_the_rest(api: Api) -> None:
    job = api.script("hang")
    pids = api.pids(job["id"])
    barrier = threading.Barrier(50)
    codes: list[int] = []

    def stop() -> None:
        with httpx.Client(base_url=api.server.url, timeout=60,
                          headers={"Authorization": f"Bearer {api.server.token}"}) as http:
            barrier.wait()
            response = http.post(f"/api/v1/jobs/{job['id']}/stop")
            codes.append(response.status_code)

    threads = [threading.Thread(target=stop) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] + [409] * 49
    ended = api.client.jobs.wait(job["id"], timeout=10, interval=0.05)
    assert ended["status"] == "cancelled"
    events = api.client.jobs.events(job["id"])
    assert [e["to_status"] for e in events].count("cancelling") == 1
    # Server clocks: from the accepted stop to cancelled (processes gone) within 2 s.
    stop_at = datetime.fromisoformat(next(e["at"] for e in events if e["to_status"] == "cancelling"))
    assert datetime.fromisoformat(ended["ended_at"]) - stop_at < timedelta(seconds=2)
    assert all(not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
               for pid in pids)


def test_stop_all_stops_the_running_and_queued_jobs_of_one_project_only(api: Api) -> None:
    other = api.script("sleep", "30", project="p")
    jobs = [api.script("sleep", "30", project="q") for _ in range(3)]
    wait_for(lambda: api.client.jobs.get(other["id"])["status"] == "running")
    stopped = api.client.jobs.stop_all("q")
    assert sorted(j["id"] for j in stopped) == sorted(j["id"] for j in jobs)
    for job in jobs:
        assert api.client.jobs.wait(job["id"], timeout=10)["status"] == "cancelled"
    assert api.client.jobs.get(other["id"])["status"] == "running"
    assert api.client.jobs.stop_all("q") == []
    api.client.jobs.stop(other["id"])
    assert api.client.jobs.wait(other["id"], timeout=10)["status"] == "cancelled"


def test_bad_requests_get_a_clear_4xx(api: Api) -> None:
    def status_of(method: str, path: str, **kwargs: object) -> tuple[int, str]:
        response = api.client.http.request(method, path, **kwargs)  # type: ignore[arg-type]
        return response.status_code, response.json()["detail"]

    assert status_of("POST", "/projects/p/jobs", json={"kind": "bogus"})[0] == 400
    code, detail = status_of("POST", "/projects/p/jobs", json={
        "kind": "script", "parameters": {"package": "missing", "version": "1.0", "command": ["python"]}})
    assert code == 404 and "missing" in detail
    assert status_of("POST", "/projects/p/jobs", json={"kind": "script", "timeout_seconds": -1})[0] == 422
    assert status_of("POST", "/projects/nope/jobs", json={
        "kind": "script", "parameters": {"package": "pkg", "version": "1.0", "command": ["python"]}})[0] == 404
    assert status_of("GET", "/jobs/999999")[0] == 404
    assert status_of("GET", "/projects/p/jobs", params={"status": "sleeping"})[0] == 400
    done = api.client.jobs.wait(api.script("exit", "0")["id"])
    assert status_of("GET", f"/jobs/{done['id']}/events/999999")[0] == 404
    code, detail = status_of("GET", f"/jobs/{done['id']}/logs", params={"level": "loud"})
    assert code == 400 and "unknown log level" in detail
    code, detail = status_of("POST", f"/jobs/{done['id']}/stop")
    assert code == 409 and "'completed'" in detail
    viewer = api.client.tokens.create(f"viewer-{api.backend}", "viewer")
    with api.server.client(token=viewer["secret"]) as as_viewer:
        with pytest.raises(ApiError) as refused:
            as_viewer.jobs.run_script("p", "pkg", "1.0", ["python", "job.py"])
        assert refused.value.status == 403
        assert as_viewer.jobs.get(done["id"])["id"] == done["id"]


def test_the_cli_submits_follows_shows_and_stops_jobs(api: Api) -> None:
    if api.backend != "sqlite":
        pytest.skip("the CLI is backend-independent; once is enough")
    params = json.dumps({"package": "pkg", "version": "1.0", "command": ["python", "job.py", "raise"]})
    submitted = api.server.cli("jobs", "submit", "p", "--kind", "script", "--params", params, "--json")
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]

    followed = api.server.cli("jobs", "logs", str(job_id), "--follow")
    assert followed.returncode == 0, followed.stderr
    assert "ValueError: boom: bad value" in followed.stdout
    assert f"job {job_id} failed: ValueError: boom: bad value" in followed.stdout

    errors = json.loads(api.server.cli("jobs", "logs", str(job_id), "--level", "error", "--json").stdout)
    assert errors[0]["text"] == "Traceback (most recent call last):"
    assert {line["level"] for line in errors} == {"error"}

    shown = api.server.cli("jobs", "show", str(job_id))
    assert "failed" in shown.stdout and "ValueError: boom: bad value" in shown.stdout
    events = json.loads(api.server.cli("jobs", "events", str(job_id), "--json").stdout)
    event = api.server.cli("jobs", "event", str(job_id), str(events[-1]["id"]))
    assert "failed" in event.stdout and "exit_code" in event.stdout
    listed = json.loads(api.server.cli("jobs", "list", "p", "--status", "failed", "--json").stdout)
    assert job_id in [j["id"] for j in listed]

    refused = api.server.cli("jobs", "stop", str(job_id))
    assert refused.returncode == 1 and "(409)" in refused.stderr

    sleeper = api.script("sleep", "30", project="q")
    wait_for(lambda: api.client.jobs.get(sleeper["id"])["status"] == "running")
    stop_all = api.server.cli("jobs", "stop-all", "q")
    assert stop_all.returncode == 0 and f"Job {sleeper['id']}: cancelling" in stop_all.stdout
    assert api.client.jobs.wait(sleeper["id"], timeout=10)["status"] == "cancelled"
