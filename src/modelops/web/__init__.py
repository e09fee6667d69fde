"""The dashboard: server-rendered pages under ``/ui`` over the same services as the API.

Thin like the API: each view parses the request, calls one service and renders a template.
Sessions are signed cookies holding a token id (``session.py``); state-changing requests need
the session's CSRF token (``routing.py``); every response carries a Content-Security-Policy
that allows no inline script (``headers.py``), so all behaviour lives in ``static/*.js``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from modelops.web.headers import SecurityHeaders
from modelops.web.rendering import STATIC_DIR, STATIC_PREFIX
from modelops.web.session import SessionCodec, load_or_create_key

SESSION_KEY_FILE = "web-session.key"


def build_router() -> APIRouter:
    from modelops.web.views import ROUTERS

    router = APIRouter(prefix="/ui", include_in_schema=False)
    for module_router in ROUTERS:
        router.include_router(module_router)
    return router


def install_web(app: FastAPI) -> None:
    """Mount the dashboard on an app built around a container (``app.state.container``)."""
    settings = app.state.container.settings
    app.state.web_sessions = SessionCodec(
        load_or_create_key(settings.resolved_home / SESSION_KEY_FILE)
    )
    app.add_middleware(SecurityHeaders)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="web-static")
    app.include_router(build_router())

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)
