"""The local executor: each job is a subprocess tree on this machine.

Each job's process runs in its own session (so its own process group), in its working
directory, with an allow-listed environment. Its stdout and stderr go to files, not pipes:
the job neither blocks nor dies when the server does, and a restarted server reads on from
the offsets stored with the logs. A tiny ``sh`` wrapper is the group leader; it waits for the
command and writes its exit status to a file, so the real exit of a job re-attached after a
restart is known even though the new server is not its parent. ``sh`` costs about a
millisecond, where a second Python start would cost tens.

Jobs with requirements whose environment is not built yet start through the stdlib launcher
(``modelops.runtime.launcher``), which builds the environment inside the job's process (so the
build is in the job's logs, can be stopped and timed out) and then execs the command.

A Python job on the platform's interpreter (``python script.py …`` or ``python -m module …``)
usually starts on a standby interpreter (``standby.py``): one started ahead, the same way and
under the same wrapper as a job's process, waiting for its job on stdin. The interpreter's start
(most of a job's start-up) is then paid before the job is submitted; a new standby is started in
the background for the next job. Any other command, and any job whose environment would change
how Python starts (``PYTHON*``, locale variables), starts fresh. ``standby=False`` turns it off.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelops.adapters.executors import log_files
from modelops.adapters.executors.environment import job_environment
from modelops.adapters.executors.processes import (
    ProcessIdentity,
    descendants,
    identify,
    is_alive,
    signal_tree,
)
from modelops.adapters.executors.reaper import Reaper
from modelops.adapters.executors.standby_pool import WRAPPER, StandbyPool
from modelops.domain.errors import InvalidInput
from modelops.ports import ExecutorOutcome, JobSpec, LogBatch
from modelops.runtime import launcher

log = logging.getLogger(__name__)

_MAX_SIGNAL = 64


@dataclass
class _Watched:
    identity: ProcessIdentity
    ctl: Path
    popen: subprocess.Popen[bytes] | None = None  # None for a job re-attached after a restart
    stop_requested_at: float | None = None
    killed: bool = False
    members: list[ProcessIdentity] = field(default_factory=list)


class LocalExecutor:
    def __init__(
        self, *, root: Path, envs_root: Path, python: str | None = None, kill_grace: float = 0.5,
        uv: str | None = None, standby: bool = True,
    ) -> None:
        self.root = root
        self.envs_root = envs_root
        self.python = python or sys.executable
        self.kill_grace = kill_grace
        self._uv = uv
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()
        self._wake: Callable[[], None] = lambda: None
        self._reaper = Reaper(on_exit=lambda: self._wake())
        self._standbys = StandbyPool(root=root, python=self.python, reaper=self._reaper) if standby else None

    # ------------------------------------------------------------------ port

    def subscribe(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def submit(self, spec: JobSpec) -> str:
        if spec.requirements is None and self._standbys is not None:
            taken = self._standbys.take(spec)
            self._standbys.replenish_soon()
            if taken is not None:
                return self._watch(taken.popen, taken.identity, taken.ctl)
        ctl = self.root / f"{spec.job_id}-{secrets.token_hex(4)}"
        tmp = ctl / "tmp"
        tmp.mkdir(parents=True)
        python, use_launcher = self._interpreter_for(spec.requirements)
        try:
            env = job_environment(
                job_id=spec.job_id, interpreter_dir=Path(python).parent, tmp_dir=tmp,
                extra=spec.env,
            )
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        if spec.requirements is not None and not use_launcher:
            env["VIRTUAL_ENV"] = str(Path(python).parent.parent)  # as the launcher sets it
        if use_launcher:
            assert spec.requirements is not None
            launch = ctl / "launch.json"
            launch.write_text(json.dumps({
                "argv": spec.argv, "requirements": str(spec.requirements),
                "envs_root": str(self.envs_root), "uv": self.uv, "base_python": self.python,
                "platform_sites": _platform_sites(),
            }))
            command = [self.python, "-I", "-S", launcher.__file__, str(launch)]
        else:
            try:
                command = launcher.resolve_command(spec.argv, Path(python), env["PATH"])
            except FileNotFoundError as exc:
                raise InvalidInput(f"cannot start the job: {exc}") from exc
        with open(ctl / "stdout.log", "ab") as out, open(ctl / "stderr.log", "ab") as err:
            if spec.requirements is not None and not use_launcher:
                # The launcher reports a build; say so too when a ready environment is reused.
                key = launcher.requirements_key(spec.requirements)
                out.write(f"modelops: environment {key[:12]} is ready (reused)\n".encode())
                out.flush()
            popen = subprocess.Popen(
                ["/bin/sh", "-c", WRAPPER, "modelops-job", str(ctl / "exit"), *command],
                cwd=spec.workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True, close_fds=True,
            )
        # The child is at worst a zombie until the reaper below waits, so its start time is
        # still readable here.
        identity = identify(popen.pid) or ProcessIdentity(popen.pid, time.time())
        return self._watch(popen, identity, ctl)

    def _watch(self, popen: subprocess.Popen[bytes], identity: ProcessIdentity, ctl: Path) -> str:
        ref = json.dumps({"pid": identity.pid, "start": identity.create_time, "ctl": str(ctl)})
        with self._lock:
            self._watched[ref] = _Watched(identity=identity, ctl=ctl, popen=popen)
        self._reaper.watch(popen)
        return ref

    def close(self) -> None:
        """Let the standby interpreter go. Jobs are not touched."""
        if self._standbys is not None:
            self._standbys.close()

    def forget(self, worker_ref: str) -> None:
        with self._lock:
            self._watched.pop(worker_ref, None)

    def poll(self, worker_ref: str) -> ExecutorOutcome | None:
        watched = self._get(worker_ref)
        if watched.popen is not None:
            code = watched.popen.poll()
            if code is None:
                self._escalate(watched)
                return None
            # Reaped by us just now: its process group can only hold its own leftovers.
            signal_tree(watched.identity.pid, watched.members, signal.SIGKILL)
            return self._outcome(watched, wrapper_code=code)
        if is_alive(watched.identity):
            self._escalate(watched)
            return None
        # Not our child: its process group number may be reused by now, so only the members
        # recorded (and verified by start time) are killed.
        signal_tree(None, watched.members, signal.SIGKILL)
        return self._outcome(watched, wrapper_code=None)

    def cancel(self, worker_ref: str) -> None:
        watched = self._get(worker_ref)
        if watched.stop_requested_at is not None:
            return
        watched.stop_requested_at = time.monotonic()
        if is_alive(watched.identity):
            watched.members = _merge(watched.members, descendants(watched.identity))
            signal_tree(watched.identity.pid, watched.members, signal.SIGTERM)
        self._wake()

    def recover(self, worker_ref: str) -> bool:
        watched = self._get(worker_ref)
        if not is_alive(watched.identity):
            return False
        watched.members = descendants(watched.identity)
        return True

    def stream_logs(self, worker_ref: str, *, cursor: str | None, final: bool = False) -> LogBatch:
        watched = self._get(worker_ref)
        offsets = log_files.parse_cursor(cursor)
        lines: list[tuple[str, str]] = []
        more = False
        for stream in log_files.STREAMS:
            texts, offsets[stream], partial = log_files.read_stream(
                watched.ctl / f"{stream}.log", offsets[stream], final=final
            )
            lines.extend((stream, text) for text in texts)
            more = more or partial
        return LogBatch(lines=lines, cursor=log_files.dump_cursor(offsets), more=more)

    def release(self, worker_ref: str) -> None:
        with self._lock:
            watched = self._watched.pop(worker_ref, None)
        ctl = watched.ctl if watched else Path(json.loads(worker_ref)["ctl"])
        if ctl.parent == self.root:
            shutil.rmtree(ctl, ignore_errors=True)

    # ------------------------------------------------------------------ helpers

    @property
    def uv(self) -> str:
        if self._uv is None:
            from uv import find_uv_bin

            self._uv = find_uv_bin()
        return self._uv

    def _interpreter_for(self, requirements: Path | None) -> tuple[str, bool]:
        """(interpreter, needs the launcher): a built environment is used directly."""
        if requirements is None:
            return self.python, False
        ready = launcher.ready_python(self.envs_root, launcher.requirements_key(requirements))
        if ready is not None:
            return str(ready), False
        return self.python, True

    def _get(self, worker_ref: str) -> _Watched:
        with self._lock:
            watched = self._watched.get(worker_ref)
            if watched is None:
                data = json.loads(worker_ref)
                watched = _Watched(
                    identity=ProcessIdentity(int(data["pid"]), float(data["start"])),
                    ctl=Path(data["ctl"]),
                )
                self._watched[worker_ref] = watched
            return watched

    def _escalate(self, watched: _Watched) -> None:
        """After the grace period of a stop, kill whatever of the tree is left."""
        if watched.stop_requested_at is None or watched.killed:
            return
        if time.monotonic() - watched.stop_requested_at >= self.kill_grace:
            watched.members = _merge(watched.members, descendants(watched.identity))
            signal_tree(watched.identity.pid, watched.members, signal.SIGKILL)
            watched.killed = True

    def _outcome(self, watched: _Watched, *, wrapper_code: int | None) -> ExecutorOutcome:
        cancelled = watched.stop_requested_at is not None
        recorded = _read_exit(watched.ctl / "exit")
        if recorded is not None:
            if 128 < recorded <= 128 + _MAX_SIGNAL:
                return ExecutorOutcome(exit_code=None, signal=recorded - 128, cancelled=cancelled)
            return ExecutorOutcome(exit_code=recorded, cancelled=cancelled)
        if wrapper_code is not None and wrapper_code < 0:
            # The wrapper itself was signalled (a stop, or a kill of the whole group).
            return ExecutorOutcome(exit_code=None, signal=-wrapper_code, cancelled=cancelled)
        if cancelled:
            return ExecutorOutcome(exit_code=None, cancelled=True)
        return ExecutorOutcome(
            exit_code=None, lost=True,
            detail="the job's process ended while the server was down, without recording "
            "its exit status",
        )


def _merge(known: list[ProcessIdentity], found: list[ProcessIdentity]) -> list[ProcessIdentity]:
    return list(dict.fromkeys([*known, *found]))


def _read_exit(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _platform_sites() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))
