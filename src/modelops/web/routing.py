"""Who is calling the dashboard, the CSRF fence, and errors shown as pages.

Every web route uses ``WebRoute``: a service error becomes an HTML page with the API's status
for the same error (JSON under ``/ui/api``), a missing session on a page becomes a redirect to
the sign-in page, and the session cookie is re-sent when it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from modelops.api.errors import status_for
from modelops.bootstrap import Container
from modelops.domain.entities import Principal
from modelops.domain.errors import ModelOpsError, PayloadTooLarge
from modelops.web.rendering import render
from modelops.web.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    principal_for_token,
    save_session,
    session_of,
)

API_PREFIX = "/ui/api/"
FORM_OVERHEAD = 1024 * 1024  # the other fields and the multipart framing around a file
MAX_PLAIN_FORM = 1024 * 1024  # a form without files: names, reasons, parameters


class SignInRequired(Exception):
    """A page needs a signed-in user: the answer is a redirect to the sign-in page."""


class WebForbidden(Exception):
    """A state-changing request without a session or a valid CSRF token (403)."""


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def safe_next(target: str | None, default: str = "/ui/") -> str:
    """Only paths of the dashboard itself: never another host (``//evil``) or scheme."""
    if not target or not target.startswith("/ui") or target.startswith("//") or "\\" in target:
        return default
    return target


def error_response(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    back = request.headers.get("referer", "")
    return render(
        request, "error.html", status_code=status, status=status, message=message,
        back=back if back.startswith(str(request.base_url).rstrip("/") + "/ui") else "",
    )


class WebRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def web_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                if _is_api(request):
                    response = JSONResponse({"detail": "sign in first"}, status_code=401)
                else:
                    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    response = RedirectResponse(
                        f"/ui/login?next={quote(wanted, safe='')}", status_code=303
                    )
            except WebForbidden as exc:
                response = error_response(request, 403, str(exc))
            except ModelOpsError as exc:
                response = error_response(request, status_for(exc), str(exc))
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in err.get('loc', ())[1:])}: {err.get('msg')}"
                    for err in exc.errors()
                )
                response = error_response(request, 422, f"invalid form: {problems}")
            except HTTPException as exc:
                response = error_response(request, exc.status_code, str(exc.detail))
            save_session(request, response)
            return response

        return web_handler


# --------------------------------------------------------------------------- dependencies


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def _resolve_user(request: Request, container: Container) -> Principal | None:
    session = session_of(request)
    if session.token_id is None:
        return None
    found = await run_in_threadpool(principal_for_token, container.uow, session.token_id)
    if found is None:
        session.sign_out()
        session.flash("error", "Your session ended: its token was revoked. Sign in again.")
        return None
    request.state.principal = found
    return found


async def optional_user(request: Request, container: ContainerDep) -> Principal | None:
    return await _resolve_user(request, container)


async def current_user(request: Request, container: ContainerDep) -> Principal:
    """The signed-in user of a page; otherwise the page redirects to sign-in."""
    found = await _resolve_user(request, container)
    if found is None:
        raise SignInRequired()
    return found


def _check_body_size(request: Request) -> None:
    """Refuse an oversized form before it is parsed (and spooled to disk or memory)."""
    declared = request.headers.get("content-length", "")
    multipart = request.headers.get("content-type", "").startswith("multipart/form-data")
    container: Container = request.app.state.container
    limit = container.settings.max_upload_bytes + FORM_OVERHEAD if multipart else MAX_PLAIN_FORM
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the form is larger than the limit of {limit} bytes")


async def csrf_checked(request: Request) -> None:
    session = session_of(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        _check_body_size(request)
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not session.csrf_matches(sent):
        raise WebForbidden(
            "This form has expired or did not come from this dashboard (missing or wrong CSRF "
            "token). Reload the page and try again."
        )


async def acting_user(
    request: Request, container: ContainerDep, _csrf: Annotated[None, Depends(csrf_checked)],
) -> Principal:
    """The user behind a state-changing request: a session and its CSRF token, or 403."""
    found = await _resolve_user(request, container)
    if found is None:
        raise WebForbidden("Sign in first: this action needs a dashboard session.")
    return found


UserDep = Annotated[Principal, Depends(current_user)]
OptionalUserDep = Annotated[Principal | None, Depends(optional_user)]
ActorDep = Annotated[Principal, Depends(acting_user)]
CsrfDep = Annotated[None, Depends(csrf_checked)]


def flash(request: Request, kind: str, text: str) -> None:
    session_of(request).flash(kind, text)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)
