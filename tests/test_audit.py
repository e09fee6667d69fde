"""The audit trail on a real server, through the API and the CLI: every lifecycle action is
recorded with actor, before, after and reason; nothing can change it; it exports as CSV and
JSON; and it answers which version of a model was deployed at a given time."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer
from support.lifecycle import IRIS_DATA, tiny_package
from support.servers import shared_server

from modelops.client import ModelOpsClient

PROJECT = "ledger"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with shared_server(tmp_path_factory.mktemp("audit")) as running:
        yield running


@pytest.fixture(scope="module")
def api(srv: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelOpsClient]:
    """Model 'swap' with versions 1.0 and 2.0 and model 'quoted' 1.0, all evaluated."""
    root = tmp_path_factory.mktemp("models")
    with srv.client() as client:
        client.projects.create(PROJECT)
        client.datasets.upload_version(PROJECT, "iris", IRIS_DATA)
        runs = []
        for model, versions in (("swap", ("1.0", "2.0")), ("quoted", ("1.0",))):
            for version in versions:
                client.packages.upload(PROJECT, model, tiny_package(root / model))
                runs.append(client.pipelines.create(
                    PROJECT, f"{model}-{version}-eval", type="evaluation", package=model, version=version,
                    dataset="iris", folder="test",
                )["run"]["job_id"])
        for job_id in runs:
            assert client.jobs.wait(job_id, timeout=120)["status"] == "completed"
        yield client


def cli_json(srv: RunningServer, *args: str) -> Any:
    done = srv.cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_deployed_at_a_time_is_answered_from_the_trail(srv: RunningServer, api: ModelOpsClient) -> None:
    def at(moment: datetime) -> tuple[str | None, list[str]]:
        found = api.audit.deployed_at(PROJECT, "swap", moment)
        return found["champion"], [d["version"] for d in found["deployments"]]

    assert srv.cli("lifecycle", "approve", PROJECT, "swap", "1.0", "--reason", "passes").returncode == 0
    api.lifecycle.approve(PROJECT, "swap", "2.0", reason="passes")
    before = datetime.now(UTC)
    first = cli_json(srv, "deployments", "create", PROJECT, "swap", "1.0", "--name", "swap-a")
    time.sleep(0.05)
    during_first = datetime.now(UTC)
    second = cli_json(srv, "deployments", "create", PROJECT, "swap", "2.0", "--name", "swap-b", "--replace",
                      "--reason", "better")
    assert second["replaced"]["name"] == "swap-a"
    time.sleep(0.05)
    during_second = datetime.now(UTC)
    retired = srv.cli("deployments", "retire", PROJECT, "swap-b", "--reason", "end of season")
    assert retired.returncode == 0, retired.stderr
    after = datetime.now(UTC)
    assert at(before) == (None, [])
    assert at(during_first) == ("1.0", ["1.0"])
    assert at(during_second) == ("2.0", ["2.0"])
    assert at(after) == (None, [])
    by_cli = cli_json(srv, "audit", "deployed-at", PROJECT, "swap", "--at", during_first.isoformat())
    assert by_cli["champion"] == "1.0" and by_cli["deployments"][0]["deployment"] == "swap-a"
    # The moment of the deployment itself counts as deployed, by the API too.
    exact = api.audit.deployed_at(PROJECT, "swap", first["deployment"]["deployed_at"])
    assert exact["champion"] == "1.0"
    text = srv.cli("audit", "deployed-at", PROJECT, "swap", "--at", during_second.isoformat())
    assert "champion 2.0" in text.stdout and "swap-b" in text.stdout
    assert srv.cli("audit", "deployed-at", PROJECT, "swap", "--at", "yesterday").returncode != 0
    events = api.audit.list(PROJECT, package="swap")
    # The evaluation runs' events land in the order the runs finish: checked apart.
    evaluated = sorted((e["target"], e["actor"], e["before"]["status"], e["after"]["status"])
                       for e in events if e["action"] == "evaluate")
    assert evaluated == [(f"swap {v}", "admin", "uploaded", "evaluated") for v in ("1.0", "2.0")]
    trail = [(e["action"], e["actor"], e["reason"]) for e in events if e["action"] != "evaluate"]
    assert trail == [
        ("version_registered", "admin", ""), ("version_registered", "admin", ""),
        ("approve", "admin", "passes"), ("approve", "admin", "passes"), ("deploy", "admin", ""),
        ("retire", "admin", "replaced by deployment 'swap-b' (version 2.0): better"),
        ("deploy", "admin", "better"), ("retire", "admin", "end of season"),
    ]


def test_exports_hold_the_same_events_as_the_list(srv: RunningServer, api: ModelOpsClient, tmp_path: Path) -> None:
    reason = 'says "no", twice,\nand means it'
    api.lifecycle.reject(PROJECT, "quoted", "1.0", reason=reason)
    listed = api.audit.list(PROJECT, package="quoted")
    assert [e["action"] for e in listed] == ["version_registered", "evaluate", "reject"]
    assert listed[2]["before"] == {"status": "evaluated"} and listed[2]["after"] == {"status": "rejected"}
    exported = srv.cli("audit", "export", PROJECT, "--package", "quoted", "--format", "csv", "-o", str(tmp_path / "a.csv"))
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text())))
    assert [int(r["id"]) for r in rows] == [e["id"] for e in listed]
    assert rows[2]["reason"] == reason and json.loads(rows[2]["after"]) == {"status": "rejected"}
    assert rows[2]["actor"] == "admin" and rows[2]["job_id"] == str(listed[2]["job_id"])
    as_json = json.loads(srv.cli("audit", "export", PROJECT, "--package", "quoted", "--format", "json").stdout)
    assert as_json == listed
    only = json.loads(b"".join(api.audit.export_chunks(PROJECT, format="json", actions=["reject"])))
    assert [e["action"] for e in only] == ["reject"]


def test_no_request_can_change_or_remove_an_event(api: ModelOpsClient) -> None:
    before = api.audit.list(PROJECT)
    assert before
    target = before[0]["id"]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in (f"/projects/{PROJECT}/audit", f"/projects/{PROJECT}/audit/{target}"):
            response = api.http.request(method, path, json={"reason": "rewritten"})
            assert response.status_code in (404, 405), (method, path, response.status_code)
    assert api.audit.list(PROJECT, until=datetime.now(UTC)) [: len(before)] == before
    assert api.http.get(f"/projects/{PROJECT}/audit", params={"action": "delete"}).status_code == 400
    assert api.http.get(f"/projects/{PROJECT}/audit/export", params={"format": "xml"}).status_code == 400
