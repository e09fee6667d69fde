"""One job engine among the engines that share a database: its name, its heartbeat, and the
jobs of silent engines it adopts.

Each engine is known by a stable name (one per server process) and proves it lives by a
heartbeat on a thread of its own, so no long work of the engine's loop makes it look lost.
The jobs of an engine silent for ``lost_after`` seconds are adopted by another one, by a
compare-and-set on their owner that re-checks the silence, so by exactly one. Only an engine
whose own heartbeat has run unbroken for ``lost_after`` adopts: after an outage of the database
every heartbeat looks old, and the first engine back must not take the others' jobs.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from modelops.domain.errors import InvalidInput, ModelOpsError
from modelops.domain.jobs import Engine, Job
from modelops.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)


class EngineMembership:
    def __init__(
        self, *, uow: UnitOfWorkFactory, name: str, heartbeat: float, lost_after: float,
        held: Callable[[], list[int]], let_go: Callable[[int], None],
        holds_name: Callable[[Engine], bool] | None = None, process_started: float = 0.0,
    ) -> None:
        if lost_after < 2 * heartbeat:
            raise InvalidInput(
                f"engine_lost_after ({lost_after:g} s) must be at least twice engine_heartbeat "
                f"({heartbeat:g} s): a live engine would otherwise look lost between two beats"
            )
        self.uow = uow
        self.name = name
        self.instance = secrets.token_hex(8)  # this run of the process, under the stable name
        self.heartbeat = heartbeat
        self.lost_after = lost_after
        self._held = held  # the ids of the jobs the engine watches
        self._let_go = let_go  # stop watching one (another engine has it now)
        # Whether the process an engine record names is still that engine, on this host
        # (bootstrap passes a check by pid and process start time).
        self._holds_name = holds_name or (lambda _engine: True)
        self._process_started = process_started  # this process's start time, recorded with it
        self.displaced = False  # another process took this name: claim and watch nothing more
        self._beating_since: float | None = None  # the heartbeat's current unbroken run
        self._heart: threading.Thread | None = None
        self._heart_stop = threading.Event()

    # ------------------------------------------------------------------ name and heartbeat

    def register(self) -> None:
        """Record this engine under its name, refusing a name a live process still holds."""
        host, pid = socket.gethostname(), os.getpid()
        with self.uow() as uow:  # check and record in one transaction, on the locked row
            before = uow.jobs.lock_engine(self.name)
            if before is not None and self._held_elsewhere(before, host, pid):
                raise ModelOpsError(
                    f"the job engine name {self.name!r} is held by process {before.pid} on "
                    f"{before.host} (last heartbeat {before.silent_seconds or 0:.0f} s ago): give each "
                    "server its own MODELOPS_ENGINE_NAME (or home), or wait until that one has stopped"
                )
            uow.jobs.register_engine(name=self.name, instance=self.instance, host=host, pid=pid,
                                     process_started=self._process_started)
        self.displaced = False
        self._beating_since = time.monotonic()

    def _held_elsewhere(self, before: Engine, host: str, pid: int) -> bool:
        if before.silent_seconds is not None and before.silent_seconds >= self.lost_after:
            return False  # silent long enough to be lost: its jobs are up for adoption anyway
        if before.host != host:
            return True  # another machine's engine beat recently: it cannot be checked from here
        if before.pid == pid:
            return False  # this process, or a dead one whose pid it now has (a restarted container)
        return self._holds_name(before)

    def start_heartbeat(self) -> None:
        self._heart_stop.clear()
        self._heart = threading.Thread(target=self._beat_on, name="job-engine-heartbeat", daemon=True)
        self._heart.start()

    def stop_heartbeat(self) -> None:
        self._heart_stop.set()
        if self._heart is not None:
            self._heart.join(timeout=30)
            self._heart = None

    def _beat_on(self) -> None:
        while not self._heart_stop.wait(self.heartbeat):
            try:
                self.beat()
            except Exception:  # the database is unreachable: the run of beats is broken
                log.exception("job engine %r: heartbeat failed", self.name)
                self._beating_since = None

    def beat(self) -> None:
        """One heartbeat; lets go of the jobs another engine adopted meanwhile."""
        held = self._held()
        with self.uow() as uow:
            alive = uow.jobs.beat(name=self.name, instance=self.instance)
            mine = uow.jobs.still_owned(self.name, held) if alive else set()
        if not alive:
            if not self.displaced:
                log.error("job engine %r: another process has taken this engine's name; this one "
                          "stops claiming and watching jobs", self.name)
            self.displaced = True
            self._beating_since = None
        elif self._beating_since is None:
            self._beating_since = time.monotonic()
        for job_id in held:
            if job_id not in mine:  # adopted by another engine while this one was cut off
                self._let_go(job_id)

    # ------------------------------------------------------------------ adoption

    def adopt_orphans(self) -> list[tuple[Job, str | None, str]]:
        """Take over the running jobs of silent engines: each as (job, its log cursor, the
        engine it came from), for the engine to re-attach or end."""
        since = self._beating_since
        if since is None or time.monotonic() - since < self.lost_after:
            return []
        with self.uow() as uow:
            orphans = uow.jobs.orphaned(engine=self.name, lost_after=self.lost_after)
            uow.jobs.forget_engines(silent_for=max(24 * 3600.0, 10 * self.lost_after))
        adopted = []
        for orphan in orphans:
            assert orphan.engine is not None
            with self.uow() as uow:
                job = uow.jobs.adopt(orphan.id, from_engine=orphan.engine, to_engine=self.name,
                                     lost_after=self.lost_after)
                cursor = uow.jobs.log_cursor(orphan.id) if job is not None else None
            if job is not None:  # else another engine took it first, or its engine is back
                adopted.append((job, cursor, orphan.engine))
        return adopted
