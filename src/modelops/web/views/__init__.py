"""One module of views per area; ``ROUTERS`` is every one of them, mounted under ``/ui``."""

from __future__ import annotations

from modelops.web.views import (
    audit,
    auth,
    datasets,
    deployments,
    jobs,
    models,
    packages,
    pipelines,
    projects,
    runs,
)

ROUTERS = [
    auth.router, projects.router, jobs.router, datasets.router, packages.router, models.router,
    pipelines.router, runs.router, deployments.router, audit.router,
]
