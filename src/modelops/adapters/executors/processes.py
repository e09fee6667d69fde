"""Process identity and process-tree signalling for the local executor.

A pid alone is not an identity: after a restart the pid on record may belong to a new
process. A process is the one we started only if its start time matches the recorded one.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass

import psutil

from modelops.domain.jobs import Engine

# psutil derives start times from boot time and clock ticks: equal for one process, but
# compare with a little slack rather than exactly.
_START_TIME_SLACK = 0.05


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    create_time: float


def identify(pid: int) -> ProcessIdentity | None:
    try:
        return ProcessIdentity(pid=pid, create_time=psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_alive(identity: ProcessIdentity) -> bool:
    """True if this very process still runs (a zombie has ended, a reused pid is another)."""
    try:
        process = psutil.Process(identity.pid)
        if abs(process.create_time() - identity.create_time) > _START_TIME_SLACK:
            return False
        return process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def descendants(identity: ProcessIdentity) -> list[ProcessIdentity]:
    """Every live descendant, recorded so that processes which leave the job's process group
    (setsid, daemonising) can still be signalled after their parent is gone."""
    if not is_alive(identity):
        return []
    try:
        children = psutil.Process(identity.pid).children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
    found = []
    for child in children:
        try:
            found.append(ProcessIdentity(pid=child.pid, create_time=child.create_time()))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def signal_tree(
    group_leader: int | None, members: list[ProcessIdentity], sig: signal.Signals
) -> None:
    """Signal the job's process group (if known to be ours) and every recorded member alive."""
    if group_leader is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group_leader, sig)
    for member in members:
        if is_alive(member):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member.pid, sig)


def this_process_started() -> float:
    return float(psutil.Process().create_time())


def engine_process_alive(engine: Engine) -> bool:
    """Whether the process an engine record names is still running on this machine (the same
    process: same pid and start time)."""
    return is_alive(ProcessIdentity(pid=engine.pid, create_time=engine.process_started))
