"""Bring your own model through a real server process: HTTP, the client, the CLI, and the proof
that a malicious pickle runs only in its job's process, never in the server."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RunningServer
from support import byom_models as bm
from support.servers import api, blob_names, leftovers, make_token, row_count, shared_server, unique

from modelops.client import ApiError, ModelOpsClient

SRC = Path(__file__).resolve().parent.parent / "src" / "modelops"
JOB_TIMEOUT = 180.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with shared_server(tmp_path_factory.mktemp("byom-api")) as running:
        yield running


@pytest.fixture
def project(server: RunningServer, tmp_path: Path) -> str:
    name = unique("byom")
    with server.client() as client:
        client.projects.create(name)
        folder = bm.write_dataset(tmp_path / "train")
        client.datasets.upload_version(name, "train", folder)
    return name


def test_a_malicious_pickle_runs_only_in_its_job_process(
    server: RunningServer, project: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker.txt"
    path = bm.malicious_pickle(tmp_path / "evil", marker)
    with server.client() as client:
        job = client.models.import_model(project, "evil", path, features=["a"], task="regression")
        ended = client.jobs.wait(job["id"], timeout=JOB_TIMEOUT)
        assert ended["status"] == "failed"
        assert "not a model" in ended["error"] and "has no predict method" in ended["error"]
        with pytest.raises(ApiError) as missing:
            client.packages.list_versions(project, "evil")
        assert missing.value.status == 404
    # The payload ran exactly once: in the job's process, inside that job's working folder.
    (line,) = marker.read_text().splitlines()
    pid, cwd = line.split(" ", 1)
    assert int(pid) != server.process.pid
    job_folder = server.home / "work" / "jobs" / str(job["id"])
    assert Path(cwd).is_relative_to(job_folder)


def _loads_models(tree: ast.AST) -> list[str]:
    """Imports of model-loading libraries and calls of *.load / *.loads on pickle-like modules."""
    found = []
    risky = {"pickle", "cPickle", "joblib", "cloudpickle", "dill", "onnxruntime", "sklearn_pmml_model",
             "mlflow", "torch", "skops"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in risky]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in risky:
            found.append(node.module)
        elif (
            isinstance(node, ast.Attribute) and node.attr in ("load", "loads", "Unpickler")
            and isinstance(node.value, ast.Name) and node.value.id in risky
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_server_side_module_can_unpickle_or_open_a_model() -> None:
    """Everything outside modelops/runtime runs in the server (or the CLI): none of it imports
    pickle, joblib, onnxruntime, sklearn-pmml-model or calls their loaders."""
    offenders = {}
    for path in sorted(SRC.rglob("*.py")):
        if "runtime" in path.relative_to(SRC).parts:
            continue
        found = _loads_models(ast.parse(path.read_text(), filename=str(path)))
        if found:
            offenders[str(path.relative_to(SRC))] = found
    assert offenders == {}
    # The check itself bites: the runtime does load models.
    assert _loads_models(ast.parse((SRC / "runtime" / "model_loaders.py").read_text()))


def test_import_by_http_client_and_cli_then_statistics(server: RunningServer, project: str, tmp_path: Path) -> None:
    blobs_before = blob_names(server.home)
    with server.client() as client:
        job = client.models.import_model(project, "flow", bm.mlflow_sklearn(tmp_path / "flow"),
                                         dataset="train", target="label", description="from MLflow")
        assert job["kind"] == "import" and job["status"] in ("queued", "running")
        ended = client.jobs.wait(job["id"], timeout=JOB_TIMEOUT)
        assert ended["status"] == "completed", ended["error"]
        version = client.packages.get_version(project, "flow", ended["result"]["version"])
        assert version["status"] == "imported"
        assert version["lineage"]["byom"]["features"] == bm.FEATURES
        assert version["lineage"]["description"] == "from MLflow"
        stats_job = client.jobs.wait(ended["result"]["statistics_job_id"], timeout=JOB_TIMEOUT)
        assert stats_job["status"] == "completed", stats_job["error"]
        found = client.models.statistics(project, "flow", "1.0", dataset="train")
        assert found["job_id"] == stats_job["id"]
        assert found["statistics"]["features"]["a"]["histogram"]["counts"]
    # The upload is stored once, as the zip the version points at; scratch space is clean.
    assert version["zip_sha256"] in blob_names(server.home) - blobs_before
    assert leftovers(server.home) == []
    assert row_count(server.home, "model_statistics") >= 1

    onnx_file = bm.onnx_classifier(tmp_path / "onnx")
    done = server.cli("models", "import", project, "onnx-clf", str(onnx_file), "--features", "a,b,c")
    assert done.returncode == 0, done.stderr
    assert "Imported 'onnx-clf' version 1.0 (onnx, classification, 3 features)" in done.stdout
    done = server.cli("models", "statistics", project, "onnx-clf", "1.0", "--dataset", "train",
                      "--sample-rows", "100")
    assert done.returncode == 0, done.stderr
    assert "400 rows, 100 scored" in done.stdout
    done = server.cli("models", "show-statistics", project, "onnx-clf", "1.0")
    assert done.returncode == 0, done.stderr
    for text in ("train v1", "onnx, classification", "(predictions)", "numeric", "categorical"):
        assert text in done.stdout
    done = server.cli("models", "show-statistics", project, "onnx-clf", "1.0", "--json")
    assert json.loads(done.stdout)["statistics"]["scored_rows"] == 100


def test_bad_requests_get_a_clear_4xx_and_leave_nothing(server: RunningServer, project: str, tmp_path: Path) -> None:
    model = bm.joblib_classifier(tmp_path / "m").read_bytes()
    base = f"/projects/{project}/models/clf/import"
    viewer = make_token(server, "viewer")
    cases = [
        (None, base, {"format": "tensorflow"}, model, 400, "unknown model format 'tensorflow'"),
        (None, base, {"task": "clustering"}, model, 400, "unknown task 'clustering'"),
        (None, base, {"features": "a,a"}, model, 400, "duplicate feature name(s): a"),
        (None, base, {}, b"just some text", 400, "cannot tell the format of the uploaded file"),
        (None, base, {"filename": "model.pkl", "dataset": "nope"}, model, 404, "dataset 'nope' not found"),
        (None, f"/projects/{unique('none')}/models/clf/import", {}, model, 404, "not found"),
        (None, f"/projects/{project}/models/bad%20name/import", {}, model, 400, "invalid ML package name"),
        (viewer, base, {"filename": "model.pkl"}, model, 403, "needs the 'member' role"),
        (None, base, {"filename": "model.zip"}, b"PK\x03\x04broken", 400, "not a zip or tar archive"),
        (None, f"/projects/{project}/packages/clf/versions/1.0/statistics", {"dataset": "train"}, b"",
         404, "ML package 'clf' not found"),
    ]
    blobs_before = blob_names(server.home)
    for token, path, params, body, status, message in cases:
        with api(server, token or "default") as client:
            response = client.post(path, params=params, content=body)
        assert response.status_code == status, (path, params, response.text)
        assert message in response.json()["detail"], (params, response.text)
    with api(server) as client:
        response = client.get(f"/projects/{project}/packages/clf/versions/1.0/statistics")
        assert response.status_code == 404
        jobs = client.get(f"/projects/{project}/jobs").json()
    assert jobs["count"] == 0
    assert blob_names(server.home) == blobs_before
    assert leftovers(server.home) == []


def test_the_client_refuses_a_missing_path_before_uploading(server: RunningServer, project: str, tmp_path: Path) -> None:
    with ModelOpsClient(server.url, server.token) as client, pytest.raises(FileNotFoundError):
        client.models.import_model(project, "clf", tmp_path / "missing.onnx")
