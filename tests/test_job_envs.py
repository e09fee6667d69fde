"""Per-package environments: built inside the job (logged), once per requirements hash, reused.

Requirements point at a wheel written by the test, so no test needs a package index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.jobs.support import (
    ALICE,
    close_engine_container,
    engine_container,
    log_texts,
    make_wheel,
    run_script,
    upload_fixture_package,
    wait_terminal,
)

from modelops.bootstrap import Container
from modelops.domain.jobs import JobStatus


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Container]:
    container = engine_container(tmp_path / "home", f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        yield container
    finally:
        close_engine_container(container)


def envs_of(container: Container) -> list[str]:
    root = container.settings.work_dir / "envs"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


def test_a_package_with_requirements_runs_in_its_own_environment_then_reuses_it(
    engine: Container, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path / "wheels")
    requirements = f"jobdep @ {wheel.as_uri()}\n"
    upload_fixture_package(engine, tmp_path, requirements=requirements)
    sha = hashlib.sha256(requirements.encode()).hexdigest()

    first = wait_terminal(engine, run_script(engine, "which", "jobdep").id, timeout=120)
    assert first.status is JobStatus.COMPLETED, first.error
    env_dir = engine.settings.work_dir / "envs" / sha
    lines = log_texts(engine, first.id)
    assert f"modelops: building environment {sha[:12]} from requirements.txt" in lines
    assert f"jobdep from {env_dir}/lib/python3.11/site-packages/jobdep.py" in lines
    assert f"python {env_dir}/bin/python" in lines
    assert any(line.startswith("numpy ") for line in lines)  # the platform's packages stay importable
    assert envs_of(engine) == [sha]

    second = wait_terminal(engine, run_script(engine, "which", "jobdep").id)
    assert second.status is JobStatus.COMPLETED, second.error
    again = log_texts(engine, second.id)
    assert again[0] == f"modelops: environment {sha[:12]} is ready (reused)"
    assert not any("building" in line for line in again)


def test_two_jobs_needing_the_same_new_environment_build_it_once(engine: Container, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels", value="shared")
    upload_fixture_package(engine, tmp_path, requirements=f"jobdep @ {wheel.as_uri()}\n")
    jobs = [run_script(engine, "which", "jobdep"), run_script(engine, "which", "jobdep")]
    ended = [wait_terminal(engine, job.id, timeout=120) for job in jobs]
    assert [job.status for job in ended] == [JobStatus.COMPLETED] * 2
    builds = [sum(line.startswith("modelops: building environment") for line in log_texts(engine, job.id)) for job in jobs]
    assert sorted(builds) == [0, 1]
    root = engine.settings.work_dir / "envs"
    assert len(envs_of(engine)) == 1
    assert not list(root.glob(".*.build-*"))  # no half-built folder left behind


def test_a_failed_build_fails_the_job_with_the_installer_message_and_leaves_no_env(
    engine: Container, tmp_path: Path
) -> None:
    missing = (tmp_path / "nowhere" / "nothere-1.0-py3-none-any.whl").as_uri()
    upload_fixture_package(engine, tmp_path, requirements=f"nothere @ {missing}\n")
    job = wait_terminal(engine, run_script(engine, "print").id, timeout=120)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.startswith("ERROR: could not build the package's environment: installing requirements.txt failed")
    assert f"Distribution not found at: {missing}" in job.error
    assert "hello from the job" not in log_texts(engine, job.id)
    assert envs_of(engine) == []
    assert not list((engine.settings.work_dir / "envs").glob(".*.build-*"))
    assert engine.jobs.list(principal=ALICE, project="p", statuses=["running"]) == []
