"""The dashboard's forms over real HTTP: a model imported through the import form, evaluated
through the evaluate form (its plots and champion table on the version page), the tokens page,
and bad form input answered with a clear 4xx page that leaves nothing half-made."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest
from conftest import RunningServer
from sklearn.metrics import roc_curve
from sklearn.tree import DecisionTreeClassifier
from support.browser import WebClient, signed_in
from support.byom_models import FEATURES, joblib_classifier, training_frame, write_dataset
from support.servers import api, shared_server, unique

from modelops.bootstrap import build_container
from modelops.client import ModelOpsClient
from modelops.domain.model_status import ModelStatus
from modelops.runtime.metrics import compute_metrics
from modelops.settings import Settings

UPLOAD_LIMIT = 200_000
TRAIN_PY = """
class Main:
    def __init__(self):
        pass

    def train(self, data_directory):
        pass

    def evaluate(self, data_directory):
        return 1.0

    def save(self):
        pass
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # A small upload limit, so the over-the-limit test needs no large file.
    with shared_server(tmp_path_factory.mktemp("web-forms"), MODELOPS_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT)) as running:
        yield running


def test_an_admin_makes_a_token_on_the_tokens_page_and_revoking_it_signs_its_user_out(
    srv: RunningServer,
) -> None:
    admin = signed_in(srv)
    admin.get("/ui/tokens")
    name = unique("ops")
    made = admin.post("/ui/tokens", {"name": name, "role": "member"})
    assert made.status_code == 201
    secret = re.search(r'<pre class="secret" id="new-secret">(mo_[^<]+)</pre>', made.text).group(1)
    assert secret not in admin.get("/ui/tokens").text  # shown once, on the creating response only
    member = signed_in(srv, secret)
    assert f">{name}<" in member.get("/ui/").text
    token_id = re.search(rf"<td>(\d+)</td><td>{name}</td>", admin.get("/ui/tokens").text).group(1)
    assert admin.post(f"/ui/tokens/{token_id}/revoke").status_code == 303
    assert member.get("/ui/").status_code == 303
    admin.close()
    member.close()


def test_a_model_is_imported_through_the_dashboards_form(srv: RunningServer, tmp_path: Path) -> None:
    model = joblib_classifier(tmp_path / "model")
    data = write_dataset(tmp_path / "data")
    client = signed_in(srv)
    project = unique("byom")
    assert client.post("/ui/projects", {"name": project}).status_code == 303
    with ModelOpsClient(srv.url, srv.token) as api_client:
        api_client.datasets.upload_version(project, "reference", data)
    client.get(f"/ui/projects/{project}/packages")
    response = client.http.post(
        f"/ui/projects/{project}/packages/import",
        data={"csrf_token": client.csrf, "name": "churn", "target": "label", "dataset": "reference"},
        files={"model": ("model.joblib", model.read_bytes(), "application/octet-stream")},
    )
    assert response.status_code == 303, response.text
    job_id = int(response.headers["location"].rsplit("/", 1)[1])
    with ModelOpsClient(srv.url, srv.token) as api_client:
        assert api_client.jobs.wait(job_id, timeout=180)["status"] == "completed"
        version = api_client.packages.get_version(project, "churn", "1.0")
    assert version["status"] == "imported"
    page = client.get(f"/ui/projects/{project}/packages/churn/versions/1.0").text
    assert "imported" in page and "format:</span> joblib" in page  # the recorded format, in the lineage
    job_page = client.get(f"/ui/projects/{project}/jobs/{job_id}").text
    assert "<dt>Engine</dt>" in job_page and str(srv.home.resolve()) in job_page  # which server ran it
    client.close()


def test_bad_form_input_is_a_clear_4xx_page(srv: RunningServer, tmp_path: Path) -> None:
    client = signed_in(srv)
    project = unique("forms")
    assert client.post("/ui/projects", {"name": project}).status_code == 303
    client.get(f"/ui/projects/{project}/datasets")
    no_file = client.http.post(f"/ui/projects/{project}/datasets/upload",
                               data={"csrf_token": client.csrf, "name": "d"}, files={"x": ("", b"")})
    assert no_file.status_code == 400 and "choose either an archive" in no_file.text
    not_zip = client.http.post(
        f"/ui/projects/{project}/packages/upload", data={"csrf_token": client.csrf, "name": "p"},
        files={"archive": ("p.zip", b"not a zip at all", "application/zip")},
    )
    assert not_zip.status_code == 400 and "zip" in not_zip.text
    pipeline = client.post(f"/ui/projects/{project}/pipelines", {
        "name": "p", "type": "training", "model": "p:1.0", "dataset": "d", "parameters": "no equals sign",
    })
    assert pipeline.status_code == 400 and "write name=value" in pipeline.text
    missing = client.get(f"/ui/projects/{project}/jobs/424242")
    assert missing.status_code == 404 and "job 424242 not found" in missing.text
    with api(srv) as admin:
        assert admin.get(f"/projects/{project}/packages").json()["count"] == 0  # nothing half-made
    client.close()


def test_the_version_page_draws_the_confusion_matrix_and_roc_curve_its_metrics_hold(
    srv: RunningServer, tmp_path: Path
) -> None:
    package = tmp_path / "clf"
    package.mkdir()
    (package / "train.py").write_text(TRAIN_PY)
    project = unique("plots")
    with ModelOpsClient(srv.url, srv.token) as client:
        client.projects.create(project)
        version_id = client.packages.upload(project, "clf", package)["id"]
    truth, scores = [0, 0, 1, 1, 1, 0], [0.1, 0.6, 0.8, 0.7, 0.3, 0.2]
    metrics = compute_metrics("classification", truth, [int(s > 0.5) for s in scores],
                              probabilities=[[1 - s, s] for s in scores], classes=[0, 1])
    fpr, tpr, _ = roc_curve(truth, scores)
    metrics["roc_curve"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    # What an evaluation records on the version, written the way the job kinds write it.
    container = build_container(Settings(home=srv.home), run_migrations=False)
    try:
        with container.uow() as uow:
            uow.packages.transition_version(version_id, ModelStatus.EVALUATED, fields={"metrics": metrics})
    finally:
        container.close()
    client = signed_in(srv)
    page = client.get(f"/ui/projects/{project}/packages/clf/versions/1.0").text
    plots = page[page.index('id="evaluation-plots"'):]
    assert "<figcaption>Confusion matrix</figcaption>" in plots
    assert plots.count('fill="#2456d6"') == 4  # a 2 × 2 matrix
    assert f"ROC curve (AUC {metrics['roc_auc']:.3g})" in plots and 'class="diag"' in plots
    assert re.search(r"<th>accuracy</th><td class=\"num\">0\.6667</td>", page)
    client.close()


def test_an_upload_over_the_limit_is_refused_before_it_is_read(srv: RunningServer) -> None:
    client = signed_in(srv)
    project = unique("big")
    assert client.post("/ui/projects", {"name": project}).status_code == 303
    client.get(f"/ui/projects/{project}/datasets")
    too_big = client.http.post(
        f"/ui/projects/{project}/datasets/upload", data={"csrf_token": client.csrf, "name": "big"},
        files={"archive": ("big.zip", b"0" * (UPLOAD_LIMIT + 2 * 1024 * 1024), "application/zip")},
    )
    assert too_big.status_code == 413 and "larger than the limit" in too_big.text
    # A form without files is bounded too (by the form parser, before any handler runs).
    name = unique("p")
    plain = client.post("/ui/projects", {"name": name, "description": "x" * 2_000_000})
    assert plain.status_code in (400, 413)
    with api(srv) as admin:
        assert admin.get(f"/projects/{project}/datasets").json()["count"] == 0
        assert admin.get(f"/projects/{name}").status_code == 404
    client.close()


def test_the_evaluate_form_runs_an_evaluation_whose_plots_and_champion_table_the_page_shows(
    srv: RunningServer, tmp_path: Path
) -> None:
    frame = training_frame()
    stump = DecisionTreeClassifier(max_depth=1, random_state=0).fit(frame[FEATURES], frame.label)
    (tmp_path / "stump").mkdir()
    joblib.dump(stump, tmp_path / "stump" / "model.joblib")
    project = unique("evalform")
    with ModelOpsClient(srv.url, srv.token) as client:
        client.projects.create(project)
        client.datasets.upload_version(project, "labelled", write_dataset(tmp_path / "data"))
        imports = [client.models.import_model(project, "clf", path)
                   for path in (joblib_classifier(tmp_path / "good"), tmp_path / "stump" / "model.joblib")]
        for job in imports:
            assert client.jobs.wait(job["id"], timeout=180)["status"] == "completed"
    web = signed_in(srv)
    base = f"/ui/projects/{project}/packages/clf/versions"

    def evaluate_by_form(version: str) -> None:
        page = web.get(f"{base}/{version}").text
        assert 'id="evaluate-form"' in page and 'id="champion-table"' not in page
        response = web.post(f"{base}/{version}/evaluate",
                            {"dataset": "labelled", "dataset_version": "1", "label": "label"})
        assert response.status_code == 303, response.text
        job_id = int(response.headers["location"].rsplit("/", 1)[1])
        with ModelOpsClient(srv.url, srv.token) as client:
            ended = client.jobs.wait(job_id, timeout=180)
        assert ended["kind"] == "evaluation" and ended["status"] == "completed", ended

    evaluate_by_form("1.0")
    with ModelOpsClient(srv.url, srv.token) as client:
        client.lifecycle.approve(project, "clf", "1.0", reason="good enough")
        client.deployments.create(project, "clf", "1.0", name="clf-prod")
    evaluate_by_form("2.0")

    page = web.get(f"{base}/2.0").text
    plots = page[page.index('id="evaluation-plots"'):]
    plot_url = f"{base}/2.0/evaluation/plots/confusion_matrix.png"
    assert f'<img src="{plot_url}"' in plots and f'src="{base}/2.0/evaluation/plots/roc_curve.png"' in plots
    table = page[page.index('id="champion-table"'):]
    table = table[:table.index("</table>")]
    accuracy = re.search(r"<tr><th>accuracy</th>(.*?)</tr>", table)
    assert accuracy is not None
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", accuracy.group(1))
    ours, theirs, delta, better = cells
    assert float(delta) == pytest.approx(float(ours) - float(theirs), abs=2e-4) and float(delta) < 0
    assert better == "champion"  # the one-split stump is the weaker model
    assert ">1.0</a>" in page[page.index('id="champion-comparison"'):]

    image = web.get(plot_url)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert "sandbox" in image.headers["content-security-policy"]
    assert image.headers["x-content-type-options"] == "nosniff"
    assert image.headers["content-disposition"] == 'inline; filename="confusion_matrix.png"'
    missing = web.get(f"{base}/2.0/evaluation/plots/nope.png")
    assert missing.status_code == 404 and "no plot" in missing.text
    bad = web.post(f"{base}/2.0/evaluate", {"dataset": "labelled", "dataset_version": "latest"})
    assert bad.status_code == 400 and "whole number" in bad.text
    web.close()
    anonymous = WebClient(srv.url)
    assert anonymous.get(plot_url).status_code in (303, 401)
    anonymous.close()
