"""Model version numbers: uploads and imports make N.0, training from N.m makes N.(max minor + 1)."""

from __future__ import annotations

import re

from modelops.domain.errors import InvalidInput

_VERSION = re.compile(r"^(\d{1,6})\.(\d{1,6})$")


def parse_version(text: str) -> tuple[int, int]:
    match = _VERSION.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise InvalidInput(f"invalid version {text!r}: expected MAJOR.MINOR, e.g. 1.0")
    return int(match.group(1)), int(match.group(2))


def next_major(latest_major: int) -> tuple[int, int]:
    return latest_major + 1, 0


def next_minor(major: int, existing_minors: list[int]) -> tuple[int, int]:
    return major, (max(existing_minors) + 1 if existing_minors else 1)
