"""Reading a job's output files by byte offset: the offsets are the log cursor."""

from __future__ import annotations

import json
from pathlib import Path

STREAMS = ("stdout", "stderr")
MAX_READ = 1024 * 1024  # per stream per call: one chatty job cannot stall the engine's loop
MAX_LINE = 64 * 1024  # longer lines are stored in pieces


def parse_cursor(cursor: str | None) -> dict[str, int]:
    if not cursor:
        return dict.fromkeys(STREAMS, 0)
    data = json.loads(cursor)
    return {stream: int(data.get(stream, 0)) for stream in STREAMS}


def dump_cursor(offsets: dict[str, int]) -> str:
    return json.dumps(offsets, sort_keys=True, separators=(",", ":"))


def _text(raw: bytes) -> str:
    # NUL cannot be stored in a PostgreSQL text column; a job printing one must not wedge
    # its own log pump.
    text = raw.decode("utf-8", errors="replace").replace("\x00", "").rstrip("\r")
    # A progress bar rewrites its line with carriage returns; keep what a terminal would show.
    return text.rsplit("\r", 1)[-1]


def read_stream(path: Path, offset: int, *, final: bool) -> tuple[list[str], int, bool]:
    """Complete lines from ``offset``; the new offset; whether more was left unread."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(MAX_READ)
    except FileNotFoundError:
        return [], offset, False
    more = len(data) == MAX_READ
    end = data.rfind(b"\n")
    if end >= 0:
        complete = data[: end + 1]
    elif (final and not more) or len(data) >= MAX_LINE:
        complete = data
    else:
        complete = b""
    if final and not more and end >= 0 and end + 1 < len(data):
        complete = data  # the last line has no newline but the process has ended
    if not complete:
        return [], offset, more
    lines: list[str] = []
    for raw in complete.split(b"\n"):
        for start in range(0, max(len(raw), 1), MAX_LINE):
            lines.append(_text(raw[start : start + MAX_LINE]))
    if complete.endswith(b"\n"):
        lines.pop()  # split() leaves an empty piece after the last newline
    return lines, offset + len(complete), more
