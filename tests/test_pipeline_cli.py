"""The CLI: the README's Quickstart, run as written against a real server, and CLI errors."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

from conftest import MODELOPS_BIN, RunningServer
from pipeline_helpers import IRIS_DATA, REPO, tiny_package


def quickstart_commands() -> list[list[str]]:
    """The ``$M ...`` commands of the README's Quickstart block, continuations joined."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("$M "):
            commands.append(shlex.split(line)[1:])
    return commands


def run_cli(server: RunningServer, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # Paths in the README are relative to the repository; run elsewhere so downloads land in cwd.
    args = [str(REPO / a) if a.startswith("examples/") else a for a in args]
    env = dict(server.env, MODELOPS_URL=server.url, MODELOPS_TOKEN=server.token, COLUMNS="200",
               NO_COLOR="1")
    return subprocess.run([MODELOPS_BIN, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_the_readme_quickstart_works_as_written(server: RunningServer, tmp_path: Path) -> None:
    commands = quickstart_commands()
    assert [c[:2] for c in commands if c[0] == "pipelines"][:2] == [
        ["pipelines", "create"], ["pipelines", "runs"]]
    outputs: dict[str, str] = {}
    for args in commands:
        done = run_cli(server, args, tmp_path)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        outputs[" ".join(args[:4])] = done.stdout
    assert "Run 1 of pipeline 'train-iris': Successful; new version 1.1" in outputs[
        "pipelines create demo train-iris"]
    assert "Run 2 of pipeline 'eval-iris': Successful; score" in outputs[
        "pipelines create demo eval-iris"]
    results = json.loads(outputs["pipelines results demo 1"])
    assert results["run_summary"]["outputs"]["version"] == "1.1"
    assert (tmp_path / "class_counts.png").read_bytes().startswith(b"\x89PNG")
    assert "plots/class_counts.png" in outputs["pipelines artifacts demo 1"]
    assert "Main.train(" in outputs["jobs logs 1"]
    versions = outputs["packages versions demo iris"]
    assert re.search(r"1\.1\s+.*evaluated", versions), versions
    eval_runs = run_cli(server, ["pipelines", "runs", "demo", "--pipeline", "eval-iris", "--json"], tmp_path)
    (run,) = json.loads(eval_runs.stdout)
    assert run["status"] == "Successful" and 0.8 <= run["score"] <= 1.0


def test_cli_reports_failures_and_bad_options(server: RunningServer, tmp_path: Path) -> None:
    for args in (["projects", "create", "cli"], ["datasets", "upload", "cli", "data", str(IRIS_DATA)],
                 ["packages", "upload", "cli", "bad", str(tiny_package(tmp_path, "raises"))]):
        assert run_cli(server, args, tmp_path).returncode == 0
    base = ["pipelines", "create", "cli", "p", "--type", "training", "--package", "bad",
            "--version", "1.0", "--dataset", "data"]
    failed = run_cli(server, [*base, "--wait"], tmp_path)
    assert failed.returncode == 1
    assert "Failed" in failed.stdout and "bad rows in the training data" in failed.stdout
    assert "modelops jobs logs" in failed.stdout
    both = run_cli(server, [*base[:3], "q", *base[4:], "--at", "2031-01-01T00:00", "--cron", "0 * * * *"], tmp_path)
    assert both.returncode == 1 and "either --at or --cron" in both.stderr
    bad_param = run_cli(server, [*base[:3], "q", *base[4:], "--param", "novalue"], tmp_path)
    assert bad_param.returncode == 1 and "use NAME=VALUE" in bad_param.stderr
    later = run_cli(server, [*base[:3], "q", *base[4:], "--at", "2031-01-01T00:00", "--json"], tmp_path)
    assert later.returncode == 0, later.stderr
    created = json.loads(later.stdout)
    assert created["run"] is None and created["schedule"]["kind"] == "once"
    missing = run_cli(server, ["pipelines", "run-show", "cli", "4242"], tmp_path)
    assert missing.returncode == 1 and "pipeline run 4242 not found (404)" in missing.stderr
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]
