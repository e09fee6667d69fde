"""Crash recovery: a real server killed with SIGKILL mid-job, then restarted on the same data.

And the executor's guard against pid reuse when re-attaching.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from conftest import start_server
from fixtures.jobs.support import PACKAGE_DIR, wait_for

from modelops.adapters.executors.local import LocalExecutor
from modelops.adapters.executors.processes import identify


def test_a_killed_server_re_attaches_live_jobs_ends_lost_ones_and_runs_the_queue(
    tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    env = {"MODELOPS_MAX_CONCURRENT_JOBS": "3", "MODELOPS_SCHEDULER_INTERVAL": "0.05",
           "MODELOPS_DATABASE_URL": database_url}
    release = tmp_path / "release"
    server = start_server(home, extra_env=env)
    with server.client() as client:
        client.projects.create("p")
        client.packages.upload("p", "pkg", PACKAGE_DIR)

        def run(*args: str) -> int:
            return client.jobs.run_script("p", "pkg", "1.0", ["python", "job.py", *args])["id"]

        survivor = run("until", str(release))
        lost = run("hang")
        finisher = run("exit_after", "0.5", "3")
        queued = run("print")

        def texts(job_id: int) -> list[str]:
            return [line["text"] for line in client.jobs.logs(job_id) if line["stream"] != "system"]

        lost_pid = int(wait_for(lambda: next((t for t in texts(lost) if t.startswith("pids")), None)).split()[1])
        wait_for(lambda: "sleeping" in texts(finisher) and "tick 3" in texts(survivor))
        assert client.jobs.get(queued)["status"] == "queued"

    server.stop(signal.SIGKILL)
    os.killpg(os.getpgid(lost_pid), signal.SIGKILL)  # this one's machine "crashed" too
    time.sleep(0.8)  # the finisher exits while no server watches

    restarted = start_server(home, extra_env=env)
    try:
        with restarted.client() as client:
            wait_for(lambda: client.jobs.get(lost)["status"] == "failed", what="the lost job to end")
            assert client.jobs.get(survivor)["status"] == "running"
            release.write_text("go")
            ended = {job_id: client.jobs.wait(job_id, timeout=60)
                     for job_id in (survivor, lost, finisher, queued)}
            assert ended[survivor]["status"] == "completed" and ended[survivor]["exit_code"] == 0
            ticks = [t for t in texts(survivor) if t.startswith("tick")]
            assert ticks == [f"tick {i}" for i in range(len(ticks))]  # no line lost or repeated
            assert texts(survivor)[-1] == "released"
            assert any("re-attached" in line["text"] for line in client.jobs.logs(survivor))

            assert ended[lost]["status"] == "failed"
            assert ended[lost]["error"].startswith("worker lost")
            assert (ended[finisher]["status"], ended[finisher]["exit_code"]) == ("failed", 3)
            assert ended[queued]["status"] == "completed"
            assert client.jobs.list("p", statuses=["running", "queued", "cancelling"]) == []
    finally:
        restarted.stop()


def test_re_attaching_refuses_a_reused_pid(tmp_path: Path) -> None:
    executor = LocalExecutor(root=tmp_path / "executor", envs_root=tmp_path / "envs")
    me = identify(os.getpid())
    assert me is not None
    ctl = tmp_path / "executor" / "1-abc"
    ctl.mkdir(parents=True)
    # Our own live pid, but a start time that is not ours: another process's record.
    stale = json.dumps({"pid": me.pid, "start": me.create_time - 3600, "ctl": str(ctl)})
    assert executor.recover(stale) is False
    outcome = executor.poll(stale)
    assert outcome is not None and outcome.lost
    (ctl / "exit").write_text("0\n")  # had it recorded an exit, that would be its real one
    fresh = json.dumps({"pid": me.pid, "start": me.create_time - 7200, "ctl": str(ctl)})
    assert executor.poll(fresh) == type(outcome)(exit_code=0)
    same = json.dumps({"pid": me.pid, "start": me.create_time, "ctl": str(ctl)})
    assert executor.recover(same) is True
