"""Deployments end to end on a real server: approve, deploy, Run now, the predictions dataset
version, drift, schedules, the Jobs tab, retirement, and the refusals (403, 409, 4xx).

One server and one project for the module; each test uses its own model, so none depends on
another's data."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import RunningServer
from support.lifecycle import IRIS_DATA, tiny_package
from support.servers import shared_server

from modelops.client import ApiError, ModelOpsClient

PROJECT = "shop"
MODELS = ("scored", "scheduled", "refused", "retired", "by-cli")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with shared_server(tmp_path_factory.mktemp("deployments")) as running:
        yield running


@pytest.fixture(scope="module")
def api(srv: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelOpsClient]:
    """Every model of MODELS at version 1.0, evaluated by a real evaluation run; 'scored' also
    has reference statistics (for drift)."""
    root = tmp_path_factory.mktemp("models")
    with srv.client() as client:
        client.projects.create(PROJECT)
        client.datasets.upload_version(PROJECT, "iris", IRIS_DATA)
        jobs = []
        for model in MODELS:
            client.packages.upload(PROJECT, model, tiny_package(root / model))
            run = client.pipelines.create(PROJECT, f"{model}-eval", type="evaluation", package=model,
                                          version="1.0", dataset="iris", folder="test")["run"]
            jobs.append(run["job_id"])
        jobs.append(client.models.compute_statistics(PROJECT, "scored", "1.0", dataset="iris", folder="train")["id"])
        for job_id in jobs:
            assert client.jobs.wait(job_id, timeout=120)["status"] == "completed"
        yield client


def token(srv: RunningServer, api: ModelOpsClient, role: str) -> ModelOpsClient:
    return srv.client(api.tokens.create(f"{role}-{len(api.tokens.list())}", role)["secret"])


def refused(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


def test_roles_reasons_and_order_are_enforced_over_http(srv: RunningServer, api: ModelOpsClient) -> None:
    for role in ("viewer", "member"):
        error = refused(lambda r=role: token(srv, api, r).lifecycle.approve(PROJECT, "refused", "1.0", reason="ok"))
        assert error.status == 403
    assert refused(lambda: api.lifecycle.approve(PROJECT, "refused", "1.0", reason=" ")).status == 400
    early = refused(lambda: api.deployments.create(PROJECT, "refused", "1.0"))
    assert early.status == 409 and early.body["current"] == "evaluated"
    assert "approved" in early.body["allowed"]
    approver = token(srv, api, "approver")
    done = approver.lifecycle.reject(PROJECT, "refused", "1.0", reason="too slow")
    assert done["version"]["status"] == "rejected" and done["job"]["kind"] == "rejection"
    again = refused(lambda: approver.lifecycle.approve(PROJECT, "refused", "1.0", reason="ok"))
    assert again.status == 409 and again.body["current"] == "rejected" and again.body["allowed"] == []
    bare = refused(lambda: api.jobs.submit(PROJECT, "deployment", {}))
    assert bare.status == 400 and "deployments" in bare.detail


def test_run_now_scores_into_a_new_dataset_version_with_drift(
    srv: RunningServer, api: ModelOpsClient, tmp_path: Path
) -> None:
    api.lifecycle.approve(PROJECT, "scored", "1.0", reason="good enough")
    member = token(srv, api, "member")
    deployed = member.deployments.create(PROJECT, "scored", "1.0", name="scored-prod", dataset="iris", folder="test")
    assert api.lifecycle.champion(PROJECT, "scored")["champion"] == "1.0"
    started = member.deployments.run_now(PROJECT, "scored-prod")
    job = api.jobs.wait(started["job"]["id"], timeout=120)
    assert job["status"] == "completed", job["error"]
    run = api.deployments.run(PROJECT, "scored-prod", job["id"])["run"]
    assert run["rows"] == 30 and run["output_version"] == 1
    assert run["drift"]["features"]["sepal_length"]["psi"] >= 0 and job["result"]["drift"]["sample_rows"] == 30
    version = api.datasets.get_version(PROJECT, "scored-prod-predictions", 1)
    assert f"batch prediction job {job['id']}" in version["note"]
    archive = api.datasets.download_version(PROJECT, "scored-prod-predictions", 1, tmp_path / "p.zip")
    with zipfile.ZipFile(archive) as zf:
        zf.extract("predictions.parquet", tmp_path)
    table = pq.read_table(tmp_path / "predictions.parquet").to_pandas()
    assert len(table) == 30 and set(table["job_id"]) == {job["id"]}
    assert set(table["prediction"]) <= {"big", "small"}
    kinds = [j["kind"] for j in api.deployments.jobs(PROJECT, "scored-prod")]
    assert kinds == ["batch_prediction", "deployment"] and deployed["job"]["status"] == "completed"
    events = api.jobs.events(job["id"])
    assert [e["to_status"] for e in events] == ["created", "queued", "running", "completed"]


def test_schedules_show_their_next_times_in_their_zone(api: ModelOpsClient) -> None:
    api.lifecycle.approve(PROJECT, "scheduled", "1.0", reason="ok")
    api.deployments.create(PROJECT, "scheduled", "1.0", dataset="iris", cron="0 3 * * *", timezone="Europe/Paris")
    view = api.deployments.schedule(PROJECT, "scheduled-1.0", count=3)
    assert view["schedule"] == {"cron": "0 3 * * *", "timezone": "Europe/Paris"}
    assert len(view["upcoming"]) == 3 and all("T03:00:00+0" in t for t in view["upcoming_local"])
    assert refused(lambda: api.deployments.set_schedule(PROJECT, "scheduled-1.0", "0 3 * *")).status == 400
    assert refused(lambda: api.deployments.set_schedule(PROJECT, "scheduled-1.0", "0 3 * * *",
                                                        timezone="Nowhere/City")).status == 400
    hourly = api.deployments.set_schedule(PROJECT, "scheduled-1.0", "15 * * * *")
    assert hourly["schedule"]["timezone"] == "UTC" and hourly["upcoming"][0].endswith(":15:00Z")
    cleared = api.deployments.clear_schedule(PROJECT, "scheduled-1.0")
    assert cleared["schedule"] is None and cleared["upcoming"] == []
    actions = [e["action"] for e in api.audit.list(PROJECT, package="scheduled")]
    assert actions == ["version_registered", "evaluate", "approve", "deploy", "schedule_set", "schedule_cleared"]


def test_retiring_ends_runs_and_the_schedule_and_is_audited_with_its_reason(
    srv: RunningServer, api: ModelOpsClient
) -> None:
    api.lifecycle.approve(PROJECT, "retired", "1.0", reason="ok")
    api.deployments.create(PROJECT, "retired", "1.0", dataset="iris", cron="*/5 * * * *")
    assert refused(lambda: token(srv, api, "viewer").deployments.retire(PROJECT, "retired-1.0", reason="x")).status == 403
    done = api.deployments.retire(PROJECT, "retired-1.0", reason="superseded")
    assert done["deployment"]["status"] == "retired" and done["deployment"]["next_run_at"] is None
    assert refused(lambda: api.deployments.run_now(PROJECT, "retired-1.0")).status == 409
    assert refused(lambda: api.deployments.retire(PROJECT, "retired-1.0", reason="again")).status == 409
    assert api.packages.get_version(PROJECT, "retired", "1.0")["status"] == "retired"
    assert api.lifecycle.champion(PROJECT, "retired")["champion"] is None
    assert [j["kind"] for j in api.deployments.jobs(PROJECT, "retired-1.0")] == ["retirement", "deployment"]
    (event,) = api.audit.list(PROJECT, package="retired", actions=["retire"])
    assert event["reason"] == "superseded" and event["after"]["version_status"] == "retired"


def test_bad_deployment_requests_are_4xx(api: ModelOpsClient) -> None:
    cases = [
        ({"package": "scored", "version": "9.9"}, 404),
        ({"package": "nope", "version": "1.0"}, 404),
        ({"package": "scored", "version": "1.0", "mode": "realtime"}, 400),
        ({"package": "scored", "version": "1.0", "cron": "0 3 * * *"}, 400),  # a schedule needs data
        ({"package": "scored", "version": "1.0", "dataset": "iris", "output_dataset": "iris"}, 400),
        ({"package": "scored", "version": "1.0", "replace": True, "side_by_side": True}, 400),
        ({"package": "scored", "version": "x"}, 400),
    ]
    for body, status in cases:
        response = api.http.post(f"/projects/{PROJECT}/deployments", json=body)
        assert response.status_code == status, (body, response.text)
    assert api.http.get(f"/projects/{PROJECT}/deployments/missing").status_code == 404
    assert api.http.get(f"/projects/{PROJECT}/deployments", params={"status": "gone"}).status_code == 400


def test_the_cli_deploys_schedules_runs_now_and_shows_the_jobs_tab(srv: RunningServer, api: ModelOpsClient) -> None:
    def cli(*args: str) -> str:
        done = srv.cli(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("lifecycle", "approve", PROJECT, "by-cli", "1.0", "--reason", "reviewed")
    created = cli("deployments", "create", PROJECT, "by-cli", "1.0", "--dataset", "iris", "--folder", "test",
                  "--cron", "30 6 * * 1-5", "--timezone", "America/New_York")
    assert "deployed by-cli 1.0 as 'by-cli-1.0'" in created and "30 6 * * 1-5 (America/New_York)" in created
    schedule = cli("deployments", "schedule", PROJECT, "by-cli-1.0", "--count", "2")
    assert schedule.count("T06:30:00-0") == 2  # New York time, EST or EDT
    ran = json.loads(cli("deployments", "run", PROJECT, "by-cli-1.0", "--wait", "--json"))
    assert ran["job"]["status"] == "completed" and ran["run"]["rows"] == 30
    tab = cli("deployments", "jobs", PROJECT, "by-cli-1.0")
    assert "batch_prediction" in tab and "deployment" in tab and "completed" in tab
