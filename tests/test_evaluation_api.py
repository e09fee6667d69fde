"""Evaluating any model version on labelled data, through a real server: EVALUATION jobs in
their own processes, the report (metrics, PNG plots, champion comparison) over HTTP, the CLI,
and the lifecycle that follows (an evaluated imported model can be approved and deployed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest
from conftest import RunningServer
from sklearn import metrics as skm
from support import byom_models as bm
from support.lifecycle import IRIS_DATA
from support.servers import api, shared_server, unique

from modelops.client import ApiError, ModelOpsClient

REPO = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"
JOB_TIMEOUT = 180.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with shared_server(tmp_path_factory.mktemp("evaluation")) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[ModelOpsClient]:
    with server.client() as opened:
        yield opened


def labelled_frame() -> Any:
    """The shared test data with the binary label in ``target``, the default label column."""
    frame = bm.training_frame()
    return frame.rename(columns={"label": "target"})


def new_project(client: ModelOpsClient, tmp_path: Path) -> str:
    project = unique("eval")
    client.projects.create(project)
    client.datasets.upload_version(project, "labelled", bm.write_dataset(tmp_path / "csv", labelled_frame()))
    return project


def completed(client: ModelOpsClient, job: dict[str, Any]) -> dict[str, Any]:
    ended = client.jobs.wait(job["id"], timeout=JOB_TIMEOUT)
    assert ended["status"] == "completed", ended
    return ended


def import_classifier(client: ModelOpsClient, project: str, folder: Path, name: str = "clf") -> str:
    job = client.models.import_model(project, name, bm.joblib_classifier(folder))
    return str(completed(client, job)["result"]["version"])


def download_png(server: RunningServer, url: str) -> bytes:
    with api(server) as http:
        response = http.get(url.removeprefix("/api/v1"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return response.content


def test_an_imported_classifier_is_evaluated_with_plots_and_can_then_be_approved(
    server: RunningServer, client: ModelOpsClient, tmp_path: Path
) -> None:
    project = new_project(client, tmp_path)
    version = import_classifier(client, project, tmp_path / "model")
    assert version == "1.0"
    job = completed(client, client.models.evaluate(project, "clf", version, dataset="labelled"))
    assert job["kind"] == "evaluation" and job["result"]["status"] == "evaluated"

    # The numbers are those of the same model scored here, independently of the platform.
    frame = labelled_frame()
    model = joblib.load(tmp_path / "model" / "model.joblib")
    predicted, proba = model.predict(frame[bm.FEATURES]), model.predict_proba(frame[bm.FEATURES])[:, 1]
    report = client.models.evaluation(project, "clf", version)
    found = report["metrics"]
    assert found["accuracy"] == pytest.approx(skm.accuracy_score(frame.target, predicted))
    assert found["precision"] == pytest.approx(skm.precision_score(frame.target, predicted))
    assert found["recall"] == pytest.approx(skm.recall_score(frame.target, predicted))
    assert found["f1"] == pytest.approx(skm.f1_score(frame.target, predicted))
    assert found["roc_auc"] == pytest.approx(skm.roc_auc_score(frame.target, proba))
    assert found["confusion_matrix"] == {
        "labels": [0, 1], "matrix": skm.confusion_matrix(frame.target, predicted).tolist()
    }
    assert found["roc_curve"]["fpr"][0] == 0.0 and found["roc_curve"]["tpr"][-1] == 1.0
    assert "score" not in found  # an imported model has no evaluate() of its own
    assert report["status"] == "evaluated" and report["champion"] is None
    assert report["evaluation"]["label"] == "target" and report["evaluation"]["task"] == "classification"
    assert report["evaluation"]["job_id"] == job["id"] and report["evaluation"]["dataset_version"] == 1
    assert [p["name"] for p in report["plots"]] == ["confusion_matrix.png", "roc_curve.png"]
    for plot in report["plots"]:
        body = download_png(server, plot["url"])
        assert body.startswith(PNG) and len(body) == plot["size"]
    # The version itself holds the report: its metrics are those of this evaluation.
    stored = client.packages.get_version(project, "clf", version)
    assert stored["status"] == "evaluated" and stored["metrics"]["evaluation"]["job_id"] == job["id"]

    # The change is audited with the job that made it, before and after.
    (event,) = client.audit.list(project, package="clf", actions=["evaluate"])
    assert (event["actor"], event["job_id"], event["target"]) == ("admin", job["id"], f"clf {version}")
    assert event["before"] == {"status": "imported"}
    assert event["after"]["status"] == "evaluated" and event["after"]["dataset"] == "labelled"

    approved = client.lifecycle.approve(project, "clf", version, reason="accuracy is fine")
    assert approved["version"]["status"] == "approved"


def test_a_regressor_gets_mae_rmse_r2_and_a_residuals_plot_from_parquet(
    server: RunningServer, client: ModelOpsClient, tmp_path: Path
) -> None:
    project = unique("eval")
    client.projects.create(project)
    frame = bm.training_frame()
    client.datasets.upload_version(project, "measured", bm.write_dataset(tmp_path / "pq", frame, parquet=True))
    path = bm.pickle_regressor_unnamed(tmp_path / "model")
    job = client.models.import_model(project, "reg", path, features=bm.FEATURES, task="regression")
    completed(client, job)
    completed(client, client.models.evaluate(project, "reg", "1.0", dataset="measured", label="y"))

    model = joblib.load(path)
    predicted = model.predict(frame[bm.FEATURES].to_numpy())
    report = client.models.evaluation(project, "reg", "1.0")
    found = report["metrics"]
    assert found["mae"] == pytest.approx(skm.mean_absolute_error(frame.y, predicted))
    assert found["rmse"] == pytest.approx(skm.mean_squared_error(frame.y, predicted) ** 0.5)
    assert found["r2"] == pytest.approx(skm.r2_score(frame.y, predicted))
    assert found["n_samples"] == len(frame) and "accuracy" not in found
    assert report["evaluation"]["task"] == "regression"
    (plot,) = report["plots"]
    assert plot["name"] == "residuals.png" and download_png(server, plot["url"]).startswith(PNG)


def test_the_iris_package_gets_metrics_and_its_own_evaluate_score_through_the_cli(
    server: RunningServer, client: ModelOpsClient, tmp_path: Path
) -> None:
    project = unique("iris")
    client.projects.create(project)
    client.datasets.upload_version(project, "iris", IRIS_DATA)
    client.packages.upload(project, "iris", REPO / "examples" / "iris_package")
    created = client.pipelines.create(project, "train", type="training", package="iris", version="1.0",
                                      dataset="iris", folder="train")
    completed(client, {"id": created["run"]["job_id"]})
    trained = client.pipelines.get_run(project, created["run"]["job_id"])["new_version"]

    done = server.cli("models", "evaluate", project, "iris", trained, "--dataset", "iris",
                      "--folder", "test", "--label", "species", timeout=JOB_TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert "accuracy" in done.stdout and "Confusion matrix" in done.stdout and "score" in done.stdout
    report = client.models.evaluation(project, "iris", trained)
    found = report["metrics"]
    # Its train.py evaluate() returns the accuracy on the same rows: the two must agree.
    assert found["score"] == pytest.approx(found["accuracy"]) and 0.8 <= found["accuracy"] <= 1.0
    assert found["average"] == "macro" and found["roc_auc"] is None  # labels only, no probabilities
    assert found["confusion_matrix"]["labels"] == ["setosa", "versicolor", "virginica"]
    assert sum(map(sum, found["confusion_matrix"]["matrix"])) == found["n_samples"] == 30
    assert [p["name"] for p in report["plots"]] == ["confusion_matrix.png"]

    shown = server.cli("models", "evaluation", project, "iris", trained, "--download", str(tmp_path / "plots"))
    assert shown.returncode == 0, shown.stderr
    assert (tmp_path / "plots" / "confusion_matrix.png").read_bytes().startswith(PNG)
    as_json = server.cli("models", "evaluation", project, "iris", trained, "--json")
    assert json.loads(as_json.stdout)["metrics"]["score"] == found["score"]


def test_a_challenger_is_compared_with_the_deployed_champion_metric_by_metric(
    client: ModelOpsClient, tmp_path: Path
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    project = new_project(client, tmp_path)
    frame = labelled_frame()
    stump = DecisionTreeClassifier(max_depth=1, random_state=0).fit(frame[bm.FEATURES], frame.target)
    (tmp_path / "b").mkdir()
    joblib.dump(stump, tmp_path / "b" / "model.joblib")
    imports = [client.models.import_model(project, "clf", path)
               for path in (bm.joblib_classifier(tmp_path / "a"), tmp_path / "b" / "model.joblib")]
    champion, challenger = (completed(client, job)["result"]["version"] for job in imports)
    completed(client, client.models.evaluate(project, "clf", champion, dataset="labelled"))
    client.lifecycle.approve(project, "clf", champion, reason="first model")
    client.deployments.create(project, "clf", champion, name="clf-prod", reason="go live")

    evaluated = completed(client, client.models.evaluate(project, "clf", challenger, dataset="labelled"))

    ours = client.models.evaluation(project, "clf", challenger)
    theirs = client.models.evaluation(project, "clf", champion)["metrics"]
    comparison = ours["champion"]
    assert evaluated["result"]["champion"] == comparison
    assert comparison["version"] == champion and comparison["deployment"] == "clf-prod"
    assert comparison["same_data"] is True and comparison["evaluated_on"]["dataset"] == "labelled"
    rows = {row["metric"]: row for row in comparison["metrics"]}
    assert set(rows) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    for metric, row in rows.items():
        assert row["challenger"] == pytest.approx(ours["metrics"][metric])
        assert row["champion"] == pytest.approx(theirs[metric])
        assert row["delta"] == pytest.approx(ours["metrics"][metric] - theirs[metric])
    # A one-split stump on a diagonal boundary is the weaker model.
    assert rows["accuracy"]["delta"] < 0 and rows["accuracy"]["better"] == "champion"
    assert comparison["primary"] == "f1" and comparison["winner"] == "champion"


def test_bad_evaluations_fail_clearly_and_register_nothing(
    server: RunningServer, client: ModelOpsClient, tmp_path: Path
) -> None:
    project = new_project(client, tmp_path)
    version = import_classifier(client, project, tmp_path / "model")
    job = client.models.evaluate(project, "clf", version, dataset="labelled", label="outcome")
    ended = client.jobs.wait(job["id"], timeout=JOB_TIMEOUT)
    assert ended["status"] == "failed"
    assert "no label column 'outcome'" in ended["error"] and "target" in ended["error"]
    stored = client.packages.get_version(project, "clf", version)
    assert stored["status"] == "imported" and stored["metrics"] == {}
    assert client.audit.list(project, actions=["evaluate"]) == []
    with pytest.raises(ApiError) as missing:
        client.models.evaluation(project, "clf", version)
    assert missing.value.status == 404 and "not been evaluated" in str(missing.value)

    # Refused before any job exists: 4xx with the reason.
    before = len(client.jobs.list(project))
    refusals = [
        (lambda: client.models.evaluate(project, "clf", "9.0", dataset="labelled"), 404, "9.0"),
        (lambda: client.models.evaluate(project, "clf", version, dataset="nope"), 404, "nope"),
        (lambda: client.models.evaluate(project, "clf", version, dataset="labelled", task="ranking"),
         400, "unknown task"),
        (lambda: client.models.evaluate(project, "clf", version, dataset="labelled", task="regression"),
         400, "classification model"),
        (lambda: client.models.evaluate(project, "clf", version, dataset="labelled", features=["a"]),
         400, "leave features out"),
        (lambda: client.models.evaluate(project, "clf", version, dataset="labelled", label="a"),
         400, "one of the model's features"),
    ]
    for call, status, words in refusals:
        with pytest.raises(ApiError) as refused:
            call()
        assert refused.value.status == status and words in str(refused.value), (words, refused.value)
    assert len(client.jobs.list(project)) == before
    with api(server) as http:
        bare = http.post(f"/projects/{project}/jobs", json={"kind": "evaluation", "parameters": {"pipeline_id": 1}})
        assert bare.status_code == 400 and "unknown parameter" in bare.json()["detail"]
        plot = http.get(f"/projects/{project}/packages/clf/versions/{version}/evaluation/plots/x.png")
        assert plot.status_code == 404
