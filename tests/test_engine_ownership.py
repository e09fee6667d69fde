"""Job ownership among engines sharing one database, in one process (SQLite and PostgreSQL).

The production-shape test runs whole servers; these drive two engines directly to reach the
corners: a stop refused once results are being registered (whatever engine holds the job), a
job claimed before engines had names, and an engine that was silent, lost its job to another
engine, and must let it go without touching its files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.jobs.support import (
    ALICE,
    close_engine_container,
    engine_container,
    log_texts,
    run_script,
    upload_fixture_package,
    wait_for,
    wait_terminal,
)

from modelops.bootstrap import Container
from modelops.domain.errors import Conflict
from modelops.domain.jobs import JobStatus

# Short enough for a test, long enough that a loaded machine never makes a live engine look lost.
FAST = {"engine_heartbeat": 0.2, "engine_lost_after": 2.5}


@pytest.fixture
def pair(tmp_path: Path, database_url: str) -> Iterator[tuple[Container, Container]]:
    first = engine_container(tmp_path / "a", database_url, **FAST)
    second = engine_container(tmp_path / "b", database_url, **FAST)
    try:
        upload_fixture_package(first, tmp_path)
        yield first, second
    finally:
        close_engine_container(first)
        close_engine_container(second)


def test_a_job_registering_its_results_refuses_a_stop_through_any_server(
    tmp_path: Path, database_url: str
) -> None:
    container = engine_container(tmp_path / "a", database_url)
    container.job_engine.stop()  # no engine: the test plays its part by hand
    try:
        upload_fixture_package(container, tmp_path)
        job = run_script(container, "print")
        with container.uow() as uow:
            (claimed,) = uow.jobs.claim_queued(actor="engine", limit=1, engine="elsewhere")
            assert claimed.id == job.id and claimed.engine == "elsewhere"
            assert uow.jobs.mark_finishing(job.id)
        with pytest.raises(Conflict, match="registering its results"):
            container.jobs.stop(principal=ALICE, job_id=job.id)
        after = container.jobs.get(principal=ALICE, job_id=job.id)
        assert after.status is JobStatus.RUNNING and after.finishing
        assert [e.to_status for e in container.jobs.events(principal=ALICE, job_id=job.id)][-1] is JobStatus.RUNNING
        # And the other way round: a job stopped first can no longer be marked.
        second = run_script(container, "print")
        with container.uow() as uow:
            uow.jobs.claim_queued(actor="engine", limit=1, engine="elsewhere")
        container.jobs.stop(principal=ALICE, job_id=second.id)
        with container.uow() as uow:
            assert not uow.jobs.mark_finishing(second.id)
    finally:
        container.close()


def test_a_job_claimed_before_engines_had_names_is_taken_by_one_engine(
    tmp_path: Path, database_url: str
) -> None:
    container = engine_container(tmp_path / "a", database_url)
    container.job_engine.stop()
    try:
        upload_fixture_package(container, tmp_path)
        job = run_script(container, "print")
        with container.uow() as uow:
            uow.jobs.claim_queued(actor="engine", limit=1, engine=None)  # as an older server did
            assert uow.jobs.get(job.id).engine is None
        container.job_engine.start()  # it has no process to re-attach to: ended as lost
        ended = wait_terminal(container, job.id)
        assert ended.status is JobStatus.FAILED and ended.error is not None
        assert ended.error.startswith("worker lost")
        assert ended.engine == container.job_engine.name
    finally:
        close_engine_container(container)


def test_a_silent_engine_lets_go_of_an_adopted_job_without_touching_its_files(
    pair: tuple[Container, Container],
) -> None:
    first, second = pair
    job = run_script(first, "sleep", "4")
    wait_for(lambda: first.jobs.get(principal=ALICE, job_id=job.id).engine is not None, what="a claim")
    owner, other = (first, second) if first.jobs.get(principal=ALICE, job_id=job.id).engine == first.job_engine.name \
        else (second, first)
    try:
        wait_for(lambda: "sleeping" in log_texts(owner, job.id), what="the job's first line", timeout=30)
    except AssertionError:
        raise AssertionError(describe(owner, job.id)) from None
    # The owner freezes: its loop and its heartbeat stop (its job's process lives on). Stopping
    # only the heartbeat would leave its loop reading the job's output beside the adopter's.
    owner.job_engine.stop()
    wait_for(lambda: owner.jobs.get(principal=ALICE, job_id=job.id).engine == other.job_engine.name,
             what="the other engine to adopt the job", timeout=30)
    owner.job_engine.membership.beat()  # the silent engine beats again and finds the job gone
    ended = wait_terminal(other, job.id, timeout=60)
    assert ended.status is JobStatus.COMPLETED, describe(other, job.id)
    texts = log_texts(other, job.id, streams=("stdout", "stderr", "system"))
    assert any("takes the job over" in t for t in texts) and any("re-attached" in t for t in texts)
    assert "woke up" in texts  # its last line, read from the files the first engine kept
    assert texts.count("woke up") == 1


def describe(container: Container, job_id: int) -> str:
    job = container.jobs.get(principal=ALICE, job_id=job_id)
    events = [(e.from_status, e.to_status, e.detail) for e in container.jobs.events(principal=ALICE, job_id=job_id)]
    lines = log_texts(container, job_id, streams=("stdout", "stderr", "system"))
    return f"{job}\nevents: {events}\nlogs: {lines}"
