"""The Ray executor: each job is a Ray job, submitted through Ray's Jobs API.

Same port as the local executor. A job becomes one Ray job whose submission id is the
worker_ref's core, so a restarted server re-attaches to it by that id: nothing is lost and
nothing is submitted twice. The entrypoint is ``ray_entry`` (shipped inline), which runs the
job's command with only the allow-listed environment (passed as ``runtime_env.env_vars``) and
marks each output line with its stream; the executor reads the Ray job's log back and splits
it into stdout and stderr. A stop is Ray's ``stop_job``: Ray signals the whole process tree
(SIGTERM, then SIGKILL after its grace) and reports the job STOPPED.

Two ways to give the job its folder:

- ``shared`` (default): the server's work folder is visible at the same path on the Ray nodes
  (a single-box cluster, or a shared volume mounted on every node). The job runs in its folder,
  writes its outputs there and the server registers them as with the local executor; packages
  with requirements build their environment under the shared envs folder through the launcher.
- ``upload``: the job's folder is shipped as ``runtime_env.working_dir``. Outputs written by
  the job stay on the Ray node, so this suits only jobs whose results are not files
  (see docs/scale-out.md); requirements become ``runtime_env.pip``.

The job's command is also told that it runs on Ray: ``MODELOPS_RAY_WORKDIR`` (the mode above),
``MODELOPS_RAY_CLUSTER`` (the address for ``ray.init``) and Ray's own job configuration, so a
``ray.init`` in the job joins this Ray job (``runtime.ray_scoring``; the local executor sets
none of them).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import secrets
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.adapters.executors import ray_entry
from modelops.adapters.executors.environment import job_environment
from modelops.domain.errors import InvalidInput, ModelOpsError
from modelops.ports import ExecutorOutcome, JobSpec, LogBatch
from modelops.runtime import launcher, ray_scoring

log = logging.getLogger(__name__)

_MAX_SIGNAL = 64
_MAX_LINE = 64 * 1024
_SUBMIT_ATTEMPTS = 15
# Lines Ray itself writes into a job's log (its runtime-env setup and the entrypoint echo).
_RAY_OWN_LINE = re.compile(r"^(Running entrypoint for job |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\t[A-Z]+ )")
WORKDIR_MODES = ("shared", "upload")


@dataclass
class _Tracked:
    submission_id: str
    ctl: Path
    stop_requested: bool = False
    stop_delivered: bool = False  # Ray has the stop request
    text: str = ""  # the last log text fetched, and when
    fetched_at: float = 0.0


class RayExecutor:
    def __init__(
        self, *, address: str, root: Path, envs_root: Path, workdir_mode: str = "shared",
        python: str | None = None, uv: str | None = None, log_interval: float = 0.2,
        job_cpus: float | None = None, client: Any = None, request_timeout: float = 30.0,
    ) -> None:
        if workdir_mode not in WORKDIR_MODES:
            raise InvalidInput(f"unknown Ray working-folder mode {workdir_mode!r}: use 'shared' or 'upload'")
        self.address = address
        self.root = root
        self.envs_root = envs_root
        self.workdir_mode = workdir_mode
        # The interpreter on the Ray nodes: the platform's own when the box is shared.
        self.python = python or (sys.executable if workdir_mode == "shared" else "python3")
        self._uv = uv
        self.log_interval = log_interval
        # CPUs each job reserves: Ray then places jobs on any node with room; without it,
        # Ray runs every job's entrypoint on the head node.
        self.job_cpus = job_cpus
        self._client = client
        self._client_lock = threading.Lock()
        # Every call to the Jobs API ends within this: the engine's loop calls poll and
        # stream_logs, and a cluster that accepts connections but never answers must not stall
        # every other job's logs and stops.
        self.request_timeout = request_timeout
        self._tracked: dict[str, _Tracked] = {}
        self._lock = threading.Lock()
        self._wake: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ port

    def subscribe(self, wake: Callable[[], None]) -> None:
        # Ray pushes nothing: the engine's tick polls each job, which is the source of truth.
        self._wake = wake

    def submit(self, spec: JobSpec) -> str:
        submission_id = f"modelops-{spec.job_id}-{secrets.token_hex(6)}"
        ctl = self.root / submission_id
        tmp = ctl / "tmp"
        tmp.mkdir(parents=True)
        shared = self.workdir_mode == "shared"
        python, use_launcher = self._interpreter_for(spec.requirements) if shared else (self.python, False)
        try:
            env = job_environment(
                job_id=spec.job_id, interpreter_dir=Path(python).parent, tmp_dir=tmp, extra=spec.env,
            )
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        runtime_env: dict[str, Any] = {}
        say: list[str] = []
        if shared:
            command = self._shared_command(spec, ctl, python, use_launcher, env)
            if spec.requirements is not None and not use_launcher:
                env["VIRTUAL_ENV"] = str(Path(python).parent.parent)  # as the launcher sets it
                # The launcher reports a build; say so too when a ready environment is reused.
                key = launcher.requirements_key(spec.requirements)
                say.append(f"modelops: environment {key[:12]} is ready (reused)")
        else:
            # The node's own PATH finds its interpreter; the server's folders do not exist there.
            # Nor do its private HOME and TMPDIR: the entry script makes fresh ones on the node.
            for name in ("PATH", "HOME", "TMPDIR"):
                env.pop(name, None)
            command = [self.python if arg == launcher.PYTHON_PLACEHOLDER else arg for arg in spec.argv]
            runtime_env["working_dir"] = str(spec.workdir)
            if spec.requirements is not None:
                runtime_env["pip"] = str(spec.requirements)
        # The job may use the cluster itself (batch prediction scores its chunks as Ray tasks):
        # it is told the folder mode here and, by the entry script, the cluster's address.
        env[ray_scoring.WORKDIR_VARIABLE] = self.workdir_mode
        keep = sorted(env) if shared else [*sorted(env), "PATH"]
        runtime_env["env_vars"] = env
        entry = {"argv": command, "keep": keep, "cwd": str(spec.workdir) if shared else "",
                 "private_tmp": not shared, "say": say, "from_ray": ray_scoring.FROM_RAY}
        placement: dict[str, Any] = {} if self.job_cpus is None else {"entrypoint_num_cpus": self.job_cpus}
        try:
            for attempt in range(_SUBMIT_ATTEMPTS):
                try:
                    self.client.submit_job(
                        entrypoint=_entrypoint(self.python, entry), submission_id=submission_id,
                        runtime_env=runtime_env, metadata={"modelops_job_id": str(spec.job_id)},
                        **placement,
                    )
                    break
                except Exception as exc:
                    if not _answered(exc) and self._accepted(submission_id):
                        break  # Ray took the job but its answer was lost: it runs, so track it
                    # A head that has just started (or lost its agent) refuses jobs for a few
                    # seconds without having created one: the same submission id is retried.
                    if "No available agent" not in str(exc) or attempt == _SUBMIT_ATTEMPTS - 1:
                        raise
                    time.sleep(1.0)
        except Exception as exc:
            shutil.rmtree(ctl, ignore_errors=True)
            raise ModelOpsError(f"the Ray cluster at {self.address} refused the job: {exc}") from exc
        ref = json.dumps({"ray": submission_id, "ctl": str(ctl)})
        with self._lock:
            self._tracked[ref] = _Tracked(submission_id=submission_id, ctl=ctl)
        return ref

    def _accepted(self, submission_id: str) -> bool:
        """After a submit whose answer never came: whether Ray has the job after all (asked a
        few times, as the cluster may be briefly unreachable)."""
        for _attempt in range(5):
            try:
                self.client.get_job_info(submission_id)
                return True
            except Exception as exc:
                if _not_found(exc):
                    return False
                time.sleep(1.0)
        # Still unknown: refuse the job rather than run it untracked. Should Ray have it, the
        # stop below ends it (best effort: the cluster is not answering).
        with contextlib.suppress(Exception):
            self.client.stop_job(submission_id)
        return False

    def poll(self, worker_ref: str) -> ExecutorOutcome | None:
        tracked = self._get(worker_ref)
        if tracked.stop_requested and not tracked.stop_delivered:
            self._deliver_stop(tracked)  # the engine asks only once: retry until Ray has it
        try:
            info = self.client.get_job_info(tracked.submission_id)
        except Exception as exc:
            if _not_found(exc):
                return ExecutorOutcome(
                    exit_code=None, lost=True, cancelled=tracked.stop_requested,
                    detail=f"the Ray cluster no longer knows job {tracked.submission_id}",
                )
            raise  # the cluster is unreachable for now: the engine's next tick asks again
        status = str(getattr(info.status, "value", info.status))
        if status in ("PENDING", "RUNNING"):
            return None
        if status == "STOPPED":
            return ExecutorOutcome(exit_code=None, signal=None, cancelled=True)
        code = info.driver_exit_code
        if status == "SUCCEEDED":
            return ExecutorOutcome(exit_code=0 if code is None else int(code), cancelled=tracked.stop_requested)
        if code is None:  # Ray failed the job before its command ran (e.g. its runtime env)
            message = (info.message or "").strip().splitlines()
            return ExecutorOutcome(
                exit_code=None, lost=not tracked.stop_requested, cancelled=tracked.stop_requested,
                detail=f"Ray could not run the job: {message[0] if message else status}",
            )
        code = int(code)
        if 128 < code <= 128 + _MAX_SIGNAL:
            return ExecutorOutcome(exit_code=None, signal=code - 128, cancelled=tracked.stop_requested)
        if code < 0:
            return ExecutorOutcome(exit_code=None, signal=-code, cancelled=tracked.stop_requested)
        return ExecutorOutcome(exit_code=code, cancelled=tracked.stop_requested)

    def cancel(self, worker_ref: str) -> None:
        tracked = self._get(worker_ref)
        if tracked.stop_requested:
            return
        tracked.stop_requested = True
        self._deliver_stop(tracked)
        self._wake()

    def recover(self, worker_ref: str) -> bool:
        tracked = self._get(worker_ref)
        try:
            status = self.client.get_job_status(tracked.submission_id)
        except Exception as exc:
            if _not_found(exc):
                return False  # poll reports it lost
            # The cluster cannot be reached right now: keep watching, the next polls tell.
            log.warning("Ray job %s: cannot reach the cluster to re-attach: %s", tracked.submission_id, exc)
            return True
        return str(getattr(status, "value", status)) in ("PENDING", "RUNNING")

    def stream_logs(self, worker_ref: str, *, cursor: str | None, final: bool = False) -> LogBatch:
        tracked = self._get(worker_ref)
        position = int(json.loads(cursor)["ray"]) if cursor else 0
        now = time.monotonic()
        if final or now - tracked.fetched_at >= self.log_interval or len(tracked.text) < position:
            # Ray serves the whole log on each read; asking at most every log_interval keeps
            # a busy engine loop from re-reading a long log on every tick.
            try:
                tracked.text = self.client.get_job_logs(tracked.submission_id)
            except Exception as exc:
                if not _not_found(exc):
                    raise
                tracked.text = ""
            tracked.fetched_at = now
        text = tracked.text
        end = text.rfind("\n", position) + 1 if final is False else len(text)
        if end <= position:
            return LogBatch(lines=[], cursor=json.dumps({"ray": position}))
        lines = [_split(raw) for raw in text[position:end].split("\n")]
        if text[position:end].endswith("\n"):
            lines.pop()
        kept = [(stream, piece) for entry in lines if entry is not None
                for stream, line in [entry] for piece in _pieces(line)]
        return LogBatch(lines=kept, cursor=json.dumps({"ray": end}))

    def release(self, worker_ref: str) -> None:
        with self._lock:
            tracked = self._tracked.pop(worker_ref, None)
        data = json.loads(worker_ref)
        try:  # Ray keeps a finished job's record and log until deleted
            self.client.delete_job(data["ray"])
        except Exception:
            log.info("Ray job %s was not deleted", data["ray"], exc_info=True)
        ctl = tracked.ctl if tracked else Path(data["ctl"])
        if ctl.parent == self.root:
            shutil.rmtree(ctl, ignore_errors=True)

    def forget(self, worker_ref: str) -> None:
        with self._lock:
            self._tracked.pop(worker_ref, None)

    def close(self) -> None:
        """Nothing is kept ready between jobs: Ray starts each job's processes itself."""

    # ------------------------------------------------------------------ helpers

    @property
    def client(self) -> Any:
        """Built on first use: a server configured for Ray still starts while Ray is down."""
        with self._client_lock:
            if self._client is None:
                self._client = _timed_client(self.address, self.request_timeout)
            return self._client

    @property
    def uv(self) -> str:
        if self._uv is None:
            from uv import find_uv_bin

            self._uv = find_uv_bin()
        return self._uv

    def _interpreter_for(self, requirements: Path | None) -> tuple[str, bool]:
        if requirements is None:
            return self.python, False
        ready = launcher.ready_python(self.envs_root, launcher.requirements_key(requirements))
        return (str(ready), False) if ready is not None else (self.python, True)

    def _shared_command(
        self, spec: JobSpec, ctl: Path, python: str, use_launcher: bool, env: dict[str, str],
    ) -> list[str]:
        if use_launcher:
            assert spec.requirements is not None
            launch = ctl / "launch.json"
            launch.write_text(json.dumps({
                "argv": spec.argv, "requirements": str(spec.requirements),
                "envs_root": str(self.envs_root), "uv": self.uv, "base_python": self.python,
                "platform_sites": _platform_sites(),
            }))
            return [self.python, "-I", "-S", launcher.__file__, str(launch)]
        try:
            return launcher.resolve_command(spec.argv, Path(python), env["PATH"])
        except FileNotFoundError as exc:
            raise InvalidInput(f"cannot start the job: {exc}") from exc

    def _deliver_stop(self, tracked: _Tracked) -> None:
        try:
            # Returns once Ray has the request; Ray signals the tree and reports STOPPED.
            self.client.stop_job(tracked.submission_id)
            tracked.stop_delivered = True
        except Exception as exc:
            if _not_found(exc):
                tracked.stop_delivered = True  # nothing left to stop; poll reports it
            else:
                log.warning("asking Ray to stop %s failed (retried at the next poll): %s",
                            tracked.submission_id, exc)

    def _get(self, worker_ref: str) -> _Tracked:
        with self._lock:
            tracked = self._tracked.get(worker_ref)
            if tracked is None:  # a ref from before a restart
                data = json.loads(worker_ref)
                tracked = _Tracked(submission_id=data["ray"], ctl=Path(data["ctl"]))
                self._tracked[worker_ref] = tracked
            return tracked


def _entrypoint(python: str, entry: dict[str, Any]) -> str:
    """One shell line: the entry script travels inline, so the nodes need nothing installed."""
    source = base64.b64encode(Path(ray_entry.__file__).read_bytes()).decode()
    program = f"import base64;exec(compile(base64.b64decode('{source}'),'modelops-ray-entry','exec'))"
    return shlex.join([python, "-I", "-S", "-c", program, json.dumps(entry)])


def _split(raw: str) -> tuple[str, str] | None:
    """(stream, text) of one log line; None for Ray's own lines."""
    if raw.startswith(ray_entry.STDOUT_MARK):
        return "stdout", raw[len(ray_entry.STDOUT_MARK):]
    if raw.startswith(ray_entry.STDERR_MARK):
        return "stderr", raw[len(ray_entry.STDERR_MARK):]
    if _RAY_OWN_LINE.match(raw):
        return None
    return "stdout", raw  # e.g. the shell's own complaint when the entry could not start


def _pieces(text: str) -> list[str]:
    # A progress bar rewrites its line with carriage returns: keep what a terminal shows.
    text = text.rstrip("\r").rsplit("\r", 1)[-1]
    return [text[i:i + _MAX_LINE] for i in range(0, max(len(text), 1), _MAX_LINE)]


def _timed_client(address: str, timeout: float) -> Any:
    """Ray's Jobs API client with a timeout on each HTTP request (it has none of its own)."""
    from ray.job_submission import JobSubmissionClient

    class TimedClient(JobSubmissionClient):  # type: ignore[misc]
        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout)
            return super()._do_request(method, endpoint, **kwargs)

    return TimedClient(address)


def _answered(exc: Exception) -> bool:
    """Whether the Jobs API answered (with an error) rather than the request being lost: a
    lost request (no connection, a timeout, a dropped answer) may still have reached Ray."""
    import requests

    return not isinstance(exc, (requests.ConnectionError, requests.Timeout))


def _not_found(exc: Exception) -> bool:
    return "404" in str(exc) or "does not exist" in str(exc) or "not found" in str(exc).lower()


def _platform_sites() -> list[str]:
    import sysconfig

    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))
