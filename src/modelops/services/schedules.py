"""Cron schedules with a time zone, and the background loop that fires due schedules.

Shared by every scheduler of the platform. The firing rule is the pipeline scheduler's: a
schedule row holds its next firing time; firing it is one transaction that moves that time
forward by compare-and-set and inserts the run under a unique (owner, scheduled time) key.
Two schedulers on one database therefore fire a time once; a server that was down fires the
missed time once when it is back, then continues from the present (missed ticks coalesce).

Cron times are wall-clock times in the schedule's zone: ``0 3 * * *`` in ``Europe/Paris`` is
03:00 in Paris all year. A wall-clock time fires once even when a DST change repeats it, and a
time skipped by a DST jump fires once, shifted by the jump (02:30 → 03:30).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from modelops.domain.errors import InvalidInput

log = logging.getLogger(__name__)
MAX_UPCOMING = 100


def check_cron(expression: str) -> str:
    text = " ".join(str(expression or "").split())
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise InvalidInput(
            f"invalid cron expression {expression!r}: use five fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'"
        )
    return text


def zone(name: str | None) -> ZoneInfo:
    text = (name or "UTC").strip() or "UTC"
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {name!r}: use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None


def next_fire_time(expression: str, timezone: str | None, after: datetime) -> datetime:
    """The first firing strictly after ``after``, in UTC."""
    tz = zone(timezone)
    expression = check_cron(expression)
    # Iterate on the naive wall clock, so a repeated hour does not fire twice.
    wall = after.astimezone(tz).replace(tzinfo=None)
    times = croniter(expression, wall)
    while True:
        candidate: datetime = times.get_next(datetime)
        # fold=0: the first of a repeated wall-clock time; a skipped one lands after the jump.
        fired = candidate.replace(tzinfo=tz).astimezone(UTC)
        if fired > after:
            return fired


def upcoming(expression: str, timezone: str | None, *, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` firings after ``after`` (UTC)."""
    if not 1 <= count <= MAX_UPCOMING:
        raise InvalidInput(f"count must be between 1 and {MAX_UPCOMING}")
    found: list[datetime] = []
    moment = after
    for _ in range(count):
        moment = next_fire_time(expression, timezone, moment)
        found.append(moment)
    return found


def following(expression: str, timezone: str | None, *, fired: datetime, now: datetime) -> datetime:
    """After firing for ``fired`` at ``now``: the next time, counted from the present so that
    every time missed while the server was down collapses into the one just fired."""
    return next_fire_time(expression, timezone, max(fired, now))


class ScheduleLoop:
    """A background part of the server that calls ``tick`` every ``interval`` seconds; a
    failing tick (a database hiccup) is logged and the loop goes on."""

    name = "scheduler"

    def __init__(self, *, interval: float = 1.0, clock: Callable[[], datetime] | None = None) -> None:
        self.interval = interval
        self.clock = clock or (lambda: datetime.now(UTC))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: datetime | None = None) -> object:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("%s tick failed", self.name)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        # A first tick at once: a restarted server fires what it missed without waiting.
        self._thread = threading.Thread(target=self._first_then_loop, name=self.name, daemon=True)
        self._thread.start()

    def _first_then_loop(self) -> None:
        try:
            self.tick()
        except Exception:
            log.exception("%s tick failed", self.name)
        self._loop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
