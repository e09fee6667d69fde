"""Pipelines end to end through the REST API: a real server, real job processes, the real
example scikit-learn package and dataset."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import RunningServer
from pipeline_helpers import IRIS_DATA, log_text, seed, tiny_package
from support.servers import api, blob_names, make_token, shared_server, unique

from modelops.archives import pack_zip
from modelops.client import ApiError, ModelOpsClient


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with shared_server(tmp_path_factory.mktemp("pipelines")) as running:
        yield running


@pytest.fixture(scope="module")
def client(srv: RunningServer) -> Iterator[ModelOpsClient]:
    with srv.client() as opened:
        yield opened


@pytest.fixture(scope="module")
def trained(client: ModelOpsClient) -> dict[str, Any]:
    """One training run of the example package on the dataset's train folder (1.0 → 1.1)."""
    project = unique("iris")
    seed(client, project)
    created = client.pipelines.create(
        project, "train-iris", type="training", package="iris", version="1.0", dataset="iris",
        folder="train", parameters={"C": 0.5, "save_training_data": True},
    )
    run = client.pipelines.wait_run(project, created["run"]["job_id"], timeout=300)
    assert run["status"] == "Successful", log_text(client, run["job_id"])
    return {"project": project, "run": run}


def test_training_run_makes_the_next_minor_version_with_lineage(
    client: ModelOpsClient, trained: dict[str, Any]
) -> None:
    project, run = trained["project"], trained["run"]
    assert run["new_version"] == "1.1" and run["type"] == "training" and run["score"] is None
    version = client.packages.get_version(project, "iris", "1.1")
    dataset_version = client.datasets.get_version(project, "iris", 1)
    assert version["status"] == "trained"
    lineage = version["lineage"]
    assert lineage["source_version"] == "1.0" and lineage["job_id"] == run["job_id"]
    assert lineage["dataset"] == "iris" and lineage["dataset_version"] == 1
    assert lineage["dataset_folder"] == "train"
    assert lineage["dataset_hash"] == dataset_version["content_hash"]
    assert len(lineage["code_hash"]) == 64 and len(lineage["data_hash"]) == 64
    assert lineage["parameters"]["C"] == "0.5"
    # The new version is the package folder after the run: what save() wrote plus the code,
    # without the artifacts folder or byte-code caches.
    with api_client(client) as http:
        body = http.get(f"/projects/{project}/packages/iris/versions/1.1/download").content
    names = set(zipfile.ZipFile(io.BytesIO(body)).namelist())
    assert {"train.py", "main.py", "model.joblib"} <= names
    assert not [n for n in names if n.startswith("artifacts/") or "__pycache__" in n]
    # The source version is untouched.
    assert client.packages.get_version(project, "iris", "1.0")["status"] == "uploaded"
    # The registration is on the audit trail, with the run that made it.
    with api_client(client) as http:
        events = http.get(f"/projects/{project}/audit").json()["data"]
    (registered,) = [e for e in events if e["action"] == "version_registered" and e["target"] == "iris 1.1"]
    assert registered["job_id"] == run["job_id"] and registered["after"]["source"] == "training"


def api_client(client: ModelOpsClient) -> httpx.Client:
    return httpx.Client(base_url=client.url + "/api/v1",
                        headers={"Authorization": f"Bearer {client.token}"}, timeout=60)


def test_artifacts_are_listed_with_sub_folders_and_downloadable(
    client: ModelOpsClient, trained: dict[str, Any]
) -> None:
    project, job_id = trained["project"], trained["run"]["job_id"]
    files = {f["path"]: f for f in client.pipelines.artifacts(project, job_id)}
    assert set(files) == {"training-summary.txt", "plots/class_counts.png"}
    assert [f["path"] for f in client.pipelines.artifacts(project, job_id, folder="plots")] == [
        "plots/class_counts.png"]
    detail = client.pipelines.get_run(project, job_id)
    assert {f["path"] for f in detail["artifacts"]} == set(files)
    with api_client(client) as http:
        image = http.get(files["plots/class_counts.png"]["url"].removeprefix("/api/v1"))
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert image.content.startswith(b"\x89PNG") and len(image.content) == files["plots/class_counts.png"]["size"]
        text = http.get(f"/projects/{project}/pipeline-runs/{job_id}/artifacts/training-summary.txt")
        assert "C: 0.5" in text.text
        missing = http.get(f"/projects/{project}/pipeline-runs/{job_id}/artifacts/nope.txt")
        assert missing.status_code == 404 and "no file 'nope.txt'" in missing.json()["detail"]
        folder = http.get(f"/projects/{project}/pipeline-runs/{job_id}/artifacts", params={"folder": "x"})
        assert folder.status_code == 404


def test_results_json_has_the_documented_structure(client: ModelOpsClient, trained: dict[str, Any]) -> None:
    project, run = trained["project"], trained["run"]
    results = client.pipelines.results(project, run["job_id"])
    assert set(results) == {"parameters", "run_summary"}
    assert set(results["parameters"]) == {"pipeline", "inputs", "env"}
    assert results["parameters"]["pipeline"] == "train-iris"
    assert results["parameters"]["inputs"] == {
        "package": "iris", "version": "1.0", "train_data": "datasets/iris/versions/1/train",
        "gpu": "False"}
    assert results["parameters"]["env"] == {
        "artifacts_directory": "artifacts", "save_training_data": "true", "C": "0.5"}
    summary = results["run_summary"]
    assert set(summary) == {"execution_time", "start_at", "end_at", "outputs"}
    assert summary["outputs"] == {
        "train_data": f"runs/{run['job_id']}/train_data",
        "artifacts_data": f"runs/{run['job_id']}/artifacts", "package": "iris", "version": "1.1"}
    assert 0 < summary["execution_time"] == pytest.approx(summary["end_at"] - summary["start_at"], abs=0.01)
    started = datetime.fromisoformat(run["started_at"]).timestamp()
    assert summary["start_at"] == pytest.approx(started, abs=1)
    with api_client(client) as http:
        response = http.get(f"/projects/{project}/pipeline-runs/{run['job_id']}/results")
    assert 'filename="_results.json"' in response.headers["content-disposition"]
    assert response.json() == results == client.pipelines.get_run(project, run["job_id"])["results"]


def test_training_data_snapshot_reuses_the_datasets_stored_files(
    client: ModelOpsClient, trained: dict[str, Any], tmp_path: Path
) -> None:
    project, job_id = trained["project"], trained["run"]["job_id"]
    snapshot = client.pipelines.train_data(project, job_id)
    manifest = {f["path"]: f["sha256"] for f in client.datasets.get_version(project, "iris", 1)["files"]}
    # The snapshot is the chosen folder as train() saw it, file for file, by content hash.
    assert {f["path"]: f["sha256"] for f in snapshot} == {"iris.csv": manifest["train/iris.csv"]}
    assert client.pipelines.get_run(project, job_id)["train_data_files"] == 1
    saved = client.pipelines.download_artifact(project, job_id, "iris.csv", tmp_path, train_data=True)
    assert saved.read_bytes() == (IRIS_DATA / "train" / "iris.csv").read_bytes()


def test_a_repeated_snapshot_stores_no_new_data(
    srv: RunningServer, client: ModelOpsClient, tmp_path: Path
) -> None:
    project = unique("again")
    client.projects.create(project)
    client.datasets.upload_version(project, "data", IRIS_DATA)
    client.packages.upload(project, "tiny", tiny_package(tmp_path))
    client.pipelines.create(project, "t", type="training", package="tiny", version="1.0",
                            dataset="data", parameters={"save_training_data": "true"},
                            schedule="once", run_at=datetime.now(UTC) + timedelta(days=1))
    versions = []
    for _ in range(2):
        before = blob_names(srv.home)
        run = client.pipelines.wait_run(project, client.pipelines.run(project, "t")["job_id"], timeout=120)
        assert run["status"] == "Successful", log_text(client, run["job_id"])
        versions.append(run["new_version"])
        new_blobs = blob_names(srv.home) - before
        snapshot = client.pipelines.train_data(project, run["job_id"])
        assert {f["path"] for f in snapshot} == {"train/iris.csv", "test/iris.csv"}
        # What a run stores: the new version's zip, its artifacts and _results.json; the
        # snapshot adds nothing, its files are the dataset's own.
        with api_client(client) as http:
            results = http.get(f"/projects/{project}/pipeline-runs/{run['job_id']}/results").content
        expected = {
            client.packages.get_version(project, "tiny", run["new_version"])["zip_sha256"],
            hashlib.sha256(results).hexdigest(),
            *(f["sha256"] for f in client.pipelines.artifacts(project, run["job_id"])),
        }
        assert new_blobs <= expected and not new_blobs & {f["sha256"] for f in snapshot}
    # Training twice from 1.0 makes 1.1, then 1.2.
    assert versions == ["1.1", "1.2"]
    assert [v["version"] for v in client.packages.list_versions(project, "tiny")] == ["1.0", "1.1", "1.2"]


def test_parameters_reach_the_code_and_a_custom_artifacts_folder_is_kept_apart(
    client: ModelOpsClient, tmp_path: Path
) -> None:
    project = unique("params")
    client.projects.create(project)
    client.datasets.upload_version(project, "data", IRIS_DATA)
    client.packages.upload(project, "tiny", tiny_package(tmp_path))
    for gpu, seen in ((False, "hello world|"), (True, "hello world|unset")):
        created = client.pipelines.create(
            project, f"p-{gpu}", type="training", package="tiny", version="1.0", dataset="data",
            folder="test", gpu=gpu,
            parameters={"greeting": "hello world", "artifacts_directory": "reports/run"},
        )
        run = client.pipelines.wait_run(project, created["run"]["job_id"], timeout=120)
        assert run["status"] == "Successful" and run["gpu"] is gpu, log_text(client, run["job_id"])
        assert {f["path"] for f in client.pipelines.artifacts(project, run["job_id"])} == {
            "rows.txt", "env.txt"}
        with api_client(client) as http:
            base = f"/projects/{project}/pipeline-runs/{run['job_id']}/artifacts"
            assert http.get(f"{base}/env.txt").text == seen
            assert http.get(f"{base}/rows.txt").text == "31"  # only the test/ folder was given
            body = http.get(f"/projects/{project}/packages/tiny/versions/{run['new_version']}/download").content
        assert sorted(zipfile.ZipFile(io.BytesIO(body)).namelist()) == ["model.txt", "train.py"]
        gpu_flag = client.pipelines.results(project, run["job_id"])["parameters"]["inputs"]["gpu"]
        assert gpu_flag == ("True" if gpu else "False")


def test_a_package_zipped_inside_a_folder_keeps_its_layout(client: ModelOpsClient, tmp_path: Path) -> None:
    project = unique("layout")
    client.projects.create(project)
    client.datasets.upload_version(project, "data", IRIS_DATA)
    archive = tmp_path / "tiny.zip"
    pack_zip(tiny_package(tmp_path), archive, arc_prefix="tiny/")
    assert client.packages.upload(project, "tiny", archive)["code_root"] == "tiny"
    created = client.pipelines.create(project, "p", type="training", package="tiny", version="1.0",
                                      dataset="data")
    run = client.pipelines.wait_run(project, created["run"]["job_id"], timeout=120)
    assert run["status"] == "Successful", log_text(client, run["job_id"])
    version = client.packages.get_version(project, "tiny", "1.1")
    assert version["code_root"] == "tiny"
    with api_client(client) as http:
        body = http.get(f"/projects/{project}/packages/tiny/versions/1.1/download").content
    assert sorted(zipfile.ZipFile(io.BytesIO(body)).namelist()) == ["tiny/model.txt", "tiny/train.py"]
    assert client.pipelines.get_run(project, run["job_id"])["inputs"]["data_files"] == 2


def test_evaluation_records_the_score_on_the_version(client: ModelOpsClient, trained: dict[str, Any]) -> None:
    project = trained["project"]
    created = client.pipelines.create(project, "eval-iris", type="evaluation", package="iris",
                                      version="1.1", dataset="iris", folder="test")
    run = client.pipelines.wait_run(project, created["run"]["job_id"], timeout=300)
    assert run["status"] == "Successful", log_text(client, run["job_id"])
    assert 0.8 <= run["score"] <= 1.0 and run["new_version"] is None
    version = client.packages.get_version(project, "iris", "1.1")
    assert version["status"] == "evaluated"
    assert version["metrics"]["score"] == run["score"]
    assert version["metrics"]["evaluation"]["job_id"] == run["job_id"]
    assert client.pipelines.results(project, run["job_id"])["run_summary"]["outputs"]["version"] == "1.1"
    assert {f["path"] for f in client.pipelines.artifacts(project, run["job_id"])} == {
        "evaluation.txt", "plots/per_class_recall.png"}
    assert "1.2" not in [v["version"] for v in client.packages.list_versions(project, "iris")]


def test_full_pipeline_processes_trains_evaluates_and_saves(
    client: ModelOpsClient, trained: dict[str, Any]
) -> None:
    project = trained["project"]
    created = client.pipelines.create(project, "full-iris", type="full", package="iris",
                                      version="1.0", dataset="iris", parameters={"test_fraction": "0.25"})
    job_id = created["run"]["job_id"]
    run = client.pipelines.wait_run(project, job_id, timeout=300)
    assert run["status"] == "Successful", log_text(client, job_id)
    logs = log_text(client, job_id)
    assert "process_data: 113 training rows, 37 test rows" in logs
    order = [logs.index(f"Main.{m}(") for m in ("process_data", "train", "evaluate", "save")]
    assert order == sorted(order)
    version = client.packages.get_version(project, "iris", run["new_version"])
    assert version["minor"] >= 2 and version["status"] == "evaluated"
    assert version["metrics"]["score"] == run["score"] and 0.8 <= run["score"] <= 1.0
    assert version["lineage"]["source"] == "full_pipeline"


@pytest.mark.parametrize("variant, expected_log", [
    ("raises", "raise ValueError('bad rows in the training data')"),
    ("saves_nothing", "Main.save() wrote nothing to the working directory"),
    ("no_save", "class Main has no save()"),
    ("exits", None),
])
def test_a_failing_run_is_failed_with_its_reason_and_makes_no_version(
    client: ModelOpsClient, tmp_path: Path, variant: str, expected_log: str | None
) -> None:
    project = unique(variant.replace("_", "-"))
    client.projects.create(project)
    client.datasets.upload_version(project, "data", IRIS_DATA)
    client.packages.upload(project, "tiny", tiny_package(tmp_path, variant))
    created = client.pipelines.create(project, "p", type="training", package="tiny", version="1.0",
                                      dataset="data")
    run = client.pipelines.wait_run(project, created["run"]["job_id"], timeout=120)
    assert run["status"] == "Failed" and run["job_status"] == "failed"
    logs = log_text(client, run["job_id"])
    if expected_log:
        assert expected_log in logs
    if variant == "raises":
        assert "Traceback (most recent call last)" in logs
        assert "ValueError: bad rows in the training data" in run["error"]
    if variant == "exits":
        assert run["exit_code"] == 4 and "4" in run["error"]
    assert [v["version"] for v in client.packages.list_versions(project, "tiny")] == ["1.0"]
    assert client.pipelines.artifacts(project, run["job_id"]) == []
    with pytest.raises(ApiError) as missing:
        client.pipelines.results(project, run["job_id"])
    assert missing.value.status == 404


def test_a_stopped_run_is_killed_and_makes_no_version(client: ModelOpsClient, tmp_path: Path) -> None:
    project = unique("stop")
    client.projects.create(project)
    client.datasets.upload_version(project, "data", IRIS_DATA)
    client.packages.upload(project, "tiny", tiny_package(tmp_path, "slow"))
    job_id = client.pipelines.create(project, "p", type="training", package="tiny", version="1.0",
                                     dataset="data")["run"]["job_id"]
    deadline = time.monotonic() + 60
    while "training started" not in log_text(client, job_id):
        assert time.monotonic() < deadline, log_text(client, job_id)
        time.sleep(0.2)
    assert client.pipelines.get_run(project, job_id)["status"] == "Running"
    client.jobs.stop(job_id)
    run = client.pipelines.wait_run(project, job_id, timeout=60)
    assert run["status"] == "Killed" and run["job_status"] == "cancelled"
    assert [v["version"] for v in client.packages.list_versions(project, "tiny")] == ["1.0"]


def test_a_once_schedule_fires_exactly_once_at_its_time(client: ModelOpsClient, tmp_path: Path) -> None:
    project = unique("once")
    client.projects.create(project)
    client.datasets.upload_version(project, "data", IRIS_DATA)
    client.packages.upload(project, "tiny", tiny_package(tmp_path))
    at = datetime.now(UTC) + timedelta(seconds=2)
    created = client.pipelines.create(project, "later", type="training", package="tiny",
                                      version="1.0", dataset="data", schedule="once", run_at=at)
    assert created["run"] is None
    assert datetime.fromisoformat(created["next_run_at"]) == at.replace(microsecond=at.microsecond)
    deadline = time.monotonic() + 30
    while not client.pipelines.runs(project):
        assert time.monotonic() < deadline, "the scheduled run never fired"
        time.sleep(0.2)
    (run,) = client.pipelines.runs(project)
    assert run["trigger"] == "schedule" and datetime.fromisoformat(run["scheduled_at"]) == at
    assert datetime.now(UTC) >= at
    assert client.pipelines.wait_run(project, run["job_id"], timeout=120)["status"] == "Successful"
    assert client.pipelines.get(project, "later")["next_run_at"] is None
    time.sleep(1.5)
    assert len(client.pipelines.runs(project, "later")) == 1


def test_bad_requests_are_refused_with_clear_4xx(srv: RunningServer, client: ModelOpsClient, tmp_path: Path) -> None:
    project = unique("bad")
    client.projects.create(project)
    client.datasets.upload_version(project, "data", IRIS_DATA)
    client.packages.upload(project, "tiny", tiny_package(tmp_path))
    serve_only = tmp_path / "serve-only"
    serve_only.mkdir()
    (serve_only / "main.py").write_text("class Main:\n    def __init__(self): pass\n    def predict(self, input): return input\n")
    client.packages.upload(project, "serve", serve_only)
    good = {"name": "p", "type": "training", "package": "tiny", "version": "1.0", "dataset": "data"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"type": "weekly"}, 400, "invalid pipeline type"),
        ({"package": "nope"}, 404, "ML package 'nope' not found"),
        ({"version": "9.0"}, 404, "version 9.0 not found"),
        ({"version": "one"}, 400, "invalid version"),
        ({"package": "serve"}, 400, "cannot run pipelines"),
        ({"dataset": "nope"}, 404, "dataset 'nope' not found"),
        ({"dataset_version": 7}, 404, "dataset version 7 not found"),
        ({"folder": "../etc"}, 400, "'..' is not allowed"),
        ({"folder": "missing"}, 400, "does not exist"),
        ({"parameters": {"PATH": "/tmp"}}, 400, "reserved"),
        ({"parameters": {"artifacts_directory": "/tmp"}}, 400, "working directory"),
        ({"schedule": "cron", "cron": "* * *"}, 400, "five fields"),
        ({"schedule": "cron", "cron": "99 * * * *"}, 400, "invalid cron expression"),
        ({"schedule": "once", "run_at": "2001-01-01T00:00:00Z"}, 400, "in the past"),
        ({"evaluation_dataset": "data"}, 400, "only a full pipeline"),
        ({"timeout_seconds": -1}, 400, "timeout_seconds"),
        ({"paramters": {}}, 422, "paramters"),
        ({"name": "no spaces"}, 400, "invalid pipeline name"),
    ]
    with api(srv) as http:
        for change, status, message in cases:
            response = http.post(f"/projects/{project}/pipelines", json={**good, **change})
            assert response.status_code == status, (change, response.text)
            assert message in response.json()["detail"], (change, response.text)
        assert http.get(f"/projects/{project}/pipelines").json()["count"] == 0
        # A pipeline run is never submitted as a bare job.
        bare = http.post(f"/projects/{project}/jobs", json={"kind": "training", "parameters": {}})
        assert bare.status_code == 400 and "runs of a pipeline" in bare.json()["detail"]
        assert http.get(f"/projects/{project}/pipeline-runs/999999").status_code == 404
    viewer = make_token(srv, "viewer")
    with api(srv, viewer) as http:
        denied = http.post(f"/projects/{project}/pipelines", json=good)
        assert denied.status_code == 403
        assert http.get(f"/projects/{project}/pipelines").status_code == 200
