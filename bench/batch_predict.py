"""Batch prediction against a hand-written script, as ratios: throughput and flat memory.

    .venv/bin/python bench/batch_predict.py [--rows 1000000] [--chunk-rows 50000]
                                            [--memory-rows 1600000] [--trees 10]
                                            [--ray | --no-ray] [--ray-node-cpus 1]

Same model (a scikit-learn random forest in an ML package's main.py), same Parquet file.

1. Throughput: rows per second through a real BATCH_PREDICTION job (Run now on a deployment:
   submit → completed, so engine pickup, copying the input, the job's process, writing the
   predictions and registering them as a dataset version all count) against a hand-written
   ``read_parquet → predict → to_parquet`` script run as its own process. Best of two each.
   Target: job ≥ 0.8 × script.
2. Memory: peak RSS of the job's process (``python -m modelops.runtime.batch_predict``, the
   program the job runs) on a file ``--memory-rows`` long and on one 8 × shorter, both many times
   the chunk budget. Flat memory means a ratio near 1; the hand-written script's ratio shows
   what reading everything at once costs.
3. Ray (``--ray``, the default; ``--no-ray`` runs 1 and 2 alone): the same job on the Ray
   executor, its chunks scored as Ray tasks, on a cluster of one node then two
   (``ray.cluster_utils.Cluster`` on loopback, ``--ray-node-cpus`` CPUs each), as throughput
   ratios against the local executor's job of part 1. Best of two each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.ensemble import RandomForestClassifier

from modelops.archives import pack_zip
from modelops.bootstrap import Container, build_container
from modelops.domain.entities import Principal
from modelops.domain.model_status import ModelStatus
from modelops.domain.roles import Role
from modelops.settings import Settings

USER = Principal(token_id=0, name="bench", role=Role.ADMIN)
FEATURES = ["f0", "f1", "f2", "f3"]

MAIN_PY = '''
from pathlib import Path

import joblib

FEATURES = ["f0", "f1", "f2", "f3"]


class Main:
    def __init__(self):
        self.model = joblib.load(Path(__file__).parent / "model.joblib")

    def predict(self, frame):
        return self.model.predict(frame[FEATURES].to_numpy())
'''
TRAIN_PY = '''
class Main:
    def __init__(self): pass
    def train(self, data_directory): pass
    def evaluate(self, data_directory): return 1.0
    def save(self): pass
'''
SCRIPT = '''
import sys
import joblib
import pandas as pd
model = joblib.load(sys.argv[1])
frame = pd.read_parquet(sys.argv[2])
frame["prediction"] = model.predict(frame[["f0", "f1", "f2", "f3"]].to_numpy())
frame.to_parquet(sys.argv[3])
'''


def make_model(folder: Path, trees: int) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 4))
    y = np.where(x[:, 0] + x[:, 1] > 0.5, "a", np.where(x[:, 2] > 0, "b", "c"))
    model = RandomForestClassifier(n_estimators=trees, max_depth=10, n_jobs=1, random_state=0).fit(x, y)
    package = folder / "forest"
    package.mkdir()
    joblib.dump(model, package / "model.joblib")
    (package / "main.py").write_text(textwrap.dedent(MAIN_PY))
    (package / "train.py").write_text(textwrap.dedent(TRAIN_PY))
    return package


def make_parquet(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(rows)
    writer = None
    for start in range(0, rows, 500_000):
        n = min(500_000, rows - start)
        table = pa.table({"id": np.arange(start, start + n), **{f: rng.normal(size=n) for f in FEATURES}})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    return path


# A forked child's peak RSS counts its parent's pages from before exec, so children are
# started from this small helper process rather than from the (large) benchmark process.
MEASURE = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(usage.ru_maxrss)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_measured(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURE, *argv], capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {done.stderr}")
    return took, int(done.stdout.split()[-1]) * 1024  # kilobytes on Linux


def platform(home: Path, package: Path, data: Path, chunk_rows: int, **settings: Any) -> Container:
    container = build_container(Settings(home=home, max_concurrent_jobs=2, **settings))
    container.start_background()
    container.projects.create(principal=USER, name="bench")
    pack_zip(package, home / "forest.zip")
    version = container.packages.upload(principal=USER, project="bench", name="forest", archive=home / "forest.zip")
    with container.uow() as uow:  # setup only: the evaluation path is not what is measured
        uow.packages.transition_version(version.id, ModelStatus.EVALUATED)
    container.lifecycle.decisions.approve(principal=USER, project="bench", package="forest", version="1.0",
                                          reason="benchmark")
    folder = home / "input"
    folder.mkdir()
    os.link(data, folder / data.name)
    pack_zip(folder, home / "input.zip")
    container.datasets.upload_version(principal=USER, project="bench", name="input", archive=home / "input.zip")
    container.lifecycle.deployments.deploy(principal=USER, project="bench", package="forest", version="1.0",
                                           name="bench", dataset="input", chunk_rows=chunk_rows)
    return container


def job_seconds(container: Container) -> tuple[float, float]:
    """Submit → completed, and the job's own started → ended, in seconds."""
    started = time.perf_counter()
    run = container.lifecycle.batch.run_now(principal=USER, project="bench", deployment="bench")
    while True:
        job = container.jobs.get(principal=USER, job_id=run.job.id)
        if job.terminal:
            break
        time.sleep(0.02)
    took = time.perf_counter() - started
    if job.status.value != "completed":
        raise SystemExit(f"batch job ended {job.status}: {job.error}")
    assert job.started_at and job.ended_at
    return took, (job.ended_at - job.started_at).total_seconds()


def free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != 6379 and port not in taken:  # 6379 is Redis's, and Ray's default
            taken.add(port)
            return port


@contextlib.contextmanager
def ray_cluster(node_cpus: int) -> Iterator[tuple[Any, str]]:
    """A one-node Ray cluster on loopback (add nodes with ``cluster.add_node``); yields the
    cluster and its Jobs API address. Stops only the processes it started."""
    import httpx
    import psutil
    from ray.cluster_utils import Cluster

    temp_dir = tempfile.mkdtemp(prefix="mo-bench-", dir="/tmp")  # short: unix socket paths
    saved = {name: os.environ.get(name) for name in ("RAY_TMPDIR", "RAY_USAGE_STATS_ENABLED",
                                                     "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    os.environ.update({"RAY_TMPDIR": temp_dir, "RAY_USAGE_STATS_ENABLED": "0",
                       "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    taken: set[int] = set()
    gcs_port, dashboard_port = free_port(taken), free_port(taken)
    cluster = Cluster(initialize_head=True, head_node_args={
        "gcs_server_port": gcs_port, "node_ip_address": "127.0.0.1", "num_cpus": node_cpus,
        "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": dashboard_port,
    })
    try:
        address = f"http://127.0.0.1:{dashboard_port}"
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{address}/api/jobs/", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the Ray head's Jobs API did not answer within 120 s")
            time.sleep(0.25)
        yield cluster, address
    finally:
        ours = [child for child in psutil.Process().children(recursive=True) if child.pid not in before]
        cluster.shutdown()
        _, alive = psutil.wait_procs(ours, timeout=10)
        for child in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(temp_dir, ignore_errors=True)


def ray_column(root: Path, package: Path, data: Path, args: argparse.Namespace) -> dict[str, float]:
    """Best submit → completed seconds of the job on a one-node, then a two-node cluster."""
    best: dict[str, float] = {}
    with ray_cluster(args.ray_node_cpus) as (cluster, address):
        container = platform(root / "ray-home", package, data, args.chunk_rows, executor="ray", ray_address=address)
        try:
            best["1 node"] = min(job_seconds(container)[0] for _ in range(2))
            cluster.add_node(num_cpus=args.ray_node_cpus, node_ip_address="127.0.0.1")
            cluster.wait_for_nodes(timeout=120)
            best["2 nodes"] = min(job_seconds(container)[0] for _ in range(2))
        finally:
            container.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--memory-rows", type=int, default=1_600_000)
    parser.add_argument("--trees", type=int, default=10)
    parser.add_argument("--ray", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the job on the Ray executor, one node then two (default: on)")
    parser.add_argument("--ray-node-cpus", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = Path(tmp)
        package = make_model(root, args.trees)
        data = make_parquet(root / "rows.parquet", args.rows)
        script = root / "script.py"
        script.write_text(SCRIPT)
        baseline = [sys.executable, str(script), str(package / "model.joblib"), str(data), str(root / "out.parquet")]

        container = platform(root / "home", package, data, args.chunk_rows)
        try:
            script_runs, job_runs = [], []
            for _ in range(2):
                script_runs.append(run_measured(baseline)[0])
                job_runs.append(job_seconds(container))
        finally:
            container.close()
        script_rate = args.rows / min(script_runs)
        job_rate = args.rows / min(total for total, _ in job_runs)
        inside_rate = args.rows / min(inside for _, inside in job_runs)
        print(f"throughput, {args.rows:,} rows, {args.trees}-tree forest, chunks of {args.chunk_rows:,} rows")
        print(f"  batch job (submit → completed) / hand-written script: {job_rate / script_rate:.2f}x "
              f"(target ≥ 0.80x; {job_rate:,.0f} vs {script_rate:,.0f} rows/s)")
        print(f"  batch job, claimed → completed only / script:      {inside_rate / script_rate:.2f}x")
        if args.ray:
            ray_best = ray_column(root, package, data, args)
            print(f"Ray executor, chunks scored as Ray tasks ({args.ray_node_cpus} CPU(s) per node), "
                  "submit → completed, against the local executor's job")
            print(f"  local executor: {job_rate:,.0f} rows/s (1.00x)")
            for label, seconds in ray_best.items():
                rate = args.rows / seconds
                print(f"  Ray, {label}: {rate:,.0f} rows/s ({rate / job_rate:.2f}x)")

        big = make_parquet(root / "big.parquet", args.memory_rows)
        small = make_parquet(root / "small.parquet", args.memory_rows // 8)
        peaks: dict[str, dict[str, int]] = {"job": {}, "script": {}}
        for label, path in (("big", big), ("small", small)):
            data_dir = root / f"data-{label}"
            data_dir.mkdir()
            os.link(path, data_dir / path.name)
            (root / "spec.json").write_text(json.dumps({"format": "package", "code_root": ""}))
            peaks["job"][label] = run_measured([
                sys.executable, "-I", "-m", "modelops.runtime.batch_predict", "--model-dir", str(package),
                "--spec", str(root / "spec.json"), "--data", str(data_dir), "--out", str(root / f"{label}.out.parquet"),
                "--summary", str(root / f"{label}.json"), "--job-id", "1", "--chunk-rows", str(args.chunk_rows),
            ])[1]
            peaks["script"][label] = run_measured(
                [sys.executable, str(script), str(package / "model.joblib"), str(path), str(root / "s.parquet")]
            )[1]
        big_chunks = args.memory_rows // args.chunk_rows
        print(f"peak memory, {args.memory_rows:,} rows ({big_chunks}× the chunk) vs {args.memory_rows // 8:,} rows")
        print(f"  batch job process: {peaks['job']['big'] / peaks['job']['small']:.2f}x "
              f"(flat ≈ 1; {peaks['job']['big'] / 2**20:,.0f} MiB at most)")
        print(f"  hand-written script: {peaks['script']['big'] / peaks['script']['small']:.2f}x; "
              f"job / script on the big file: {peaks['job']['big'] / peaks['script']['big']:.2f}x")


if __name__ == "__main__":
    main()
