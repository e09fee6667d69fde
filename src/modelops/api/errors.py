"""One table from error type to HTTP status; every user error becomes a JSON 4xx."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from modelops.domain.errors import (
    AlreadyExists,
    Conflict,
    InvalidArchive,
    InvalidInput,
    InvalidTransition,
    ModelOpsError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
)

# Most specific first: the first matching row wins.
STATUS_BY_ERROR: list[tuple[type[ModelOpsError], int]] = [
    (PayloadTooLarge, 413),
    (InvalidArchive, 400),
    (InvalidInput, 400),
    (NotFound, 404),
    (AlreadyExists, 409),
    (InvalidTransition, 409),
    (Conflict, 409),
    (Unauthenticated, 401),
    (PermissionDenied, 403),
]


def status_for(error: ModelOpsError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 400


def error_body(error: ModelOpsError) -> dict[str, object]:
    body: dict[str, object] = {"detail": str(error), "error": type(error).__name__}
    if isinstance(error, InvalidTransition):
        body.update(current=error.current, requested=error.requested, allowed=error.allowed)
    return body


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelOpsError)
    async def on_modelops_error(_request: Request, exc: ModelOpsError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
        return JSONResponse(error_body(exc), status_code=status_for(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}" for err in exc.errors()
        ]
        return JSONResponse(
            {"detail": "invalid request: " + "; ".join(problems), "error": "InvalidInput"},
            status_code=422,
        )
