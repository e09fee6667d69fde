"""Log levels of a job's output lines, recognised from the text.

Pure and stateful per stream: a Python traceback spans many lines and every one of them, from
``Traceback (most recent call last):`` through the exception line, is an error; so is a whole
exception-group block. Outside tracebacks a line's level comes from Python's ``logging``
default prefix (``WARNING:root:...``), from an upper-case level word anywhere in the line, or
from a level word used as a label (``error: ...``, ``[warning]``, ``ValueError: ...``).
Everything else is info. Keep one classifier per stream of one job.
"""

from __future__ import annotations

import re

from modelops.domain.errors import InvalidInput
from modelops.domain.jobs import LogLevel

_LOGGING_PREFIX = re.compile(r"^(CRITICAL|FATAL|ERROR|WARNING|WARN|INFO|DEBUG):")
_PREFIX_LEVELS = {
    "CRITICAL": LogLevel.ERROR,
    "FATAL": LogLevel.ERROR,
    "ERROR": LogLevel.ERROR,
    "WARNING": LogLevel.WARNING,
    "WARN": LogLevel.WARNING,
    "INFO": LogLevel.INFO,
    "DEBUG": LogLevel.DEBUG,
}
# Upper-case words are level names wherever they stand ("2024-01-01 12:00 ERROR x failed").
_UPPER_ERROR = re.compile(r"\b(ERROR|CRITICAL|FATAL)\b")
_UPPER_WARNING = re.compile(r"\b(WARNING|WARN)\b")
_UPPER_DEBUG = re.compile(r"\bDEBUG\b")
# Mixed-case words count only as a label ("error: ...", "[Warning]", "ValueError: ..."), so a
# metric such as "error=0.1" or a sentence like "0 errors" stays info.
_LABEL_ERROR = re.compile(r"(?:^|[\s\[(])(?:[Ee]rror|[Ff]atal|\w+Error|\w*Exception)\s*[:\])]")
_LABEL_WARNING = re.compile(r"(?:^|[\s\[(])(?:[Ww]arning|[Ww]arn|\w+Warning)\s*[:\])]")
_TRACEBACK_START = "Traceback (most recent call last):"
_GROUP_START = "Exception Group Traceback (most recent call last):"
_GROUP_CLOSE = re.compile(r"^\s*\+-+$")
_CHAIN_LINES = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)


def level_of_line(line: str) -> LogLevel:
    """The level of one line judged alone (no traceback context)."""
    prefix = _LOGGING_PREFIX.match(line)
    if prefix:
        return _PREFIX_LEVELS[prefix.group(1)]
    if _UPPER_ERROR.search(line) or _LABEL_ERROR.search(line):
        return LogLevel.ERROR
    if _UPPER_WARNING.search(line) or _LABEL_WARNING.search(line):
        return LogLevel.WARNING
    if _UPPER_DEBUG.search(line):
        return LogLevel.DEBUG
    return LogLevel.INFO


class LogClassifier:
    """Classifies the lines of one stream in order, remembering open tracebacks."""

    def __init__(self) -> None:
        self._in_traceback = False
        self._group_depth = 0
        self._after_warning = False

    def classify(self, line: str) -> LogLevel:
        stripped = line.strip()
        if self._group_depth:
            return self._in_group(stripped)
        if _GROUP_START in stripped:
            self._group_depth = 1
            self._after_warning = False
            return LogLevel.ERROR
        if stripped.startswith(_TRACEBACK_START) or stripped in _CHAIN_LINES:
            self._in_traceback = stripped.startswith(_TRACEBACK_START)
            self._after_warning = False
            return LogLevel.ERROR
        if self._in_traceback:
            # Frames and source lines are indented; the first line that is not closes the
            # traceback and is the exception itself ("ValueError: ...", or a bare "KeyboardInterrupt").
            if line[:1].isspace() or not stripped:
                return LogLevel.ERROR
            self._in_traceback = False
            return LogLevel.ERROR
        if self._after_warning:
            self._after_warning = False
            # The warnings module prints the offending source line indented under the warning.
            if line[:1].isspace() and stripped:
                return LogLevel.WARNING
        level = level_of_line(line)
        self._after_warning = level is LogLevel.WARNING
        return level

    def _in_group(self, stripped: str) -> LogLevel:
        if _GROUP_START in stripped:
            self._group_depth += 1
        elif _GROUP_CLOSE.match(stripped):
            self._group_depth -= 1
        return LogLevel.ERROR


def parse_level(text: str) -> LogLevel:
    """A level name from user input (``warning``, ``WARN``, ``error``...) or InvalidInput."""
    name = text.strip().lower()
    name = {"warn": "warning", "critical": "error", "fatal": "error"}.get(name, name)
    try:
        return LogLevel(name)
    except ValueError:
        choices = ", ".join(level.value for level in LogLevel)
        raise InvalidInput(f"unknown log level {text!r}: choose one of {choices}") from None


def levels_at_least(minimum: LogLevel) -> list[LogLevel]:
    return [level for level in LogLevel if level.rank >= minimum.rank]
