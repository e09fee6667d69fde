"""The first thing a job run on Ray executes, inside the Ray job (standard library only).

Ray merges a job's stdout and stderr into one log and starts it with the environment of the
Ray node. This small script restores what the local executor gives a job: it runs the job's
command with exactly the allow-listed variables (plus the few of Ray's that tell the job where
its cluster is: ``from_ray``), in the job's folder, and prefixes each output
line with a marker telling its stream, so the executor can split the Ray log back into
stdout and stderr. It exits with the command's status (128 + n for a death by signal n).

It is shipped to the cluster inline (``python -c``), so nothing needs installing on the nodes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any

STDOUT_MARK = "\x1fO "
STDERR_MARK = "\x1fE "
_lock = threading.Lock()


def _emit(mark: str, raw: bytes) -> None:
    # NUL cannot be stored by every database, and the Ray log is read back as text.
    text = raw.decode("utf-8", errors="replace").replace("\x00", "")
    data = (mark + text + "\n").encode("utf-8")
    with _lock:  # one whole line per write, so the streams never interleave mid-line
        while data:
            data = data[os.write(1, data):]


def _pump(fd: int, mark: str) -> None:
    pending = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            _emit(mark, line)
    if pending:
        _emit(mark, pending)
    os.close(fd)


def main(spec_text: str) -> int:
    spec = json.loads(spec_text)
    env = {name: os.environ[name] for name in spec["keep"] if name in os.environ}
    # What Ray tells the entrypoint about its cluster (its address, the Ray job's configuration,
    # how a loopback cluster is reached), under the names the executor gives; nothing else.
    for name, source in spec.get("from_ray", {}).items():
        if source in os.environ:
            env[name] = os.environ[source]
    private = tempfile.mkdtemp(prefix="modelops-job-") if spec.get("private_tmp") else None
    if private is not None:  # the server's folders do not exist on a remote node
        env["HOME"] = env["TMPDIR"] = private
    try:
        return _run(spec, env)
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)


def _run(spec: dict[str, Any], env: dict[str, str]) -> int:
    # A stop signals this script and the command alike; this script waits for the command
    # to end, so the command's last output still reaches the log.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for line in spec.get("say", []):  # notes of the executor, logged as the job's own output
        _emit(STDOUT_MARK, line.encode("utf-8"))
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        child = subprocess.Popen(
            spec["argv"], cwd=spec.get("cwd") or None, env=env, stdin=subprocess.DEVNULL,
            stdout=out_w, stderr=err_w, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL),
        )
    except OSError as exc:
        _emit(STDERR_MARK, f"ERROR: cannot start the job: {exc}".encode())
        return 127
    finally:
        os.close(out_w)
        os.close(err_w)
    pumps = [threading.Thread(target=_pump, args=(fd, mark), daemon=True)
             for fd, mark in ((out_r, STDOUT_MARK), (err_r, STDERR_MARK))]
    for pump in pumps:
        pump.start()
    code = child.wait()
    with contextlib.suppress(OSError):  # the command's leftovers (its process group) end with it
        os.killpg(child.pid, signal.SIGKILL)
    for pump in pumps:
        pump.join(timeout=5)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
