"""The FastAPI application, built around a container (no import-time app)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from modelops import __version__
from modelops.api.errors import install_error_handlers
from modelops.api.routers import (
    audit,
    byom,
    datasets,
    deployments,
    jobs,
    lifecycle,
    packages,
    pipelines,
    projects,
    tokens,
)
from modelops.bootstrap import Container
from modelops.web import install_web

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

    for module in (tokens, projects, datasets, packages, jobs, pipelines, byom, lifecycle, deployments, audit):
        api.include_router(module.router)
    app.include_router(api)
    install_web(app)  # the dashboard under /ui, on the same services
    return app
