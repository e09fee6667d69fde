"""The job engine: runs every job kind through one loop, in the server, as a background part.

One thread owns the loop: it applies stop requests, claims queued jobs up to the concurrency
limit, tails the logs of running jobs into the database, enforces timeouts and notices ends.
Slow steps (a kind's ``prepare`` materialising inputs, its ``finish`` registering outputs)
run on a small pool so one big package never stalls the logs of the others. Submit and stop
wake the loop at once; otherwise it ticks every ``interval`` seconds.

Invariants: only the status table decides transitions (stores apply them as compare-and-set);
a kind's ``finish`` runs only for a clean exit of a job still ``running`` and never overlaps a
stop (``stop_guard``); a stop always ends ``cancelled``; at start, every job left ``running``
is re-attached or ended, never left running.

Several servers may share one database, each with its engine. A job belongs to the engine that
claimed it (its name is stored with the claim): only that engine watches it, applies its stop
and records its end. Each engine beats a heartbeat; the jobs of an engine silent for longer than
``lost_after`` are adopted by another one (compare-and-set on the owner, so by exactly one),
which re-attaches to their processes if its executor can reach them and otherwise ends them
as lost. A server restarted under the same name takes its jobs back at once.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelops.domain.errors import Conflict, InvalidInput, ModelOpsError
from modelops.domain.jobs import Engine, Job, JobStatus, LogLevel
from modelops.ports import Executor, ExecutorOutcome, JobSpec, UnitOfWorkFactory
from modelops.services.engine_membership import EngineMembership
from modelops.services.job_kinds import JobKindRegistry
from modelops.services.job_records import (
    ENDING,
    ENGINE_ACTOR,
    RUNNING_PHASE,
    ActiveJob,
    JobRecorder,
    command_text,
    now,
)

log = logging.getLogger(__name__)


class JobEngine:
    def __init__(
        self, *, uow: UnitOfWorkFactory, executor: Executor, registry: JobKindRegistry,
        jobs_dir: Path, max_concurrent: int, interval: float = 0.2, name: str = "engine",
        heartbeat: float = 5.0, lost_after: float = 60.0,
        holds_name: Callable[[Engine], bool] | None = None, process_started: float = 0.0,
    ) -> None:
        self.uow = uow
        self.name = name
        self.membership = EngineMembership(
            uow=uow, name=name, heartbeat=heartbeat, lost_after=lost_after, held=self._held_ids,
            let_go=self._let_go, holds_name=holds_name, process_started=process_started,
        )
        self._last_adoption = 0.0
        self.executor = executor
        self.registry = registry
        self.jobs_dir = jobs_dir
        self.max_concurrent = max(1, max_concurrent)
        self.interval = interval
        self._active: dict[int, ActiveJob] = {}
        self._lock = threading.Lock()  # guards _active
        self._stop_lock = threading.Lock()  # a stop request and the start of finish()
        self._finishing: set[int] = set()
        self._claim_lock = threading.Lock()  # one claimer at a time keeps the slot count true
        self._claim_scheduled = False
        # Stops arrive through stop_guard: the loop then scans the database for them at once;
        # otherwise only once per interval, so a burst of submits pays no extra query.
        self._stop_pending = threading.Event()
        self._stop_requested: set[int] = set()
        self._last_stop_scan = 0.0
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.records = JobRecorder(uow=uow, executor=executor)
        executor.subscribe(self._process_ended)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self.membership.register()
        # Beating from now on: however long the recovery below takes, this engine never looks
        # lost to the others while its process lives.
        self.membership.start_heartbeat()
        self._pool = ThreadPoolExecutor(
            max_workers=2 * self.max_concurrent + 2, thread_name_prefix="job-engine"
        )
        self.recover()  # first: every re-attached job holds its slot before anything is claimed
        self._thread = threading.Thread(target=self._run, name="job-engine", daemon=True)
        self._thread.start()

    def stop(self, *, kill_running: bool = False) -> None:
        """Stop the loop. Job processes keep running (a restart re-attaches them) unless
        ``kill_running``, which stops their process trees and waits a little for them."""
        if self._thread is None:
            return
        self._stopping.set()
        self._wakeup.set()
        self._thread.join(timeout=30)
        self._thread = None
        assert self._pool is not None
        # Launches already claimed still start (a restart re-attaches them): cancelling them
        # here would leave claimed jobs with no process, failed as lost at the next start.
        self._pool.shutdown(wait=True)
        self._pool = None
        self.membership.stop_heartbeat()
        if kill_running:
            self._kill_all()
        self.executor.close()

    def wake(self) -> None:
        """A job was queued or a slot freed: let a pool thread claim queued work at once,
        without waiting for the loop to hand it over. The loop itself is left alone, so a
        starting job's process does not share the CPU with a pointless tick."""
        pool = self._pool
        if pool is None or self._stopping.is_set():
            return
        with self._lock:
            if self._claim_scheduled:
                return
            self._claim_scheduled = True
        try:
            pool.submit(self._claim_on_pool)
        except RuntimeError:  # the pool is shutting down with the engine
            with self._lock:
                self._claim_scheduled = False

    def _process_ended(self) -> None:
        self._wakeup.set()  # the loop records the end
        self.wake()  # and its slot can take the next job now

    def _claim_on_pool(self) -> None:
        with self._lock:
            self._claim_scheduled = False
        try:
            self._claim(launch_first_here=True)
        except Exception:
            log.exception("claiming queued jobs failed")

    @contextmanager
    def stop_guard(self, job_id: int) -> Iterator[None]:
        """Held by a stop request around its transition: a job whose results are being
        registered can no longer be stopped, and one being stopped is never registered."""
        with self._stop_lock:
            if job_id in self._finishing:
                raise Conflict(
                    f"job {job_id} has already ended and is registering its results; "
                    "it can no longer be stopped"
                )
            if self._thread is not None:  # an API-only server's engine never runs: nothing to note
                self._stop_requested.add(job_id)
                self._stop_pending.set()
            try:
                yield
            finally:
                self._wakeup.set()  # the loop applies the stop

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.wait(self.interval)
            self._wakeup.clear()
            if self._stopping.is_set():
                break
            try:
                self._tick()
            except Exception:  # the loop must outlive a database hiccup
                log.exception("job engine tick failed")
                self._stopping.wait(1.0)

    def _tick(self) -> None:
        if self.membership.displaced:
            return
        if self._stop_pending.is_set():  # a stop was just asked for: it goes first
            self._scan_stops()
        if time.monotonic() - self._last_adoption >= self.membership.heartbeat:
            self._last_adoption = time.monotonic()
            self._adopt_orphans()
        self._claim()
        if time.monotonic() - self._last_stop_scan >= self.interval:
            self._scan_stops()  # stops this process was not told about
        with self._lock:
            running = [a for a in self._active.values() if a.phase == RUNNING_PHASE]
        for active in running:
            try:
                self._watch(active)
            except Exception:  # one job's trouble must not stall the others' logs and ends
                log.exception("job %s: watching failed", active.job.id)
        if any(active.phase == ENDING for active in running):
            self._claim()  # their slots are free now, before their endings are recorded

    def _scan_stops(self) -> None:
        self._stop_pending.clear()
        self._last_stop_scan = time.monotonic()
        self._apply_stops()

    def _apply_stops(self) -> None:
        with self.uow() as uow:
            stopping = uow.jobs.list(statuses=[JobStatus.CANCELLING], limit=1000)
        with self._lock:
            self._stop_requested.intersection_update(self._active)
        for job in stopping:
            if job.engine is not None and job.engine != self.name:
                continue  # another engine runs it and applies its stop (or adopts it if lost)
            with self._lock:
                active = self._active.get(job.id)
                if active is not None:
                    self._stop_requested.add(job.id)  # also a stop that bypassed stop_guard
            if active is None:
                with self._claim_lock:  # a job being claimed right now is in _active after this
                    with self._lock:
                        active = self._active.get(job.id)
                    if active is None:  # no process of ours: nothing to wait for
                        self.records.end(job.id, JobStatus.CANCELLED, detail={"reason": "no process was running"})
                        continue
                with self._lock:
                    self._stop_requested.add(job.id)
            if active.phase == RUNNING_PHASE and not active.stop_sent:
                assert active.worker_ref is not None
                active.stop_sent = True
                self.records.system_log(job.id, LogLevel.INFO, "stop requested: stopping the job's processes")
                self.executor.cancel(active.worker_ref)

    def _claim(self, *, launch_first_here: bool = False) -> None:
        """Claim queued jobs into free slots and launch them on the pool (the first one in
        this thread if asked: one thread handover less between submit and start)."""
        here: ActiveJob | None = None
        with self._claim_lock:
            while not self._stopping.is_set() and not self.membership.displaced:
                with self._lock:
                    # A job whose process has ended no longer holds a slot while it is recorded.
                    busy = sum(1 for a in self._active.values() if a.phase != ENDING)
                free = self.max_concurrent - busy
                if free <= 0:
                    break
                with self.uow() as uow:
                    jobs = uow.jobs.claim_queued(
                        actor=ENGINE_ACTOR, limit=free, engine=self.name,
                        work_dirs=lambda job_id: str(self.jobs_dir / str(job_id) / "run"),
                    )
                for job in jobs:
                    active = ActiveJob(job=job)
                    with self._lock:
                        self._active[job.id] = active
                    if launch_first_here and here is None:
                        here = active
                    else:
                        assert self._pool is not None
                        self._pool.submit(self._guarded, self._launch, active)
                if len(jobs) < free:
                    break  # the queue is drained: no need to ask again
        if here is not None:
            self._guarded(self._launch, here)

    def _watch(self, active: ActiveJob) -> None:
        assert active.worker_ref is not None
        self.records.pump(active)
        outcome = self.executor.poll(active.worker_ref)
        if outcome is None:
            deadline = active.deadline
            if deadline is not None and time.time() > deadline and not active.stop_sent:
                active.stop_sent = active.timed_out = True
                self.records.system_log(
                    active.job.id, LogLevel.ERROR,
                    f"timed out after {active.job.timeout_seconds:g} s: stopping the job's processes",
                )
                self.executor.cancel(active.worker_ref)
            return
        active.phase = ENDING
        assert self._pool is not None
        self._pool.submit(self._guarded, self._finalize, active, outcome)

    def _guarded(self, step: Any, active: ActiveJob, *args: Any) -> None:
        try:
            step(active, *args)
        except Exception as exc:
            log.exception("job %s: engine step failed", active.job.id)
            self.records.end(active.job.id, JobStatus.FAILED, error=f"internal error in the job engine: {exc}")
            self._forget(active)

    # ------------------------------------------------------------------ steps

    def _launch(self, active: ActiveJob) -> None:
        job = active.job
        workdir = self._workdir(job)
        job_dir = workdir.parent
        shutil.rmtree(job_dir, ignore_errors=True)
        workdir.mkdir(parents=True)
        try:
            handler = self.registry.get(job.kind)
            if handler is None:
                raise InvalidInput(f"no handler is registered for job kind '{job.kind}'")
            prepared = handler.prepare(job, workdir)
            if job.id in self._stop_requested:
                with self.uow() as uow:
                    status = uow.jobs.get(job.id).status
                if status is JobStatus.CANCELLING:  # stopped while its inputs were prepared
                    self.records.end(job.id, JobStatus.CANCELLED,
                                     detail={"reason": "stopped before its process started"})
                    self._forget(active)
                    return
            ref = self.executor.submit(
                JobSpec(
                    job_id=job.id, argv=prepared.argv, env=prepared.env, workdir=workdir,
                    timeout_seconds=job.timeout_seconds, requirements=prepared.requirements,
                )
            )
        except ModelOpsError as exc:
            self.records.end(job.id, JobStatus.FAILED, error=str(exc))
            self._forget(active)
            return
        # Its output is read only once the phase is running, so this line still comes first.
        with self.uow() as uow:
            recorded = uow.jobs.record_worker(job.id, engine=self.name, worker_ref=ref)
            if recorded:
                uow.jobs.append_logs(job.id, [(now(), "system", LogLevel.INFO,
                                               "started: " + command_text(prepared.argv))])
        active.worker_ref = ref
        if not recorded:
            # Another engine took the job over (this one looked lost) and has ended it: the
            # process just started must not run on for a job that is over.
            log.warning("job %s: taken over by another engine while starting; stopping its process", job.id)
            self.executor.cancel(ref)
            deadline = time.monotonic() + 10
            while self.executor.poll(ref) is None and time.monotonic() < deadline:
                time.sleep(0.05)
            self._forget(active)
            return
        active.phase = RUNNING_PHASE

    def _finalize(self, active: ActiveJob, outcome: ExecutorOutcome) -> None:
        """Record how the process ended. ``records.end`` turns any ending into ``cancelled``
        when a stop got there first, so no status needs reading here."""
        job_id = active.job.id
        self.records.pump(active, final=True)
        exit_detail = {"exit_code": outcome.exit_code, "signal": outcome.signal}
        fields = {"exit_code": outcome.exit_code, "signal": outcome.signal}
        if outcome.cancelled and not active.timed_out:
            self.records.end(job_id, JobStatus.CANCELLED, detail=exit_detail, fields=fields)
        elif outcome.timed_out or active.timed_out:
            self.records.end(
                job_id, JobStatus.TIMED_OUT, fields=fields,
                error=f"timed out after {active.job.timeout_seconds:g} s",
                detail={**exit_detail, "timeout_seconds": active.job.timeout_seconds},
            )
        elif outcome.lost:
            self.records.end(job_id, JobStatus.FAILED, error=f"worker lost: {outcome.detail}", fields=fields)
        elif outcome.exit_code == 0 and outcome.signal is None:
            self._complete(active, fields)
        else:
            self.records.end(
                job_id, JobStatus.FAILED, error=self.records.failure_reason(job_id, outcome),
                detail=exit_detail, fields=fields,
            )
        self._forget(active)

    def _complete(self, active: ActiveJob, fields: dict[str, Any]) -> None:
        job = active.job
        with self._stop_lock:
            # Every stop passes stop_guard, which notes the job: without a note no stop was
            # asked for and the status is still running, with no need to read it.
            if job.id in self._stop_requested:
                with self.uow() as uow:
                    status = uow.jobs.get(job.id).status
                if status is not JobStatus.RUNNING:
                    self.records.end(job.id, JobStatus.CANCELLED, detail={"reason": "stopped as it ended"})
                    return
            self._finishing.add(job.id)
        try:
            # Across servers: a stop through another server is refused from this mark on, and
            # one that came first leaves the job not running, so nothing is registered.
            with self.uow() as uow:
                marked = uow.jobs.mark_finishing(job.id)
            if not marked:
                self.records.end(job.id, JobStatus.CANCELLED, detail={"reason": "stopped as it ended"})
                return
            handler = self.registry.get(job.kind)
            result = handler.finish(job, self._workdir(job)) if handler else {}
            self.records.end(job.id, JobStatus.COMPLETED, fields={**fields, "result": result},
                             detail={"exit_code": 0})
        except ModelOpsError as exc:
            self.records.end(job.id, JobStatus.FAILED, error=str(exc), fields=fields)
        except Exception as exc:
            log.exception("job %s: finish failed", job.id)
            self.records.end(job.id, JobStatus.FAILED, fields=fields,
                             error=f"internal error while registering the job's results: {exc}")
        finally:
            with self._stop_lock:
                self._finishing.discard(job.id)

    # ------------------------------------------------------------------ recovery

    def recover(self) -> None:
        """Re-attach to this engine's jobs whose processes survived a server stop; end the others."""
        with self.uow() as uow:
            leftovers = uow.jobs.owned(self.name)
            cursors = {job.id: uow.jobs.log_cursor(job.id) for job in leftovers}
        for job in leftovers:
            self._resume(job, cursors[job.id], why="the server restarted")

    def _resume(self, job: Job, cursor: str | None, *, why: str) -> None:
        """Take a running or stopping job into this engine: re-attach to its process if the
        executor still reaches it, else record how it ended (or that it was lost)."""
        if job.worker_ref is None:
            if job.status is JobStatus.CANCELLING:
                self.records.end(job.id, JobStatus.CANCELLED, detail={"reason": why})
            else:
                self.records.end(job.id, JobStatus.FAILED,
                                 error=f"worker lost: {why} before the job's process started")
            shutil.rmtree(self._workdir(job).parent, ignore_errors=True)
            return
        active = ActiveJob(job=job, phase=RUNNING_PHASE, worker_ref=job.worker_ref, cursor=cursor)
        with self._lock:
            self._active[job.id] = active
            if job.status is JobStatus.CANCELLING:
                self._stop_requested.add(job.id)  # asked before this engine had it
        if self.executor.recover(job.worker_ref):
            self.records.system_log(job.id, LogLevel.WARNING, f"{why}: re-attached to the job's running process")
            return
        outcome = self.executor.poll(job.worker_ref) or ExecutorOutcome(
            exit_code=None, lost=True, detail=f"{why} and the job's process could not be reached",
        )
        active.phase = ENDING
        assert self._pool is not None
        self._pool.submit(self._guarded, self._finalize, active, outcome)

    # ------------------------------------------------------------------ ownership

    def _held_ids(self) -> list[int]:
        with self._lock:
            return list(self._active)

    def _let_go(self, job_id: int) -> None:
        """Stop watching a job another engine has taken: its files are that engine's now."""
        with self._lock:
            active = self._active.pop(job_id, None)
            self._stop_requested.discard(job_id)
        if active is not None and active.worker_ref is not None:
            self.executor.forget(active.worker_ref)
            log.warning("job %s: taken over by another engine; no longer watched here", job_id)

    def _adopt_orphans(self) -> None:
        for job, cursor, previous in self.membership.adopt_orphans():
            why = f"engine {previous!r} stopped answering"
            self.records.system_log(job.id, LogLevel.WARNING, f"{why}: engine {self.name!r} takes the job over")
            try:
                self._resume(job, cursor, why=why)
            except Exception:
                log.exception("job %s: adopting it failed", job.id)

    def _kill_all(self) -> None:
        with self._lock:
            refs = [a.worker_ref for a in self._active.values() if a.worker_ref]
        for ref in refs:
            self.executor.cancel(ref)
        deadline = time.monotonic() + 5
        while refs and time.monotonic() < deadline:
            refs = [ref for ref in refs if self.executor.poll(ref) is None]
            time.sleep(0.05)

    def _workdir(self, job: Job) -> Path:
        return Path(job.work_dir) if job.work_dir else self.jobs_dir / str(job.id) / "run"

    def _forget(self, active: ActiveJob) -> None:
        if active.worker_ref is not None:
            self.executor.release(active.worker_ref)
        shutil.rmtree(self._workdir(active.job).parent, ignore_errors=True)
        with self._lock:
            self._active.pop(active.job.id, None)
            self._stop_requested.discard(active.job.id)
        self.wake()

