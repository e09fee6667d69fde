"""Dashboard sessions: a signed cookie holding the token's id (never its secret) and a CSRF token.

The cookie is signed with a key kept in the data directory (mode 0600), so sessions survive a
restart and nobody without the key can mint one. Every request resolves the token id again:
revoking the token ends its sessions at once. State-changing requests must echo the session's
CSRF token (a form field or the ``X-CSRF-Token`` header); SameSite=Lax is the second fence.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from modelops.domain.entities import Principal
from modelops.domain.errors import NotFound
from modelops.ports import UnitOfWorkFactory
from modelops.services.auth import write_secret_file

COOKIE_NAME = "modelops_session"
MAX_AGE_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_SALT = "modelops.web.session"
_MAX_FLASHES = 5


def load_or_create_key(path: Path) -> bytes:
    """The signing key: read from ``path``, or made once and written there (0600)."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = ""
    if len(text) < 32:
        text = secrets.token_hex(32)
        write_secret_file(path, text)
    return text.encode()


@dataclass
class WebSession:
    """What the cookie carries. ``modified`` decides whether the response re-sends it."""

    csrf: str
    token_id: int | None = None
    flashes: list[tuple[str, str]] = field(default_factory=list)
    modified: bool = False

    @classmethod
    def fresh(cls) -> WebSession:
        return cls(csrf=secrets.token_urlsafe(32), modified=True)

    def sign_in(self, token_id: int) -> None:
        # A new CSRF token at sign-in: one planted before it (session fixation) is worthless.
        self.token_id = token_id
        self.csrf = secrets.token_urlsafe(32)
        self.modified = True

    def sign_out(self) -> None:
        self.token_id = None
        self.csrf = secrets.token_urlsafe(32)
        self.modified = True

    def flash(self, kind: str, text: str) -> None:
        self.flashes = [*self.flashes, (kind, text[:500])][-_MAX_FLASHES:]
        self.modified = True

    def pop_flashes(self) -> list[tuple[str, str]]:
        shown, self.flashes = self.flashes, []
        if shown:
            self.modified = True
        return shown

    def csrf_matches(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(str(sent).encode(), self.csrf.encode())

    def as_payload(self) -> dict[str, Any]:
        return {"c": self.csrf, "t": self.token_id, "f": [list(f) for f in self.flashes]}


class SessionCodec:
    """Signs and reads the cookie; anything tampered, expired or malformed is a fresh session."""

    def __init__(self, key: bytes, *, max_age: int = MAX_AGE_SECONDS) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt=_SALT)
        self.max_age = max_age

    def read(self, cookie: str | None) -> WebSession:
        if not cookie:
            return WebSession.fresh()
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # also SignatureExpired
            return WebSession.fresh()
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return WebSession.fresh()
        token_id = data.get("t")
        raw_flashes = data.get("f")
        flashes: list[Any] = raw_flashes if isinstance(raw_flashes, list) else []
        return WebSession(
            csrf=data["c"],
            token_id=token_id if isinstance(token_id, int) else None,
            flashes=[(str(f[0]), str(f[1])) for f in flashes if isinstance(f, list) and len(f) == 2],
        )

    def write(self, response: Response, session: WebSession, *, secure: bool) -> None:
        response.set_cookie(
            COOKIE_NAME, self._serializer.dumps(session.as_payload()), max_age=self.max_age,
            path="/", httponly=True, samesite="lax", secure=secure,
        )


def session_of(request: Request) -> WebSession:
    """The request's session, read from its cookie once."""
    found: WebSession | None = getattr(request.state, "web_session", None)
    if found is None:
        codec: SessionCodec = request.app.state.web_sessions
        found = codec.read(request.cookies.get(COOKIE_NAME))
        request.state.web_session = found
    return found


def save_session(request: Request, response: Response) -> None:
    found: WebSession | None = getattr(request.state, "web_session", None)
    if found is not None and found.modified:
        codec: SessionCodec = request.app.state.web_sessions
        codec.write(response, found, secure=request.url.scheme == "https")


def principal_for_token(uow: UnitOfWorkFactory, token_id: int) -> Principal | None:
    """The principal a session stands for, or None once its token is revoked or deleted."""
    with uow() as unit:
        try:
            token = unit.tokens.get(token_id)
        except NotFound:
            return None
    if not token.active:
        return None
    return Principal(token_id=token.id, name=token.name, role=token.role)
