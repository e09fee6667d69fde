"""The SQL job store on SQLite and PostgreSQL: durable queue, compare-and-set, events, logs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fixtures.jobs.support import (
    ALICE,
    close_engine_container,
    engine_container,
    upload_fixture_package,
    wait_terminal,
)

from modelops.bootstrap import Container, build_container
from modelops.domain.errors import InvalidTransition, NotFound
from modelops.domain.jobs import JobKind, JobStatus, LogLevel
from modelops.settings import Settings


def _add_job(container: Container) -> int:
    with container.uow() as uow:
        project = uow.projects.add(name="p", description="", actor="alice")
        job = uow.jobs.add(
            project_id=project.id, kind=JobKind.SCRIPT, actor="alice", parameters={"x": 1},
            target_type=None, target_id=None, timeout_seconds=None,
        )
    return job.id


def test_a_new_job_is_queued_with_its_created_and_queued_events(container: Container) -> None:
    job_id = _add_job(container)
    with container.uow() as uow:
        job = uow.jobs.get(job_id)
        events = uow.jobs.events(job_id)
    assert job.status is JobStatus.QUEUED and job.queued_at is not None
    assert job.actor == "alice" and job.parameters == {"x": 1}
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, JobStatus.CREATED), (JobStatus.CREATED, JobStatus.QUEUED)
    ]
    with container.uow() as uow:
        assert uow.jobs.event(job_id, events[0].id).detail == {"kind": "script"}
        with pytest.raises(NotFound):
            uow.jobs.event(job_id + 1000, events[0].id)


def test_racing_transitions_have_exactly_one_winner(container: Container) -> None:
    job_id = _add_job(container)
    with container.uow() as uow:
        uow.jobs.transition(job_id, JobStatus.RUNNING, actor="engine")
    results: list[str] = []
    barrier = threading.Barrier(12)

    def stop() -> None:
        barrier.wait()
        try:
            with container.uow() as uow:
                uow.jobs.transition(job_id, JobStatus.CANCELLING, actor="alice")
            results.append("won")
        except InvalidTransition:
            results.append("lost")

    threads = [threading.Thread(target=stop) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["lost"] * 11 + ["won"]
    with container.uow() as uow:
        cancelling = [e for e in uow.jobs.events(job_id) if e.to_status is JobStatus.CANCELLING]
    assert len(cancelling) == 1


def test_a_terminal_job_refuses_every_transition_with_the_allowed_list(container: Container) -> None:
    job_id = _add_job(container)
    with container.uow() as uow:
        uow.jobs.transition(job_id, JobStatus.RUNNING, actor="engine")
        uow.jobs.transition(job_id, JobStatus.COMPLETED, actor="engine")
    with container.uow() as uow, pytest.raises(InvalidTransition, match="none \\(terminal\\)"):
        uow.jobs.transition(job_id, JobStatus.CANCELLING, actor="alice")


def test_log_lines_are_numbered_in_order_and_the_cursor_moves_with_them(container: Container) -> None:
    job_id = _add_job(container)
    now = datetime.now(UTC)
    with container.uow() as uow:
        uow.jobs.append_logs(job_id, [(now, "stdout", LogLevel.INFO, "a"),
                                      (now, "stderr", LogLevel.ERROR, "ValueError: x")], cursor="c1")
        uow.jobs.append_logs(job_id, [(now, "stdout", LogLevel.WARNING, "w")], cursor="c2")
        uow.jobs.append_logs(job_id, [(now, "system", LogLevel.INFO, "note")])  # keeps the cursor
    with container.uow() as uow:
        lines = uow.jobs.logs(job_id)
        assert [(line.seq, line.text) for line in lines] == [(1, "a"), (2, "ValueError: x"), (3, "w"), (4, "note")]
        assert [line.text for line in uow.jobs.logs(job_id, min_level=LogLevel.WARNING)] == ["ValueError: x", "w"]
        assert [line.seq for line in uow.jobs.logs(job_id, after_seq=2)] == [3, 4]
        assert uow.jobs.log_cursor(job_id) == "c2"
        assert uow.jobs.last_error(job_id) == "ValueError: x"


def test_a_restart_loses_no_queued_job(tmp_path: Path, database_url: str) -> None:
    home = tmp_path / "home"
    first = build_container(Settings(home=home, database_url=database_url))
    upload_fixture_package(first, tmp_path)
    job = first.jobs.submit(principal=ALICE, project="p", kind="script",
                            parameters={"package": "pkg", "version": "1.0", "command": ["python", "job.py"]})
    first.close()  # the engine never ran: the job exists only in the database

    second = engine_container(home, database_url)
    try:
        ended = wait_terminal(second, job.id)
    finally:
        close_engine_container(second)
    assert ended.status is JobStatus.COMPLETED
