"""Standby interpreters for the local executor: one Python started ahead for the next job.

Most of a Python job's start is the interpreter starting. The pool keeps one interpreter of the
platform's environment (``standby.py``) started exactly as a job's process is started — its own
session under the exit-status wrapper, output on log files, the allow-listed environment —
blocked reading its stdin, and hands it a job that it can run exactly as a fresh
``python script.py`` or ``python -m module`` would. Jobs with interpreter options, requirements
or an environment that changes how Python starts go fresh. A new standby is started a moment
after one is taken, on the reaper's thread.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from modelops.adapters.executors.environment import job_environment
from modelops.adapters.executors.processes import ProcessIdentity, identify, is_alive, signal_tree
from modelops.adapters.executors.reaper import Reaper
from modelops.domain.errors import InvalidInput
from modelops.ports import JobSpec
from modelops.runtime import launcher

log = logging.getLogger(__name__)

# "$1" is the exit-status file; the rest is the command, run as a child so the status of a
# signal death is seen too (the shell reports 128 + signal number). Every job process (fresh
# or standby) runs under it.
WRAPPER = 'f=$1; shift; "$@"; rc=$?; echo "$rc" > "$f"; exit "$rc"'
_STANDBY_DELAY = 0.005
_STANDBY_SCRIPT = str(Path(__file__).with_name("standby.py"))
# Variables read while Python starts: a job whose values differ cannot take a standby.
_STARTUP_PREFIXES = ("PYTHON", "LC_", "LANG", "LD_", "MALLOC_", "GLIBC_")


@dataclass
class Standby:
    popen: subprocess.Popen[bytes]
    identity: ProcessIdentity
    ctl: Path
    startup_env: dict[str, str]
    spawn_env: dict[str, str]  # what it was started with: the wrapper's shell adds to it


class StandbyPool:
    def __init__(self, *, root: Path, python: str, reaper: Reaper) -> None:
        self.root = root
        self.python = python
        self._reaper = reaper
        self._lock = threading.Lock()
        self._standby: Standby | None = None
        self._standby_starting = False
        self._closed = False
        self.sweep()

    def close(self) -> None:
        """Let the standby go (it exits on end of input); a later submit starts using
        standbys again."""
        with self._lock:
            self._closed = True
            standby, self._standby = self._standby, None
        if standby is not None:
            _dismiss(standby)

    def take(self, spec: JobSpec) -> Standby | None:
        """Hand the job to the standby interpreter, if it can run it exactly as a fresh one;
        the caller then watches the returned process as the job's. None: start it fresh."""
        argv = spec.argv
        if len(argv) < 2 or argv[0] not in (launcher.PYTHON_PLACEHOLDER, self.python):
            return None
        if argv[1] == "-m":
            if len(argv) < 3 or argv[2].startswith("-"):
                return None
        elif argv[1].startswith("-") or not _plain_script(spec.workdir / argv[1]):
            return None  # options, a folder, a zip app or a missing file: a fresh start handles them
        if any(name.startswith(_STARTUP_PREFIXES) for name in spec.env):
            return None  # it would change how Python starts
        with self._lock:
            standby, self._standby = self._standby, None
        if standby is None:
            return None
        if standby.popen.poll() is not None:  # it died: a new one is started after this job
            _dismiss(standby)
            return None
        try:
            env = job_environment(
                job_id=spec.job_id, interpreter_dir=Path(self.python).parent,
                tmp_dir=standby.ctl / "tmp", extra=spec.env,
            )
        except ValueError as exc:
            self._put_back(standby)
            raise InvalidInput(str(exc)) from exc
        if _startup_part(env) != standby.startup_env:
            self._put_back(standby)
            return None
        rest = [self.python if arg == launcher.PYTHON_PLACEHOLDER else arg for arg in argv[1:]]
        assignment = json.dumps({
            "argv": rest, "env": env, "cwd": str(spec.workdir), "spawn_env": sorted(standby.spawn_env),
        }) + "\n"
        (standby.ctl / "job").write_text(str(spec.job_id))  # the folder is a job's from now on
        try:
            assert standby.popen.stdin is not None
            standby.popen.stdin.write(assignment.encode())
            standby.popen.stdin.close()
        except OSError:  # it died meanwhile: start the job fresh
            _dismiss(standby)
            return None
        return standby

    def _put_back(self, standby: Standby) -> None:
        with self._lock:
            if self._standby is None and not self._closed:
                self._standby, standby = standby, None  # type: ignore[assignment]
        if standby is not None:
            _dismiss(standby)

    def replenish_soon(self) -> None:
        with self._lock:
            self._closed = False
            if self._standby is not None or self._standby_starting:
                return
            self._standby_starting = True
        # A moment's wait: the job that just took the last standby is starting, and a new
        # interpreter starting on the same CPUs would slow it down.
        self._reaper.call_later(_STANDBY_DELAY, self._start_standby)

    def _start_standby(self) -> None:
        standby = None
        try:
            with self._lock:
                closed = self._closed
            if not closed:
                standby = self._spawn_standby()
        except Exception:
            log.exception("could not start a standby interpreter; jobs start fresh")
        if standby is not None:
            self._put_back(standby)
        with self._lock:
            self._standby_starting = False

    def _spawn_standby(self) -> Standby:
        ctl = self.root / f"standby-{secrets.token_hex(4)}"
        tmp = ctl / "tmp"
        tmp.mkdir(parents=True)
        env = job_environment(job_id=0, interpreter_dir=Path(self.python).parent, tmp_dir=tmp, extra={})
        with open(ctl / "stdout.log", "ab") as out, open(ctl / "stderr.log", "ab") as err:
            popen = subprocess.Popen(
                ["/bin/sh", "-c", WRAPPER, "modelops-job", str(ctl / "exit"), self.python, _STANDBY_SCRIPT],
                cwd=tmp, env=env, stdin=subprocess.PIPE, stdout=out, stderr=err,
                start_new_session=True, close_fds=True,
            )
        identity = identify(popen.pid) or ProcessIdentity(popen.pid, time.time())
        # Who holds the folder, so a sweep by another executor on this home spares a live one.
        (ctl / "standby.json").write_text(json.dumps({"pid": identity.pid, "start": identity.create_time}))
        return Standby(popen=popen, identity=identity, ctl=ctl, startup_env=_startup_part(env), spawn_env=env)

    def sweep(self) -> None:
        """Folders of standbys that never got a job and whose process is gone (a server that
        stopped before using them)."""
        if not self.root.is_dir():
            return
        for ctl in self.root.glob("standby-*"):
            if (ctl / "job").exists():
                continue  # a job's folder: released with the job
            try:
                holder = json.loads((ctl / "standby.json").read_text())
                alive = is_alive(ProcessIdentity(int(holder["pid"]), float(holder["start"])))
            except (OSError, ValueError, KeyError):
                alive = False
            if not alive:
                shutil.rmtree(ctl, ignore_errors=True)


def _plain_script(path: Path) -> bool:
    """A regular file that is not a zip application (Python runs those another way)."""
    try:
        with open(path, "rb") as source:
            return path.is_file() and source.read(4) != b"PK\x03\x04"
    except OSError:
        return False


def _startup_part(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(_STARTUP_PREFIXES)}


def _dismiss(standby: Standby) -> None:
    """End a standby that will get no job: end of input makes it exit; its folder goes."""
    try:
        if standby.popen.stdin is not None:
            standby.popen.stdin.close()
    except OSError:
        pass
    try:
        standby.popen.wait(timeout=2)
    except subprocess.TimeoutExpired:
        signal_tree(standby.identity.pid, [], signal.SIGKILL)
        standby.popen.wait()
    shutil.rmtree(standby.ctl, ignore_errors=True)
