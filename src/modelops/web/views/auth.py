"""Sign in with a token, sign out, and (for admins) the tokens page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from modelops.domain.errors import Unauthenticated
from modelops.web.rendering import render
from modelops.web.routing import (
    ActorDep,
    ContainerDep,
    CsrfDep,
    OptionalUserDep,
    UserDep,
    WebRoute,
    flash,
    redirect,
    safe_next,
)
from modelops.web.session import session_of

router = APIRouter(route_class=WebRoute)


@router.get("/login")
def login_page(request: Request, user: OptionalUserDep, next: str = "/ui/") -> Response:
    if user is not None:
        return redirect(safe_next(next))
    return render(request, "login.html", next=safe_next(next), error=None)


@router.post("/login")
async def sign_in(
    request: Request, container: ContainerDep, _csrf: CsrfDep,
    token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/ui/",
) -> Response:
    try:
        principal = await run_in_threadpool(container.auth.authenticate, token.strip() or None)
    except Unauthenticated as exc:
        message = "Enter a token." if not token.strip() else f"Sign-in failed: {exc}."
        return render(request, "login.html", status_code=401, next=safe_next(next), error=message)
    # Only the token's id goes into the cookie; the secret is never stored by the browser.
    session_of(request).sign_in(principal.token_id)
    flash(request, "ok", f"Signed in as {principal.name} ({principal.role}).")
    return redirect(safe_next(next))


@router.post("/logout")
def sign_out(request: Request, _csrf: CsrfDep) -> Response:
    session_of(request).sign_out()
    flash(request, "ok", "Signed out.")
    return redirect("/ui/login")


@router.get("/tokens")
def tokens_page(request: Request, container: ContainerDep, user: UserDep) -> Response:
    tokens = container.auth.list_tokens(principal=user)
    return render(request, "tokens.html", tokens=tokens, created=None, active_nav="tokens")


@router.post("/tokens")
def create_token(
    request: Request, container: ContainerDep, user: ActorDep,
    name: Annotated[str, Form()], role: Annotated[str, Form()],
) -> Response:
    token, secret = container.auth.create_token(principal=user, name=name.strip(), role=role)
    tokens = container.auth.list_tokens(principal=user)
    # The secret is shown once, on this response only; it is not kept anywhere.
    return render(
        request, "tokens.html", status_code=201, tokens=tokens, created=(token, secret),
        active_nav="tokens",
    )


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: int, container: ContainerDep, user: ActorDep) -> Response:
    token = container.auth.revoke_token(principal=user, token_id=token_id)
    flash(request, "ok", f"Token '{token.name}' revoked: its sessions have ended.")
    return redirect("/ui/tokens")
