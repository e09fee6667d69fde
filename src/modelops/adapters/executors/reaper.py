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
_LINGER = 30.0  # seconds an idle reaper thread waits before it ends


class Reaper:
    def __init__(self, on_exit: Callable[[], None]) -> None:
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._new: list[subprocess.Popen[bytes]] = []
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1  # a pipe while the thread runs

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
                self._wake_r, self._wake_w = os.pipe()
                os.set_blocking(self._wake_w, False)
                self._thread = threading.Thread(target=self._run, daemon=True, name="job-reaper")
                self._thread.start()
            with contextlib.suppress(BlockingIOError):  # the pipe is full of nudges already
                os.write(self._wake_w, b"\0")

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        watched: dict[int, subprocess.Popen[bytes]] = {}
        while True:
            idle = False
            try:
                idle = self._round(poller, watched)
            except Exception:  # this thread must outlive any one child's trouble
                log.exception("job reaper: a round failed")
                time.sleep(0.1)
            if idle and self._retire():
                return

    def _retire(self) -> bool:
        """Nothing to wait for and nothing asked: end the thread (a later ask starts another)."""
        with self._lock:
            if self._new or self._timers:
                return False
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
            self._thread = None
            return True

    def _round(self, poller: select.poll, watched: dict[int, subprocess.Popen[bytes]]) -> bool:
        """Wait for children, nudges and chores once; True if it lingered idle for nothing."""
        with self._lock:
            new, self._new = self._new, []
            due = self._timers[0][0] if self._timers else None
        for popen in new:
            fd = _pidfd(popen)
            if fd is None:  # no pidfds here: a thread of its own waits for it
                threading.Thread(target=self._wait, args=(popen,), daemon=True, name="job-reaper").start()
                continue
            if popen.poll() is not None:  # ended (and reaped) before the pidfd was open
                os.close(fd)
                self._ended()
                continue
            watched[fd] = popen
            poller.register(fd, select.POLLIN)
        # Idle, it lingers a while for the next job before it retires.
        lingering = not watched and due is None
        timeout = _LINGER if lingering else None if due is None else max(0.0, due - time.monotonic())
        events = poller.poll(None if timeout is None else timeout * 1000)
        if lingering and not events:
            return True
        for fd, _mask in events:
            if fd == self._wake_r:
                os.read(self._wake_r, 4096)
                continue
            poller.unregister(fd)
            os.close(fd)
            watched.pop(fd).poll()  # reaps it: its exit status is kept by the Popen
            self._ended()
        self._run_due()
        return False

    def _wait(self, popen: subprocess.Popen[bytes]) -> None:
        popen.wait()
        self._ended()

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


def _pidfd(popen: subprocess.Popen[bytes]) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(popen.pid))
    except OSError:  # already reaped (the pid is gone) or pidfds unsupported by the kernel
        return None
