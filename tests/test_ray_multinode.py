"""Jobs spread over the nodes of a Ray cluster: two nodes on one box (``ray.cluster_utils``).

Each node has one CPU and each job reserves one (``ray_job_cpus``), so two jobs running at
once can only run on different nodes; Ray's own record of each job says which.

Opt-in (``MODELOPS_TEST_RAY_MULTINODE=1``): starting a second node takes 30-45 s on a busy
two-core box, and Ray gives a starting node a fixed 30 s to register, so in the default
suite it would be slow and, under load, flaky.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
from ray.job_submission import JobSubmissionClient
from support.ray_cluster import free_port

from modelops.domain.jobs import JobStatus

pytestmark = pytest.mark.skipif(
    os.environ.get("MODELOPS_TEST_RAY_MULTINODE") != "1",
    reason="multi-node Ray test: set MODELOPS_TEST_RAY_MULTINODE=1 to run it",
)


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[str]:
    """A two-node cluster on loopback; yields the Jobs API address."""
    from ray.cluster_utils import Cluster

    temp_dir = tempfile.mkdtemp(prefix="mo-rc-", dir="/tmp")  # short: unix socket paths
    saved = {name: os.environ.get(name) for name in ("RAY_TMPDIR", "RAY_USAGE_STATS_ENABLED",
                                                     "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    # The cluster records its address under RAY_TMPDIR: keep it out of the machine's /tmp/ray.
    os.environ.update({"RAY_TMPDIR": temp_dir, "RAY_USAGE_STATS_ENABLED": "0",
                       "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    gcs_port = free_port()
    dashboard_port = free_port(avoid=frozenset({6379, gcs_port}))
    cluster = Cluster(initialize_head=True, head_node_args={
        "gcs_server_port": gcs_port, "node_ip_address": "127.0.0.1", "num_cpus": 1,
        "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": dashboard_port,
    })
    try:
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        address = f"http://127.0.0.1:{dashboard_port}"

        def jobs_api_up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{address}/api/jobs/", timeout=5).status_code == 200
            return False

        wait_for(jobs_api_up, timeout=120, interval=0.25, what="the Jobs API")
        yield address
    finally:
        ours = [child for child in psutil.Process().children(recursive=True) if child.pid not in before]
        cluster.shutdown()
        _, alive = psutil.wait_procs(ours, timeout=10)
        for child in alive:  # only what this fixture started
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_two_jobs_at_once_run_on_different_nodes(tmp_path: Path, two_nodes: str) -> None:
    container = engine_container(tmp_path / "home", f"sqlite:///{tmp_path / 'meta.db'}",
                                 executor="ray", ray_address=two_nodes, ray_job_cpus=1.0)
    try:
        upload_fixture_package(container, tmp_path)
        # Long enough that both surely overlap; they are stopped once their nodes are known.
        jobs = [run_script(container, "sleep", "120") for _ in range(2)]
        for job in jobs:
            wait_for(lambda job=job: "sleeping" in log_texts(container, job.id), timeout=90,
                     what=f"job {job.id} to run")
        client = JobSubmissionClient(two_nodes)
        nodes = set()
        for job in jobs:
            ref = container.jobs.get(principal=ALICE, job_id=job.id).worker_ref
            assert ref is not None
            nodes.add(client.get_job_info(json.loads(ref)["ray"]).driver_node_id)
        assert len(nodes) == 2 and None not in nodes
        for job in jobs:
            container.jobs.stop(principal=ALICE, job_id=job.id)
        ended = [wait_terminal(container, job.id, timeout=30) for job in jobs]
        assert [job.status for job in ended] == [JobStatus.CANCELLED] * 2
    finally:
        close_engine_container(container)
