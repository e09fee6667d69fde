"""``modelops demo``: walk the shipped iris example through the whole lifecycle on a running
platform: upload, train, evaluate, compute statistics, approve, deploy, batch predict, retire.

Every step is a real job on the server; the demo prints each job's progress (its log lines as
they arrive) and where to look afterwards (API URLs and CLI commands)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from modelops.cli.common import client, command, console, fail

app = typer.Typer(invoke_without_command=True, no_args_is_help=False)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
PACKAGE, DATASET = "iris", "iris"


class Demo:
    def __init__(self, api: Any, project: str) -> None:
        self.api = api
        self.project = project
        self.step = 0
        self.jobs: list[tuple[str, int]] = []

    def title(self, text: str) -> None:
        self.step += 1
        console.print(f"\n[bold cyan]{self.step}. {escape(text)}[/]", highlight=False)

    def say(self, text: str) -> None:
        console.print(f"   {escape(text)}", highlight=False, soft_wrap=True)

    def watch(self, label: str, job_id: int, timeout: float = 1800) -> dict[str, Any]:
        """Print a job's log lines as they are stored, then its outcome; fail on a bad end."""
        self.jobs.append((label, job_id))
        self.say(f"job {job_id} ({label}) — logs: modelops jobs logs {job_id}")
        started = time.monotonic()
        for record in self.api.jobs.follow_logs(job_id):
            if record.get("type") == "log":
                console.print(f"   [dim]│ {escape(record['text'])}[/]", highlight=False, soft_wrap=True)
            if time.monotonic() - started > timeout:
                raise fail(f"job {job_id} did not finish within {timeout:g} s")
        job: dict[str, Any] = self.api.jobs.get(job_id)
        took = ""
        if job.get("started_at") and job.get("ended_at"):
            from datetime import datetime

            seconds = (datetime.fromisoformat(job["ended_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()
            took = f" in {seconds:.1f} s"
        if job["status"] != "completed":
            raise fail(f"job {job_id} ({label}) ended {job['status']}: {job.get('error') or 'see its logs'}")
        self.say(f"job {job_id} completed{took}")
        return job

    def recorded(self, label: str, job: dict[str, Any]) -> None:
        """Approval, deployment and retirement jobs are applied at once: show their story."""
        self.jobs.append((label, job["id"]))
        events = " → ".join(e["to_status"] for e in self.api.jobs.events(job["id"]))
        self.say(f"job {job['id']} ({job['kind']}): {events}")


def run_demo(api: Any, project: str, examples: Path) -> None:
    demo = Demo(api, project)
    url = api.url
    demo.title(f"Project '{project}'")
    api.projects.create(project, description="modelops demo: the iris example through its whole lifecycle")
    demo.say(f"{url}/api/v1/projects/{project}")

    demo.title("Upload the iris data and the iris ML package")
    data = api.datasets.upload_version(project, DATASET, examples / "iris_data", note="iris: train/ and test/")
    demo.say(f"dataset '{DATASET}' version {data['version']}: {data['file_count']} files")
    first = api.packages.upload(project, PACKAGE, examples / "iris_package", description="iris classifier")
    demo.say(f"ML package '{PACKAGE}' version {first['version']} ({first['status']})")

    demo.title("Train (training pipeline on train/)")
    created = api.pipelines.create(project, "iris-train", type="training", package=PACKAGE,
                                   version=first["version"], dataset=DATASET, folder="train")
    demo.watch("training", created["run"]["job_id"])
    trained = api.pipelines.get_run(project, created["run"]["job_id"])["new_version"]
    demo.say(f"new version {trained} (trained); artifacts: modelops pipelines artifacts {project} "
             f"{created['run']['job_id']}")

    demo.title(f"Evaluate {trained} (evaluation pipeline on test/)")
    evaluation = api.pipelines.create(project, "iris-evaluate", type="evaluation", package=PACKAGE,
                                      version=trained, dataset=DATASET, folder="test")
    demo.watch("evaluation", evaluation["run"]["job_id"])
    score = api.pipelines.get_run(project, evaluation["run"]["job_id"])["score"]
    demo.say(f"version {trained} is evaluated: accuracy {score:.3f}")

    demo.title("Compute reference statistics (for drift in batch runs)")
    stats = api.models.compute_statistics(project, PACKAGE, trained, dataset=DATASET, folder="train")
    demo.watch("compute statistics", stats["id"])

    demo.title(f"Approve {trained}")
    decision = api.lifecycle.approve(project, PACKAGE, trained, reason=f"accuracy {score:.3f} on the held-out rows")
    demo.recorded("approval", decision["job"])
    demo.say(f"version {trained}: {decision['version']['status']}")

    demo.title(f"Deploy {trained} (batch, scheduled daily at 03:00 Paris time)")
    name = "iris-production"
    deployed = api.deployments.create(project, PACKAGE, trained, name=name, dataset=DATASET, folder="test",
                                      cron="0 3 * * *", timezone="Europe/Paris", reason="demo")
    demo.recorded("deployment", deployed["job"])
    schedule = api.deployments.schedule(project, name, count=3)
    demo.say("next scheduled runs: " + ", ".join(schedule["upcoming_local"]))
    demo.say(f"champion of '{PACKAGE}': {api.lifecycle.champion(project, PACKAGE)['champion']}")
    demo.say(f"details: {url}/api/v1/projects/{project}/deployments/{name}")

    demo.title("Batch predict (Run now)")
    started = api.deployments.run_now(project, name)
    demo.watch("batch prediction", started["job"]["id"])
    run = api.deployments.run(project, name, started["job"]["id"])["run"]
    out = run["parameters"]["output_dataset"]
    demo.say(f"{run['rows']} rows scored → dataset '{out}' version {run['output_version']} "
             f"(modelops datasets download {project} {out} {run['output_version']})")
    drift = run.get("drift")
    if drift:
        demo.say(f"drift: max PSI {drift['max_psi']:.4f}; drifted features: "
                 f"{', '.join(drift['drifted_features']) or 'none'}")

    demo.title(f"Retire {name}")
    retired = api.deployments.retire(project, name, reason="demo finished")
    demo.recorded("retirement", retired["job"])
    demo.say(f"deployment {retired['deployment']['status']}; version {trained} retired; schedule ended")

    demo.title("Where to look")
    demo.say(f"jobs:        modelops jobs list {project}    ({url}/api/v1/projects/{project}/jobs)")
    demo.say(f"Jobs tab:    modelops deployments jobs {project} {name}")
    demo.say(f"audit trail: modelops audit list {project}    (export: modelops audit export {project} --format csv)")
    demo.say(f"deployed at: modelops audit deployed-at {project} {PACKAGE} --at <time>")
    demo.say(f"API docs:    {url}/docs")
    for event in api.audit.list(project):
        demo.say(f"audit {event['id']:>3}  {event['action']:<19} {event['target']:<28} by {event['actor']}"
                 + (f" — {event['reason']}" if event["reason"] else ""))


@app.callback()
@command
def demo(
    project: Annotated[str | None, typer.Option(help="Project to create (default demo-<random>).")] = None,
    examples: Annotated[Path, typer.Option(help="Folder holding iris_package/ and iris_data/.")] = EXAMPLES,
) -> None:
    """Walk the iris example through its whole lifecycle on the running platform."""
    for needed in ("iris_package", "iris_data"):
        if not (examples / needed).is_dir():
            raise fail(f"{examples / needed} not found: point --examples at the repository's examples folder")
    name = project or f"demo-{uuid.uuid4().hex[:6]}"
    with client() as api:
        console.print(f"modelops demo on {api.url}, project '{escape(name)}'", highlight=False)
        run_demo(api, name, examples)
    console.print("\n[bold green]demo complete[/]")
