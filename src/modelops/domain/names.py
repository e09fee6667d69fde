"""Names of projects, datasets and packages appear in URLs and paths, so they are kept simple."""

from __future__ import annotations

import re

from modelops.domain.errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith("."):
        raise InvalidInput(
            f"invalid {kind} name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_text(kind: str, value: str) -> str:
    """Free text (descriptions, notes): anything but NUL, which PostgreSQL text cannot hold."""
    if "\x00" in value:
        raise InvalidInput(f"{kind} must not contain NUL characters")
    return value
