"""Batch prediction on a real Ray cluster: the chunks are scored as Ray tasks.

The same deployment runs the same dataset on the Ray executor (the session's Ray head, two
CPUs) and on the local executor; the predictions files must hold the same rows, in the same
order (every other chunk is slow to score, so the tasks finish out of order), and the drift
figures must agree (drift is measured by the job's driver either way). The Ray job's log says
how many chunks ran as tasks and in which worker processes, none of which is the driver. A
model that cannot be loaded fails the job with the loader's message, raised inside a task; a
package with requirements is scored by tasks running in its own environment. SQLite only:
the database side is the one of the local runs.
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from fixtures.jobs.support import (
    close_engine_container,
    engine_container,
    log_texts,
    make_wheel,
    wait_terminal,
)
from support.lifecycle import ADMIN, TRAIN_PY
from support.ray_cluster import RayHead, ray_head  # noqa: F401  (the session fixture)

from modelops.archives import pack_zip
from modelops.bootstrap import Container
from modelops.domain.jobs import Job, JobStatus
from modelops.domain.model_status import ModelStatus

CHUNK_ROWS = 200
CSV_ROWS, PARQUET_ROWS = 1000, 650  # 5 + 4 chunks (a file's last chunk may be short)
# Reference statistics that the data's small values drift from.
REFERENCE = {"features": {"sepal_length": {
    "kind": "numeric", "nulls": 0, "histogram": {"edges": [0.0, 5.0, 6.0, 10.0], "counts": [10, 30, 60]},
}}}
# Every other chunk is slow to score, so on two workers the chunks finish out of input order.
ORDERED_MAIN_PY = f'''
import time


class Main:
    def __init__(self):
        pass

    def predict(self, frame):
        if int(frame["id"].iloc[0]) // {CHUNK_ROWS} % 2 == 0:
            time.sleep(0.3)
        return ["big" if value > 5.8 else "small" for value in frame["sepal_length"]]
'''
BROKEN_MAIN_PY = '''
import os


class Main:
    def __init__(self):
        raise RuntimeError(f"no weights in this folder (pid {os.getpid()})")

    def predict(self, frame):
        return []
'''
ENV_MAIN_PY = '''
class Main:
    def __init__(self):
        import jobdep  # only in the package's own environment

        self.value = jobdep.VALUE

    def predict(self, frame):
        return [self.value] * len(frame)
'''
RAN = re.compile(r"ran (\d+) chunk\(s\) as Ray tasks on (\d+) node\(s\) in (\d+) worker process\(es\) "
                 r"\(pids ([\d, ]+); the driver is pid (\d+)\)")


def rows(start: int, count: int) -> pd.DataFrame:
    ids = np.arange(start, start + count)
    return pd.DataFrame({"id": ids, "sepal_length": 4.0 + (ids * 7 % 40) / 10.0, "kind": "iris"})


def deployed(container: Container, root: Path, *, main_py: str, reference: bool = True,
             requirements: str | None = None) -> str:
    """A project with a two-file dataset and an approved, deployed package; returns the
    deployment's name."""
    data = root / "data"
    (data / "more").mkdir(parents=True)
    rows(0, CSV_ROWS).to_csv(data / "a.csv", index=False)
    rows(CSV_ROWS, PARQUET_ROWS).to_parquet(data / "more" / "b.parquet")
    package = root / "package"
    package.mkdir()
    (package / "train.py").write_text(textwrap.dedent(TRAIN_PY))
    (package / "main.py").write_text(textwrap.dedent(main_py))
    if requirements is not None:
        (package / "requirements.txt").write_text(requirements)
    pack_zip(data, root / "data.zip")
    pack_zip(package, root / "package.zip")
    container.projects.create(principal=ADMIN, name="p")
    dataset = container.datasets.upload_version(principal=ADMIN, project="p", name="rows", archive=root / "data.zip")
    version = container.packages.upload(principal=ADMIN, project="p", name="model", archive=root / "package.zip")
    with container.uow() as uow:  # setup: the evaluation is not what is tested here
        uow.packages.transition_version(version.id, ModelStatus.EVALUATED)
    container.lifecycle.decisions.approve(principal=ADMIN, project="p", package="model", version="1.0",
                                          reason="fine")
    done = container.lifecycle.deployments.deploy(principal=ADMIN, project="p", package="model", version="1.0",
                                                  name="scoring", dataset="rows", chunk_rows=CHUNK_ROWS)
    if reference:
        with container.uow() as uow:
            uow.statistics.add(model_version_id=version.id, dataset_version_id=dataset.id, job_id=done.job.id,
                               folder="", stats=REFERENCE, actor="alice")
    return done.deployment.name


def run_now(container: Container, deployment: str) -> Job:
    return container.lifecycle.batch.run_now(principal=ADMIN, project="p", deployment=deployment).job


def predictions(container: Container, job: Job) -> pd.DataFrame:
    with container.uow() as uow:
        run = uow.deployments.get_run(job.id)
        version = uow.datasets.get_version_by_id(run.output_dataset_version_id)
    (entry,) = version.files
    with container.artifacts.open(entry.sha256) as blob:
        return pq.read_table(blob).to_pandas()


def drift_of(container: Container, job: Job) -> dict:  # type: ignore[type-arg]
    with container.uow() as uow:
        return uow.deployments.get_run(job.id).drift


@pytest.fixture
def on_ray(tmp_path: Path, ray_head: RayHead) -> Iterator[Container]:  # noqa: F811
    container = engine_container(tmp_path / "ray-home", f"sqlite:///{tmp_path / 'ray.db'}", executor="ray",
                                 ray_address=ray_head.address)
    try:
        yield container
    finally:
        close_engine_container(container)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Container]:
    container = engine_container(tmp_path / "local-home", f"sqlite:///{tmp_path / 'local.db'}")
    try:
        yield container
    finally:
        close_engine_container(container)


def test_chunks_scored_as_ray_tasks_match_the_local_run_row_for_row(
    tmp_path: Path, on_ray: Container, local: Container
) -> None:
    jobs = {}
    for label, container in (("ray", on_ray), ("local", local)):
        jobs[label] = run_now(container, deployed(container, tmp_path / label, main_py=ORDERED_MAIN_PY))
    ray_job = wait_terminal(on_ray, jobs["ray"].id, timeout=120)
    local_job = wait_terminal(local, jobs["local"].id, timeout=60)
    assert ray_job.status is JobStatus.COMPLETED, (ray_job.error, log_texts(on_ray, ray_job.id))
    assert local_job.status is JobStatus.COMPLETED, local_job.error

    on_cluster, here = predictions(on_ray, ray_job), predictions(local, local_job)
    assert on_cluster["id"].tolist() == list(range(CSV_ROWS + PARQUET_ROWS))  # every row once, in order
    expected = ["big" if value > 5.8 else "small" for value in on_cluster["sepal_length"]]
    assert on_cluster["prediction"].tolist() == expected
    assert set(on_cluster["job_id"]) == {ray_job.id}
    pd.testing.assert_frame_equal(on_cluster.drop(columns="job_id"), here.drop(columns="job_id"))
    assert drift_of(on_ray, ray_job) == drift_of(local, local_job)
    assert drift_of(on_ray, ray_job)["drifted_features"] == ["sepal_length"]

    logs = log_texts(on_ray, ray_job.id)
    assert any("as Ray tasks on the cluster at" in line for line in logs), logs
    (ran,) = [found for line in logs if (found := RAN.search(line))]
    chunks, nodes, processes = int(ran[1]), int(ran[2]), int(ran[3])
    pids, driver = {int(pid) for pid in ran[4].split(", ")}, int(ran[5])
    assert chunks == 9 and nodes == 1 and processes == len(pids) >= 1
    assert driver not in pids  # the model ran in Ray's worker processes, not in the job's own
    assert not any("as Ray tasks" in line for line in log_texts(local, local_job.id))


def test_a_model_that_cannot_load_in_the_task_fails_the_job_with_its_error(
    tmp_path: Path, on_ray: Container
) -> None:
    job = wait_terminal(on_ray, run_now(on_ray, deployed(on_ray, tmp_path, main_py=BROKEN_MAIN_PY,
                                                         reference=False)).id, timeout=120)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    found = re.fullmatch(r"ERROR: main\.py failed to load: RuntimeError: no weights in this folder \(pid (\d+)\)",
                         job.error)
    assert found, job.error
    started = next(line for line in log_texts(on_ray, job.id) if "as Ray tasks on the cluster at" in line)
    driver = int(started.rsplit(" ", 1)[1])
    assert int(found[1]) != driver  # raised while loading in a task, not by the driver


def test_the_tasks_of_a_package_with_requirements_run_in_its_environment(
    tmp_path: Path, on_ray: Container
) -> None:
    wheel = make_wheel(tmp_path / "wheels", value="from-the-package-env")
    name = deployed(on_ray, tmp_path / "env", main_py=ENV_MAIN_PY, reference=False,
                    requirements=f"jobdep @ {wheel.as_uri()}\n")
    job = wait_terminal(on_ray, run_now(on_ray, name).id, timeout=120)
    assert job.status is JobStatus.COMPLETED, (job.error, log_texts(on_ray, job.id))
    assert set(predictions(on_ray, job)["prediction"]) == {"from-the-package-env"}
    assert any(RAN.search(line) for line in log_texts(on_ray, job.id))


def test_batch_prediction_refuses_the_upload_mode_clearly(tmp_path: Path, ray_head: RayHead) -> None:  # noqa: F811
    container = engine_container(tmp_path / "home", f"sqlite:///{tmp_path / 'meta.db'}", executor="ray",
                                 ray_address=ray_head.address, ray_workdir_mode="upload", ray_python=sys.executable)
    try:
        name = deployed(container, tmp_path / "upload", main_py=ORDERED_MAIN_PY, reference=False)
        job = wait_terminal(container, run_now(container, name).id, timeout=120)
        assert job.status is JobStatus.FAILED
        assert job.error == ("ERROR: batch prediction on Ray needs the shared working-folder mode "
                             "(MODELOPS_RAY_WORKDIR_MODE=shared); in 'upload' mode its predictions would "
                             "stay on the Ray node")
    finally:
        close_engine_container(container)
