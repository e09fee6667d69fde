"""The FastAPI application, built around a container (no import-time app)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from modelops import __version__
from modelops.api.errors import install_error_handlers
from modelops.api.routers import datasets, packages, projects, tokens
from modelops.bootstrap import Container

API_PREFIX = "/api/v1"


def create_app(container: Container) -> FastAPI:
    app = FastAPI(
        title="modelops",
        version=__version__,
        description="Train, evaluate, approve, deploy, score and retire models; every step a job.",
    )
    app.state.container = container
    install_error_handlers(app)

    api = APIRouter(prefix=API_PREFIX)

    @api.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for module in (tokens, projects, datasets, packages):
        api.include_router(module.router)
    app.include_router(api)
    return app
