"""Shared by the lifecycle tests: a tiny servable package, and ways to get versions evaluated.

The package needs only the standard library to train and pandas (the platform's own) to score,
so its jobs take a moment. ``evaluated_on_server`` runs a real evaluation pipeline; container
tests move a fresh version to ``evaluated`` with the store's own transition instead.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from modelops.archives import pack_zip
from modelops.bootstrap import Container
from modelops.client import ModelOpsClient
from modelops.domain.entities import ModelVersion, Principal
from modelops.domain.model_status import ModelStatus
from modelops.domain.roles import Role

REPO = Path(__file__).resolve().parents[2]
IRIS_DATA = REPO / "examples" / "iris_data"
ADMIN = Principal(token_id=0, name="alice", role=Role.ADMIN)

TRAIN_PY = '''
class Main:
    def __init__(self):
        pass

    def train(self, data_directory):
        pass

    def evaluate(self, data_directory):
        print("evaluated: 0.9")
        return 0.9

    def save(self):
        pass
'''

MAIN_PY = '''
class Main:
    def __init__(self):
        pass

    def predict(self, frame):
        return ["big" if value > 5.8 else "small" for value in frame["sepal_length"]]
'''


def tiny_package(root: Path) -> Path:
    folder = root / "tiny-servable"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(textwrap.dedent(TRAIN_PY))
    (folder / "main.py").write_text(textwrap.dedent(MAIN_PY))
    return folder


def evaluated_on_server(client: ModelOpsClient, project: str, root: Path, *, package: str = "tiny") -> str:
    """A project with the iris dataset and version 1.0 of ``package``, evaluated by a real
    evaluation pipeline run. Returns the version."""
    client.projects.create(project)
    client.datasets.upload_version(project, "iris", IRIS_DATA)
    version = client.packages.upload(project, package, tiny_package(root))["version"]
    created = client.pipelines.create(project, f"{package}-eval", type="evaluation", package=package,
                                      version=version, dataset="iris", folder="test")
    job = client.jobs.wait(created["run"]["job_id"], timeout=120)
    assert job["status"] == "completed", job
    assert client.packages.get_version(project, package, version)["status"] == "evaluated"
    return str(version)


def seed_container(container: Container, root: Path, *, project: str = "p", versions: int = 1) -> list[ModelVersion]:
    """A project with the iris dataset and ``versions`` evaluated versions (1.0, 2.0, …)."""
    container.projects.create(principal=ADMIN, name=project)
    data_zip, package_zip = root / "iris.zip", root / "tiny.zip"
    pack_zip(IRIS_DATA, data_zip)
    pack_zip(tiny_package(root), package_zip)
    container.datasets.upload_version(principal=ADMIN, project=project, name="iris", archive=data_zip)
    made = []
    for _ in range(versions):
        version = container.packages.upload(principal=ADMIN, project=project, name="tiny", archive=package_zip)
        with container.uow() as uow:
            made.append(uow.packages.transition_version(version.id, ModelStatus.EVALUATED))
    return made


def approve(container: Container, version: ModelVersion, *, project: str = "p") -> None:
    container.lifecycle.decisions.approve(
        principal=ADMIN, project=project, package="tiny", version=version.version, reason="fine",
    )
