"""Jobs spread over the nodes of a Ray cluster: two nodes on one box (``ray.cluster_utils``).

Each node has one CPU and each job reserves one (``ray_job_cpus``), so two jobs running at
once can only run on different nodes; Ray's own record of each job says which, and the two
must be the cluster's two nodes.

Runs by default; ``MODELOPS_TEST_RAY_MULTINODE=0`` skips it, and so does a missing ``ray``.
On a busy two-core box a starting node is the slow part: Ray gives its raylet a fixed 30 s to
register, and the raylet first waits for its Python agents to start. So the second node
starts only once the head has settled (Jobs API answering, agents listening), every wait of
ours is generous (``NODE_START_TIMEOUT``), the nodes start fewer processes (no autoscaler
monitor, no log monitor) and a smaller object store, and a node that still fails to start
is stopped and started once more, with a warning naming the first failure. A second failure
fails the test, with the tails of the nodes' logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
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
from support.ray_cluster import free_port

from modelops.domain.jobs import JobStatus

JobSubmissionClient = pytest.importorskip("ray.job_submission").JobSubmissionClient

# Deadlines for a loaded two-core box, where another test file runs beside this one; idle,
# a node starts in under 10 s and a job in a few. Each try at starting a node has its own
# NODE_START_TIMEOUT (beyond Ray's own 30 s for its raylet to register).
NODE_START_TIMEOUT = 120.0
JOB_START_TIMEOUT = 180.0
OBJECT_STORE_BYTES = 80 * 1024 * 1024  # Ray's least is 75 MiB; the jobs here store nothing
pytestmark = [
    pytest.mark.skipif(os.environ.get("MODELOPS_TEST_RAY_MULTINODE") == "0",
                       reason="multi-node Ray test skipped by MODELOPS_TEST_RAY_MULTINODE=0"),
    # Room for both tries of both nodes and the jobs' deadlines; passing takes about 30 s.
    pytest.mark.timeout(900),
]
T = TypeVar("T")


class _Ports:
    """Free loopback ports, each handed out once, never Redis's 6379."""

    def __init__(self) -> None:
        self.used = {6379}

    def take(self) -> int:
        port = free_port(avoid=frozenset(self.used))
        self.used.add(port)
        return port


NODE_ARGS: dict[str, Any] = {"node_ip_address": "127.0.0.1", "num_cpus": 1,
                             "object_store_memory": OBJECT_STORE_BYTES}


def _head_args(ports: _Ports) -> dict[str, Any]:
    return {**NODE_ARGS, "gcs_server_port": ports.take(),
            "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": ports.take(),
            # Two processes fewer to start: jobs need neither the autoscaler's monitor nor the
            # streaming of worker logs to drivers (a job's log is read through the Jobs API).
            "no_monitor": True, "include_log_monitor": False}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 1.0)


def _agents_ready(node: Any, deadline: float) -> None:
    """Both agents of a node answer: jobs are started and their logs read through them."""
    ports = (node.dashboard_agent_listen_port, node.runtime_env_agent_port)
    wait_for(lambda: all(_listening(port) for port in ports), timeout=_left(deadline),
             interval=0.25, what=f"the agents listening on {ports}")


def _descendants() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


def _kill(procs: list[psutil.Process]) -> None:
    """Stop these processes if they still run (psutil tells a reused pid from the original)."""
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)


def _log_tails(temp_dir: str, lines: int = 20) -> str:
    logs = sorted(Path(temp_dir).glob("ray/session_*/logs/*"), key=lambda path: path.stat().st_mtime)
    wanted = [path for path in logs
              if path.name.startswith(("raylet", "dashboard", "runtime_env_agent", "gcs_server"))]
    def tail(path: Path) -> str:
        kept = [line for line in path.read_text(errors="replace").splitlines() if "[state-dump]" not in line]
        return "\n".join(kept[-lines:])

    return "\n".join(f"--- {path.name}\n{tail(path)}" for path in wanted[-6:])


def _start_node(start: Callable[[], T], ready: Callable[[T, float], None], discard: Callable[[T], None], *,
                what: str, temp_dir: str) -> T:
    """``start()`` then ``ready(node, deadline)``. If either fails: ``discard(node)``, stop every
    process the try started, and try once more, warning with the first failure; a second
    failure fails the test with the tails of the nodes' logs."""
    first: Exception | None = None
    while True:
        pids_before = {proc.pid for proc in _descendants()}
        node: T | None = None
        try:
            node = start()
            ready(node, time.monotonic() + NODE_START_TIMEOUT)
        except Exception as exc:
            if first is not None:
                raise RuntimeError(f"{what} failed to start twice; first: {first!r}\n"
                                   + _log_tails(temp_dir)) from exc
            first = exc
            if node is not None:
                with contextlib.suppress(Exception):
                    discard(node)
            _kill([proc for proc in _descendants() if proc.pid not in pids_before])
            continue
        if first is not None:
            warnings.warn(f"{what} started at the second try; the first failed: {first!r}", stacklevel=2)
        return node


@dataclass(frozen=True)
class TwoNodes:
    address: str  # the Jobs API
    node_ids: frozenset[str]


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[TwoNodes]:
    """A two-node cluster on loopback."""
    from ray.cluster_utils import Cluster

    temp_dir = tempfile.mkdtemp(prefix="mo-rc-", dir="/tmp")  # short: unix socket paths
    ours = {name: value for name, value in os.environ.items() if name.startswith("MODELOPS_")}
    saved = {name: os.environ.get(name) for name in ("RAY_TMPDIR", "RAY_USAGE_STATS_ENABLED",
                                                     "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    # The cluster records its address under RAY_TMPDIR: keep it out of the machine's /tmp/ray.
    os.environ.update({"RAY_TMPDIR": temp_dir, "RAY_USAGE_STATS_ENABLED": "0",
                       "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    # Ray's processes inherit this environment while they start: none of our settings (the
    # test database's URL among them) may reach the cluster.
    for name in ours:
        del os.environ[name]
    pids_before = {proc.pid for proc in _descendants()}
    ports = _Ports()
    clusters: list[Cluster] = []
    try:
        head_args: dict[str, Any] = {}

        def start_head() -> Cluster:
            head_args.clear()
            head_args.update(_head_args(ports))
            cluster = Cluster(initialize_head=False)
            clusters.append(cluster)
            cluster.add_node(wait=False, **head_args)
            return cluster

        def head_ready(cluster: Cluster, deadline: float) -> None:
            cluster.wait_for_nodes(timeout=_left(deadline))
            address = f"http://127.0.0.1:{head_args['dashboard_port']}"

            def jobs_api_up() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return httpx.get(f"{address}/api/jobs/", timeout=5).status_code == 200
                return False

            wait_for(jobs_api_up, timeout=_left(deadline), interval=0.25, what="the Jobs API")
            _agents_ready(cluster.head_node, deadline)

        cluster = _start_node(start_head, head_ready, lambda failed: failed.shutdown(),
                              what="the Ray head", temp_dir=temp_dir)

        def worker_ready(node: Any, deadline: float) -> None:
            # Also outwaits a node of a failed first try that registered late and was stopped.
            cluster.wait_for_nodes(timeout=_left(deadline))
            _agents_ready(node, deadline)

        # Only once the head has settled: its dashboard starts about ten Python processes.
        worker = _start_node(lambda: cluster.add_node(wait=False, **NODE_ARGS), worker_ready,
                    lambda failed: cluster.remove_node(failed, allow_graceful=False),
                    what="the second Ray node", temp_dir=temp_dir)
        os.environ.update(ours)
        head = cluster.head_node
        assert head is not None
        yield TwoNodes(address=f"http://127.0.0.1:{head_args['dashboard_port']}",
                       node_ids=frozenset({head.node_id, worker.node_id}))
    finally:
        started = [proc for proc in _descendants() if proc.pid not in pids_before]
        for each in clusters:
            with contextlib.suppress(Exception):
                each.shutdown()
        _kill(started)  # only what this fixture started, if any of it still runs
        os.environ.update(ours)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_two_jobs_at_once_run_on_different_nodes(tmp_path: Path, two_nodes: TwoNodes) -> None:
    assert len(two_nodes.node_ids) == 2
    container = engine_container(tmp_path / "home", f"sqlite:///{tmp_path / 'meta.db'}",
                                 executor="ray", ray_address=two_nodes.address, ray_job_cpus=1.0)
    try:
        upload_fixture_package(container, tmp_path)
        # Long enough that both surely overlap; they are stopped once their nodes are known.
        jobs = [run_script(container, "sleep", "120") for _ in range(2)]
        for job in jobs:
            wait_for(lambda job=job: "sleeping" in log_texts(container, job.id), timeout=JOB_START_TIMEOUT,
                     what=f"job {job.id} to run")
        client = JobSubmissionClient(two_nodes.address)
        nodes = set()
        for job in jobs:
            ref = container.jobs.get(principal=ALICE, job_id=job.id).worker_ref
            assert ref is not None
            nodes.add(client.get_job_info(json.loads(ref)["ray"]).driver_node_id)
        assert nodes == two_nodes.node_ids
        for job in jobs:
            container.jobs.stop(principal=ALICE, job_id=job.id)
        ended = [wait_terminal(container, job.id, timeout=60) for job in jobs]
        assert [job.status for job in ended] == [JobStatus.CANCELLED] * 2
    finally:
        close_engine_container(container)
