"""Entry point of the ``modelops`` command."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from modelops.cli.common import state

app = typer.Typer(
    name="modelops",
    help="Train, evaluate, approve, deploy, score and retire models. Every step is a job.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    url: Annotated[str | None, typer.Option(envvar="MODELOPS_URL", help="Server URL.")] = None,
    token: Annotated[
        str | None, typer.Option(envvar="MODELOPS_TOKEN", help="API token.", show_default=False)
    ] = None,
) -> None:
    state.url = url
    state.token = token


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8765; 0 picks a free one).")] = None,
) -> None:
    """Start the platform: REST API, job engine and scheduler, on the embedded defaults."""
    from modelops.server import serve
    from modelops.settings import Settings

    overrides: dict[str, Any] = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    serve(Settings(**overrides))


@app.command()
def worker() -> None:
    """Run the job engine and the schedulers without the API (for a server's extra workers).

    Point it at the same database and artifact store as the API servers (MODELOPS_DATABASE_URL,
    MODELOPS_ARTIFACTS_URL); stop it with Ctrl+C or SIGTERM (running jobs are left to be
    re-attached when it comes back, or adopted by another engine)."""
    from modelops.server import run_worker
    from modelops.settings import Settings

    run_worker(Settings())


def _register() -> None:
    import importlib

    for module_name, group, help_text in [
        ("modelops.cli.tokens", "tokens", "API tokens and roles."),
        ("modelops.cli.projects", "projects", "Projects: the unit of ownership."),
        ("modelops.cli.datasets", "datasets", "Datasets and their immutable versions."),
        ("modelops.cli.packages", "packages", "ML packages and their versions."),
        ("modelops.cli.jobs", "jobs", "Jobs: status, events, logs, stop."),
        ("modelops.cli.models", "models", "Bring your own model: import, statistics."),
        ("modelops.cli.pipelines", "pipelines", "Training, evaluation and full pipelines and their runs."),
        ("modelops.cli.lifecycle", "lifecycle", "Approve or reject model versions; see a model's champion."),
        ("modelops.cli.deployments", "deployments", "Deployments: deploy, schedule, run now, retire."),
        ("modelops.cli.audit", "audit", "The append-only audit trail: list, export, deployed at a time."),
        ("modelops.cli.demo", "demo", "Walk the shipped iris example through the whole lifecycle."),
    ]:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        app.add_typer(module.app, name=group, help=help_text)


_register()
