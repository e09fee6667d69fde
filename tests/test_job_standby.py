"""Standby interpreters: a job that starts on one sees exactly what a freshly started one sees.

The same probe runs as a job on an engine with standbys and on one without; what the job can
observe (arguments, ``__file__``, ``__name__``, ``sys.path[0]``, folder, environment, stdin, how
an exception and an exit code end it) must agree. Whether a job took a standby is read from its
worker reference (its control folder is named ``standby-…``).
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from fixtures.jobs.support import (
    ALICE,
    close_engine_container,
    engine_container,
    log_texts,
    wait_for,
    wait_terminal,
)

from modelops.bootstrap import Container
from modelops.domain.jobs import Job, JobStatus

PROBE = '''
import json, os, sys
import helper
import pkgutil  # the package's own pkgutil.py shadows the standard one, in a fresh process
print(json.dumps({
    "argv": sys.argv, "file": __file__, "name": __name__, "path0": sys.path[0], "cwd": os.getcwd(),
    "env": dict(os.environ), "stdin": sys.stdin.read(), "main_file": sys.modules["__main__"].__file__,
    "helper": helper.__file__, "unbuffered": os.environ.get("PYTHONUNBUFFERED"),
    "globals": sorted(name for name in globals() if not name.startswith("__")),
    "shadow": getattr(pkgutil, "SHADOW", "standard library"),
    "excepthook": sys.excepthook is sys.__excepthook__,
}, sort_keys=True))
if len(sys.argv) > 1 and sys.argv[1] == "hook":
    def hook(kind, value, tb):
        print(f"custom hook: {kind.__name__}: {value}", file=sys.stderr)
    sys.excepthook = hook
    raise RuntimeError("handled by the hook")
if len(sys.argv) > 1 and sys.argv[1] == "raise":
    def inner():
        raise ValueError("boom from the probe")
    inner()
if len(sys.argv) > 1 and sys.argv[1].startswith("exit="):
    sys.exit(int(sys.argv[1][5:]))
'''
MAIN_PY = "class Main:\n    def __init__(self):\n        pass\n\n    def predict(self, rows):\n        return rows\n"


def probe_zip(folder: Path) -> Path:
    archive = folder / "probe.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("main.py", MAIN_PY)
        zf.writestr("probe.py", PROBE)
        zf.writestr("helper.py", "VALUE = 1\n")
        zf.writestr("pkgutil.py", "SHADOW = 'the package'\n")
        zf.writestr("tool/__init__.py", "")
        zf.writestr("tool/__main__.py", PROBE.replace("import helper", "import helper  # noqa"))
    return archive


def start(tmp: Path, name: str, database_url: str, *, standby: bool) -> Container:
    container = engine_container(tmp / name, database_url, job_standby=standby)
    container.projects.create(principal=ALICE, name="p")
    container.packages.upload(principal=ALICE, project="p", name="probe", archive=probe_zip(tmp))
    return container


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[tuple[Container, Container]]:
    with_standby = start(tmp_path, "warm", f"sqlite:///{tmp_path / 'warm.db'}", standby=True)
    fresh = start(tmp_path, "cold", f"sqlite:///{tmp_path / 'cold.db'}", standby=False)
    try:
        yield with_standby, fresh
    finally:
        close_engine_container(with_standby)
        close_engine_container(fresh)


def run(container: Container, *command: str, expect_standby: bool | None = None) -> Job:
    if expect_standby:  # a standby is started after the first job, in the background
        wait_for(lambda: _standby_ready(container), what="a standby interpreter", timeout=60)
    job = container.jobs.submit(principal=ALICE, project="p", kind="script",
                                parameters={"package": "probe", "version": "1.0", "command": list(command)})
    ended = wait_terminal(container, job.id, timeout=60)
    if expect_standby is not None:
        assert took_standby(container, ended) is expect_standby, ended.worker_ref
    return ended


def _standby_ready(container: Container) -> bool:
    standby = current_standby(container)
    return standby is not None and standby.popen.poll() is None


def current_standby(container: Container) -> Any:
    """The interpreter the executor keeps ready (a peek at its pool), or None."""
    pool = getattr(container.executor, "_standbys", None)
    return None if pool is None else pool._standby


def took_standby(container: Container, job: Job) -> bool:
    with container.uow() as uow:
        ref = uow.jobs.get(job.id).worker_ref
    assert ref is not None
    return Path(json.loads(ref)["ctl"]).name.startswith("standby-")


def observed(container: Container, job: Job) -> dict[str, Any]:
    lines = [text for text in log_texts(container, job.id, streams=("stdout",)) if text.startswith("{")]
    seen: dict[str, Any] = json.loads(lines[0])
    workdir = seen["cwd"]
    # What differs by nature between two jobs: their folders, ids and private temp folders.
    for key in ("file", "path0", "main_file", "helper"):
        seen[key] = seen[key].replace(workdir, "<workdir>")
    seen["argv"] = [arg.replace(workdir, "<workdir>") for arg in seen["argv"]]
    env = seen.pop("env")
    seen["env_names"] = sorted(env)
    seen["env_values"] = {k: v for k, v in env.items()
                          if k not in ("HOME", "TMPDIR", "MODELOPS_JOB_ID", "UV_CACHE_DIR", "PWD")}
    seen["pwd_is_cwd"] = env.get("PWD") == workdir
    seen["job_id_matches"] = env["MODELOPS_JOB_ID"] == str(job.id)
    seen["home_is_tmp"] = env["HOME"] == env["TMPDIR"] and Path(env["TMPDIR"]).is_absolute()
    seen.pop("cwd")
    return seen


def test_a_job_on_a_standby_sees_what_a_fresh_process_sees(engines: tuple[Container, Container]) -> None:
    warm, cold = engines
    run(warm, "python", "probe.py", expect_standby=False)  # the first job starts fresh
    for command in (["python", "probe.py", "a b", "--flag"], ["python", "-m", "tool", "x"]):
        on_standby = run(warm, *command, expect_standby=True)
        fresh = run(cold, *command, expect_standby=False)
        assert on_standby.status is fresh.status is JobStatus.COMPLETED
        seen_warm, seen_cold = observed(warm, on_standby), observed(cold, fresh)
        assert seen_warm == seen_cold
        assert seen_warm["job_id_matches"] and seen_warm["home_is_tmp"] and seen_warm["pwd_is_cwd"]
        assert seen_warm["name"] == "__main__" and seen_warm["stdin"] == ""


def test_exceptions_and_exit_codes_end_a_standby_job_as_a_fresh_one(engines: tuple[Container, Container]) -> None:
    warm, cold = engines
    run(warm, "python", "probe.py", expect_standby=False)
    failed_warm = run(warm, "python", "probe.py", "raise", expect_standby=True)
    failed_cold = run(cold, "python", "probe.py", "raise", expect_standby=False)
    for job in (failed_warm, failed_cold):
        assert job.status is JobStatus.FAILED and job.exit_code == 1
        assert job.error == "ValueError: boom from the probe"
    traceback_warm = log_texts(warm, failed_warm.id, streams=("stderr",))
    traceback_cold = log_texts(cold, failed_cold.id, streams=("stderr",))
    # The same traceback: the user's frames only, nothing of the standby or of runpy.
    assert _same_frames(traceback_warm, traceback_cold), (traceback_warm, traceback_cold)
    assert not any("standby" in t or "runpy" in t for t in traceback_warm)
    exited = run(warm, "python", "probe.py", "exit=3", expect_standby=True)
    assert exited.status is JobStatus.FAILED and exited.exit_code == 3
    hooked = run(warm, "python", "probe.py", "hook", expect_standby=True)
    assert "custom hook: RuntimeError: handled by the hook" in log_texts(warm, hooked.id, streams=("stderr",))
    # A missing script: Python's own message and exit code 2, not a traceback.
    missing = [run(c, "python", "nowhere.py") for c in (warm, cold)]
    assert [job.exit_code for job in missing] == [2, 2]
    assert not took_standby(warm, missing[0])


def _same_frames(warm: list[str], cold: list[str]) -> bool:
    def frames(lines: list[str]) -> list[str]:
        return [line.split("/")[-1] for line in lines]

    return frames(warm) == frames(cold)


def test_jobs_whose_start_differs_start_fresh_and_the_standby_ends_with_the_engine(tmp_path: Path) -> None:
    container = start(tmp_path, "warm", f"sqlite:///{tmp_path / 'warm.db'}", standby=True)
    try:
        run(container, "python", "probe.py", expect_standby=False)
        wait_for(lambda: _standby_ready(container), what="a standby interpreter", timeout=60)
        # Interpreter options are honoured only by a fresh start.
        optimized = run(container, "python", "-O", "probe.py", expect_standby=False)
        assert optimized.status is JobStatus.COMPLETED
        # A standby that died is dropped: that job starts fresh and a new standby follows.
        dead = current_standby(container)
        assert dead is not None
        psutil.Process(dead.identity.pid).kill()
        dead.popen.wait(timeout=10)
        assert not took_standby(container, run(container, "python", "probe.py"))
        run(container, "python", "probe.py", expect_standby=True)
        wait_for(lambda: _standby_ready(container), what="a standby interpreter", timeout=60)
        standby = current_standby(container)
        assert standby is not None and standby is not dead
        pid = standby.identity.pid
        assert psutil.pid_exists(pid)
    finally:
        close_engine_container(container)
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the standby outlived its engine"
        time.sleep(0.05)
    time.sleep(0.3)  # a standby start scheduled before the close must not bring one back
    assert current_standby(container) is None
