"""One thread that reaps the executor's child processes as they exit, and runs its timed chores.

Each child is watched through a pidfd (Linux ≥ 5.3), so one thread waits for all of them; a
thread per child would cost a thread start on every job's launch, and starting a thread means
waiting for it to get the interpreter lock — about 2 ms of each job's start on a busy server.
Other threads hand work over by a queue and a byte on a pipe, which never waits for this thread.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Reaper:
    def __init__(self, on_exit: Callable[[], None]) -> None:
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._new: list[subprocess.Popen[bytes]] = []
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def watch(self, popen: subprocess.Popen[bytes]) -> None:
        """Reap ``popen`` when it exits, then call ``on_exit``."""
        with self._lock:
            self._new.append(popen)
        self._nudge()

    def call_later(self, delay: float, chore: Callable[[], None]) -> None:
        with self._lock:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._order), chore))
        self._nudge()

    def _nudge(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="job-reaper")
                self._thread.start()
        with contextlib.suppress(BlockingIOError):  # the pipe is full of nudges already
            os.write(self._wake_w, b"\0")

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        watched: dict[int, subprocess.Popen[bytes]] = {}
        while True:
            with self._lock:
                new, self._new = self._new, []
                due = self._timers[0][0] if self._timers else None
            for popen in new:
                try:
                    fd = os.pidfd_open(popen.pid)
                except OSError:  # already reaped elsewhere, or no pidfds: poll it now
                    popen.poll()
                    self._ended()
                    continue
                watched[fd] = popen
                poller.register(fd, select.POLLIN)
            timeout = None if due is None else max(0.0, due - time.monotonic()) * 1000
            for fd, _mask in poller.poll(timeout):
                if fd == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                poller.unregister(fd)
                os.close(fd)
                watched.pop(fd).poll()  # reaps it: its exit status is kept by the Popen
                self._ended()
            self._run_due()

    def _run_due(self) -> None:
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > time.monotonic():
                    return
                _, _, chore = heapq.heappop(self._timers)
            try:
                chore()
            except Exception:
                log.exception("executor chore failed")

    def _ended(self) -> None:
        try:
            self._on_exit()
        except Exception:
            log.exception("waking the job engine failed")
