"""``modelops demo`` end to end against a real server: the shipped iris example goes through
upload, training, evaluation, statistics, approval, deployment, batch prediction and retirement."""

from __future__ import annotations

from conftest import RunningServer


def test_the_demo_walks_the_iris_example_through_its_whole_lifecycle(server: RunningServer) -> None:
    done = server.cli("demo", "--project", "tour", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for shown in ("trained on 120 rows", "version 1.1 is evaluated", "scored 30 rows in all",
                  "next scheduled runs: ", "modelops jobs logs", f"{server.url}/api/v1/projects/tour",
                  "modelops audit deployed-at tour iris", "demo complete"):
        assert shown in out, shown
    with server.client() as api:
        assert api.packages.get_version("tour", "iris", "1.1")["status"] == "retired"
        (deployment,) = api.deployments.list("tour")
        assert deployment["status"] == "retired" and deployment["retire_reason"] == "demo finished"
        (run,) = api.deployments.runs("tour", deployment["name"])
        assert run["rows"] == 30 and run["drift"] is not None
        kinds = {j["kind"]: j["status"] for j in api.jobs.list("tour")}
        assert kinds == dict.fromkeys(
            ("training", "evaluation", "compute_statistics", "approval", "deployment",
             "batch_prediction", "retirement"), "completed")
        actions = [e["action"] for e in api.audit.list("tour")]
        assert actions == ["version_registered", "version_registered", "evaluate", "approve", "deploy",
                           "batch_run_started", "retire"]
    again = server.cli("demo", "--project", "tour")
    assert again.returncode == 1 and "already exists" in again.stderr
