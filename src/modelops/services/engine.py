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
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelops.domain.errors import Conflict, InvalidInput, ModelOpsError
from modelops.domain.jobs import JobStatus, LogLevel
from modelops.ports import Executor, ExecutorOutcome, JobSpec, UnitOfWorkFactory
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
        jobs_dir: Path, max_concurrent: int, interval: float = 0.2,
    ) -> None:
        self.uow = uow
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
        self.recover()  # first: every re-attached job holds its slot before anything is claimed
        self._pool = ThreadPoolExecutor(
            max_workers=2 * self.max_concurrent + 2, thread_name_prefix="job-engine"
        )
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
        if kill_running:
            self._kill_all()

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
        if self._stop_pending.is_set():  # a stop was just asked for: it goes first
            self._scan_stops()
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
            with self._lock:
                active = self._active.get(job.id)
                if active is not None:
                    self._stop_requested.add(job.id)  # also a stop that bypassed stop_guard
            if active is None:
                # No process of ours: nothing to wait for.
                self.records.end(job.id, JobStatus.CANCELLED, detail={"reason": "no process was running"})
            elif active.phase == RUNNING_PHASE and not active.stop_sent:
                assert active.worker_ref is not None
                active.stop_sent = True
                self.records.system_log(job.id, LogLevel.INFO, "stop requested: stopping the job's processes")
                self.executor.cancel(active.worker_ref)

    def _claim(self, *, launch_first_here: bool = False) -> None:
        """Claim queued jobs into free slots and launch them on the pool (the first one in
        this thread if asked: one thread handover less between submit and start)."""
        here: ActiveJob | None = None
        with self._claim_lock:
            while not self._stopping.is_set():
                with self._lock:
                    # A job whose process has ended no longer holds a slot while it is recorded.
                    busy = sum(1 for a in self._active.values() if a.phase != ENDING)
                free = self.max_concurrent - busy
                if free <= 0:
                    break
                with self.uow() as uow:
                    jobs = uow.jobs.claim_queued(actor=ENGINE_ACTOR, limit=free)
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
        job_dir = self.jobs_dir / str(job.id)
        workdir = job_dir / "run"
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
            uow.jobs.update_fields(job.id, {"worker_ref": ref})
            uow.jobs.append_logs(job.id, [(now(), "system", LogLevel.INFO,
                                           "started: " + command_text(prepared.argv))])
        active.worker_ref = ref
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
            handler = self.registry.get(job.kind)
            result = handler.finish(job, self.jobs_dir / str(job.id) / "run") if handler else {}
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
        """Re-attach to jobs whose processes survived a server stop; end the others."""
        with self.uow() as uow:
            leftovers = uow.jobs.list(statuses=[JobStatus.RUNNING, JobStatus.CANCELLING], limit=100_000)
            cursors = {job.id: uow.jobs.log_cursor(job.id) for job in leftovers}
        for job in sorted(leftovers, key=lambda j: j.id):
            if job.worker_ref is None:
                if job.status is JobStatus.CANCELLING:
                    self.records.end(job.id, JobStatus.CANCELLED, detail={"reason": "server restarted"})
                else:
                    self.records.end(
                        job.id, JobStatus.FAILED,
                        error="worker lost: the server stopped before the job's process started",
                    )
                shutil.rmtree(self.jobs_dir / str(job.id), ignore_errors=True)
                continue
            active = ActiveJob(job=job, phase=RUNNING_PHASE, worker_ref=job.worker_ref, cursor=cursors[job.id])
            with self._lock:
                self._active[job.id] = active
                if job.status is JobStatus.CANCELLING:
                    self._stop_requested.add(job.id)  # asked before the restart
            if self.executor.recover(job.worker_ref):
                self.records.system_log(
                    job.id, LogLevel.WARNING,
                    "the server restarted: re-attached to the job's running process",
                )
                continue
            outcome = self.executor.poll(job.worker_ref) or ExecutorOutcome(exit_code=None, lost=True)
            active.phase = ENDING
            self._guarded(self._finalize, active, outcome)

    def _kill_all(self) -> None:
        with self._lock:
            refs = [a.worker_ref for a in self._active.values() if a.worker_ref]
        for ref in refs:
            self.executor.cancel(ref)
        deadline = time.monotonic() + 5
        while refs and time.monotonic() < deadline:
            refs = [ref for ref in refs if self.executor.poll(ref) is None]
            time.sleep(0.05)

    def _forget(self, active: ActiveJob) -> None:
        if active.worker_ref is not None:
            self.executor.release(active.worker_ref)
        shutil.rmtree(self.jobs_dir / str(active.job.id), ignore_errors=True)
        with self._lock:
            self._active.pop(active.job.id, None)
            self._stop_requested.discard(active.job.id)
        self.wake()
