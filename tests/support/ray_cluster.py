"""A real Ray head for the tests: one per test session, on loopback only.

Started with ``ray start --head --block`` as our own process (its own session), so teardown
stops exactly the processes it started, never another Ray on the machine. The GCS port is a
free one, never 6379 (Redis holds it here); the dashboard (Ray's Jobs API, which has no
authentication) listens on 127.0.0.1 only. Usage statistics are off: tests reach no network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

# The venv's own ``ray`` script, beside the interpreter running the tests.
RAY_BIN = str(Path(sys.executable).parent / "ray")
HEAD_START_TIMEOUT = 120.0


@dataclass(frozen=True)
class RayHead:
    address: str  # the Jobs API, e.g. http://127.0.0.1:8265
    gcs_address: str
    temp_dir: Path


def free_port(*, avoid: frozenset[int] = frozenset({6379})) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def ray_environment() -> dict[str, str]:
    """The test process's environment minus anything of ours: a cluster holds no secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELOPS_", "RAY_"))}
    env.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"})
    return env


def _stop_tree(process: subprocess.Popen[bytes]) -> None:
    """Stop ``ray start --block`` and every process it started (found by parentage now, and
    by its process group for anything already orphaned)."""
    try:
        members = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        members = []
    process.send_signal(signal.SIGTERM)  # --block stops what it started on SIGTERM
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    _, alive = psutil.wait_procs(members, timeout=10)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)


def start_head(*, num_cpus: int = 2) -> tuple[RayHead, subprocess.Popen[bytes]]:
    # Short: Ray puts unix sockets under it, and their paths are limited to ~100 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="mo-ray-", dir="/tmp"))
    gcs_port = free_port()
    dashboard_port = free_port(avoid=frozenset({6379, gcs_port}))
    used = frozenset({6379, gcs_port, dashboard_port})
    client_port = free_port(avoid=used)
    agent_port = free_port(avoid=used | {client_port})
    command = [
        RAY_BIN, "start", "--head", "--block", "--disable-usage-stats",
        "--node-ip-address=127.0.0.1", f"--port={gcs_port}",
        "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
        f"--ray-client-server-port={client_port}", f"--dashboard-agent-listen-port={agent_port}",
        f"--num-cpus={num_cpus}", f"--temp-dir={temp_dir}",
    ]
    log = open(temp_dir / "ray-start.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, env=ray_environment(), stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    head = RayHead(address=f"http://127.0.0.1:{dashboard_port}", gcs_address=f"127.0.0.1:{gcs_port}",
                   temp_dir=temp_dir)
    deadline = time.monotonic() + HEAD_START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError("ray start exited early:\n" + (temp_dir / "ray-start.log").read_text())
        try:
            # The Jobs API answers once the dashboard's job module is up.
            if httpx.get(f"{head.address}/api/jobs/", timeout=5).status_code == 200 and _warm_up(head):
                return head, process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            _stop_tree(process)
            raise RuntimeError(f"the Ray head did not answer within {HEAD_START_TIMEOUT:g} s:\n"
                               + (temp_dir / "ray-start.log").read_text())
        time.sleep(0.25)


def _warm_up(head: RayHead) -> bool:
    """Run one trivial job: the head accepts jobs only once its agent is up, and the first
    job pays for starting Ray's job machinery, which no test should have to."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(head.address)
    try:
        submission_id = client.submit_job(entrypoint="true")
    except Exception as exc:  # "No available agent" until the head's agent registers
        if "No available agent" in str(exc):
            return False
        raise
    deadline = time.monotonic() + 60
    while not client.get_job_status(submission_id).is_terminal():
        if time.monotonic() > deadline:
            raise RuntimeError("the Ray head did not run a warm-up job within 60 s")
        time.sleep(0.1)
    client.delete_job(submission_id)
    return True


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    head, process = start_head()
    try:
        yield head
    finally:
        _stop_tree(process)
        shutil.rmtree(head.temp_dir, ignore_errors=True)
