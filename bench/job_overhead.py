"""What the job engine costs on top of starting a process, as ratios against bare baselines.

    .venv/bin/python bench/job_overhead.py [--runs 40] [--jobs 60] [--slots N] [--database-url URL]

1. Latency, submit → first line of user code: ``JobService.submit`` (what the API calls) until
   the job's first statement runs, read from the time it prints. Baseline: one database insert
   plus a bare ``python -c`` spawn that prints the time, on the same database and interpreter.
   p50 and p95 of each, and their ratios.
2. Throughput: no-op jobs per second with N slots (all submitted at once, until the last one
   is ``completed``), against a loop spawning bare ``python -c pass`` with N in parallel.

The engine runs in this process with its default tick (``scheduler_interval``): a submit
wakes it at once, so the tick does not show in the latency. Both parts run twice, on two engines
side by side: the default one, whose Python jobs start on a standby interpreter started ahead
(``MODELOPS_JOB_STANDBY``, see docs/jobs.md), and one that starts every job's process fresh.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelops.archives import pack_zip
from modelops.bootstrap import Container, build_container
from modelops.domain.entities import Principal
from modelops.domain.jobs import JobStatus
from modelops.domain.roles import Role
from modelops.settings import Settings

USER = Principal(token_id=0, name="bench", role=Role.MEMBER)
FIRST_LINE = "import time; print(f'first-line {time.time():.6f}', flush=True)\n"
PRINT_TIME = "import time; print(f'{time.time():.6f}', flush=True)"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def make_package(folder: Path) -> Path:
    src = folder / "bench-package"
    src.mkdir(parents=True)
    (src / "main.py").write_text(
        "class Main:\n    def __init__(self):\n        pass\n\n    def predict(self, rows):\n        return rows\n"
    )
    (src / "first.py").write_text(FIRST_LINE)
    (src / "noop.py").write_text("")
    archive = folder / "bench-package.zip"
    pack_zip(src, archive)
    return archive


def wait_ended(container: Container, job_id: int) -> JobStatus:
    # Look only every 20 ms, starting after a first pause: the harness's own reads must not
    # compete with the engine for the database it measures.
    while True:
        time.sleep(0.02)
        job = container.jobs.get(principal=USER, job_id=job_id)
        if job.terminal:
            return job.status


def job_latency(container: Container) -> float:
    started = time.time()
    job = container.jobs.submit(
        principal=USER, project="bench", kind="script",
        parameters={"package": "pkg", "version": "1.0", "command": ["python", "first.py"]},
    )
    status = wait_ended(container, job.id)
    if status is not JobStatus.COMPLETED:
        raise SystemExit(f"job {job.id} ended {status}")
    line = next(
        entry.text for entry in container.jobs.logs(principal=USER, job_id=job.id)
        if entry.text.startswith("first-line ")
    )
    return float(line.split()[1]) - started


def baseline_latency(container: Container) -> float:
    started = time.time()
    with container.engine.begin() as conn:
        conn.execute(text("INSERT INTO bench_insert (note) VALUES ('x')"))
    out = subprocess.run([sys.executable, "-c", PRINT_TIME], capture_output=True, text=True, check=True)
    return float(out.stdout) - started


def job_throughput(container: Container, count: int) -> float:
    started = time.monotonic()
    ids = [
        container.jobs.submit(
            principal=USER, project="bench", kind="script",
            parameters={"package": "pkg", "version": "1.0", "command": ["python", "noop.py"]},
        ).id
        for _ in range(count)
    ]
    for job_id in ids:
        if wait_ended(container, job_id) is not JobStatus.COMPLETED:
            raise SystemExit(f"job {job_id} did not complete")
    return count / (time.monotonic() - started)


def baseline_throughput(count: int, slots: int) -> float:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=slots) as pool:
        list(pool.map(lambda _: subprocess.run([sys.executable, "-c", "pass"], check=True), range(count)))
    return count / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40, help="latency samples of each kind")
    parser.add_argument("--jobs", type=int, default=60, help="no-op jobs for the throughput part")
    parser.add_argument("--slots", type=int, default=os.cpu_count() or 2, help="concurrent jobs")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp folder")
    args = parser.parse_args()

    modes = {"standby (default)": True, "fresh process": False}
    with tempfile.TemporaryDirectory(prefix="modelops-bench-") as scratch:
        folder = Path(scratch)
        containers: dict[str, Container] = {}
        try:
            for mode, standby in modes.items():
                # Separate metadata, so neither engine claims the other's jobs: a SQLite file in
                # each home, or a schema of its own on the PostgreSQL database.
                home = folder / ("warm" if standby else "cold")
                url = args.database_url and (args.database_url if standby else own_schema(args.database_url))
                container = containers[mode] = build_container(Settings(
                    home=home, database_url=url, max_concurrent_jobs=args.slots, job_standby=standby,
                ))
                container.start_background()
                container.projects.create(principal=USER, name="bench")
                container.packages.upload(principal=USER, project="bench", name="pkg",
                                          archive=make_package(folder / home.name))
            first = next(iter(containers.values()))
            with first.engine.begin() as conn:
                conn.execute(text("DROP TABLE IF EXISTS bench_insert"))
                key = "SERIAL" if conn.dialect.name == "postgresql" else "INTEGER"
                conn.execute(text(f"CREATE TABLE bench_insert (id {key} PRIMARY KEY, note TEXT)"))
            for container in containers.values():
                job_latency(container)  # warm-up: imports, first connections, page cache
            baseline_latency(first)
            jobs: dict[str, list[float]] = {mode: [] for mode in modes}
            bare: list[float] = []
            for _ in range(args.runs):  # interleaved, so drift in machine load hits all alike
                for mode, container in containers.items():
                    jobs[mode].append(job_latency(container))
                bare.append(baseline_latency(first))
            rates = {mode: job_throughput(container, args.jobs) for mode, container in containers.items()}
            bare_rate = baseline_throughput(args.jobs, args.slots)
        finally:
            for container in containers.values():
                container.job_engine.stop(kill_running=True)
            if containers:
                with next(iter(containers.values())).engine.begin() as conn:
                    conn.execute(text("DROP TABLE IF EXISTS bench_insert"))
            for container in containers.values():
                container.close()
            if args.database_url:
                drop_schema(args.database_url)

    backend = "PostgreSQL" if args.database_url and args.database_url.startswith("postgres") else "SQLite"
    ms = 1000
    print(f"job engine overhead ({backend}, {os.cpu_count()} CPUs, {args.runs} runs, {args.slots} slots)")
    print("submit -> first line of user code; baseline: one insert + a bare python -c spawn")
    for name, q in (("p50", 0.5), ("p95", 0.95)):
        bare_q = percentile(bare, q)
        print(f"  {name}: baseline {bare_q * ms:6.1f} ms")
        for mode in modes:
            job_q = percentile(jobs[mode], q)
            print(f"       job, {mode:18s} {job_q * ms:6.1f} ms   ratio {job_q / bare_q:.2f}x")
    print(f"no-op jobs per second ({args.jobs} jobs, {args.slots} slots); bare spawn loop {bare_rate:.1f}/s")
    for mode in modes:
        print(f"  jobs, {mode:18s} {rates[mode]:6.1f}/s   ratio {rates[mode] / bare_rate:.2f}x")


BENCH_SCHEMA = "modelops_bench_fresh"


def own_schema(url: str) -> str:
    drop_schema(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {BENCH_SCHEMA}"))
    engine.dispose()
    return make_url(url).update_query_dict({"options": f"-csearch_path={BENCH_SCHEMA}"}).render_as_string(
        hide_password=False)


def drop_schema(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {BENCH_SCHEMA} CASCADE"))
    engine.dispose()


if __name__ == "__main__":
    main()
