"""Jinja2 templates with autoescaping everywhere, the filters pages use, and ``render``.

User data is never marked safe: names, descriptions, log lines and JSON all pass through
autoescaping. Charts are SVG written by macros from numbers computed in ``charts.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from modelops import __version__
from modelops.domain.entities import Principal
from modelops.domain.roles import Role
from modelops.web.session import session_of

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
STATIC_PREFIX = "/ui/static"


def when_text(value: datetime | str | float | None) -> str:
    """A time as users read it: UTC, to the second."""
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # stored in UTC; SQLite drops the offset
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def when(value: datetime | str | float | None) -> Markup:
    """The time in a ``<time>`` element; it may wrap between the date and the time of day,
    never inside either (a table cell would otherwise break at a hyphen). Escaped."""
    text = when_text(value)
    date, _, rest = text.partition(" ")
    inner = Markup("<span>{}</span> <span>{}</span>").format(date, rest) if rest else Markup("{}").format(text)
    if isinstance(value, datetime):
        return Markup('<time datetime="{}">{}</time>').format(iso(value), inner)
    return Markup("<time>{}</time>").format(inner)


def iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def duration(start: datetime | None, end: datetime | None = None) -> str:
    if start is None:
        return "—"
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    finish = end or datetime.now(UTC)
    if finish.tzinfo is None:
        finish = finish.replace(tzinfo=UTC)
    seconds = max((finish - start).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def size(value: int | None) -> str:
    if value is None:
        return "—"
    number = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if number < 1024 or unit == "GB":
            return f"{int(number)} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return f"{number:.1f} TB"  # pragma: no cover - the loop returns first


def number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.{digits}g}"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def path_quote(value: Any) -> str:
    """A URL path segment (or several, keeping '/')."""
    return quote(str(value), safe="/")


def segment(value: Any) -> str:
    return quote(str(value), safe="")


@cache
def _static_version(name: str) -> str:
    # Content hash in the URL: a new release is fetched at once, an unchanged file stays cached.
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    return f"{STATIC_PREFIX}/{name}?v={_static_version(name)}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when, iso=iso, size=size, number=number, pretty_json=pretty_json, q=path_quote,
        seg=segment,
    )
    env.globals.update(
        static_url=static_url, duration=duration, version=__version__, Role=Role,
    )
    return env


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    session = session_of(request)
    user: Principal | None = getattr(request.state, "principal", None)

    def can(role: str) -> bool:
        return user is not None and user.role.allows(Role(role))

    page = environment().get_template(template).render(
        request=request, user=user, can=can, csrf=session.csrf,
        flashes=session.pop_flashes(), **context,
    )
    return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})
