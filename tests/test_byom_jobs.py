"""Import and statistics as real jobs: the in-process engine runs real subprocesses, on SQLite
and PostgreSQL. A version exists only once its import job succeeded; bad files register nothing."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.jobs.support import ALICE, close_engine_container, engine_container, wait_terminal
from support import byom_models as bm

from modelops.archives import pack_tar, pack_zip
from modelops.bootstrap import Container
from modelops.domain.errors import InvalidInput, NotFound
from modelops.domain.jobs import Job, JobStatus
from modelops.domain.model_status import ModelStatus

JOB_TIMEOUT = 180.0


def start(tmp_path: Path, database_url: str) -> Container:
    container = engine_container(tmp_path / "home", database_url, max_concurrent_jobs=4)
    container.projects.create(principal=ALICE, name="p")
    return container


@pytest.fixture
def byom(tmp_path: Path, database_url: str) -> Iterator[Container]:
    container = start(tmp_path, database_url)
    try:
        yield container
    finally:
        close_engine_container(container)


@pytest.fixture
def byom_sqlite(tmp_path: Path) -> Iterator[Container]:
    container = start(tmp_path, f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        yield container
    finally:
        close_engine_container(container)


def add_dataset(container: Container, tmp: Path, name: str = "train", **kwargs: object) -> None:
    folder = bm.write_dataset(tmp / f"dataset-{name}", **kwargs)  # type: ignore[arg-type]
    pack_tar(folder, tmp / f"{name}.tar.gz")
    container.datasets.upload_version(principal=ALICE, project="p", name=name, archive=tmp / f"{name}.tar.gz")


def submit(container: Container, name: str, path: Path, **options: object) -> Job:
    upload = path
    filename = path.name
    if path.is_dir():
        upload = path.parent / f"{path.name}.zip"
        pack_zip(path, upload)
        filename = upload.name
    return container.byom.submit_import(
        principal=ALICE, project="p", name=name, upload=upload, filename=filename, **options  # type: ignore[arg-type]
    )


def versions_of(container: Container, name: str) -> list[object]:
    try:
        return list(container.packages.list_versions(principal=ALICE, project="p", name=name))
    except NotFound:
        return []


def test_each_format_becomes_an_imported_version_and_gets_statistics(byom: Container, tmp_path: Path) -> None:
    add_dataset(byom, tmp_path)
    imports = {
        "onnx": submit(byom, "onnx", bm.onnx_classifier(tmp_path / "onnx"), dataset="train",
                       features=",".join(bm.FEATURES), target="label"),
        "pickle": submit(byom, "pickle", bm.joblib_classifier(tmp_path / "joblib"), dataset="train"),
        "pmml": submit(byom, "pmml", bm.pmml_linear_regression(tmp_path / "pmml"), dataset="train"),
        "mlflow": submit(byom, "mlflow", bm.mlflow_sklearn(tmp_path / "mlflow"), dataset="train",
                         target="label"),
    }
    ended = {name: wait_terminal(byom, job.id, JOB_TIMEOUT) for name, job in imports.items()}
    for name, job in ended.items():
        assert job.status is JobStatus.COMPLETED, (name, job.error)
        assert job.result["version"] == "1.0"
    expected = {"onnx": ("onnx", "classification"), "pickle": ("joblib", "classification"),
                "pmml": ("pmml", "regression"), "mlflow": ("mlflow", "classification")}
    for name, (fmt, task) in expected.items():
        (version,) = byom.packages.list_versions(principal=ALICE, project="p", name=name)
        assert version.status == ModelStatus.IMPORTED and version.version == "1.0"
        signature = version.lineage["byom"]
        assert (signature["format"], signature["task"], signature["features"]) == (fmt, task, bm.FEATURES)
        assert version.lineage["import_job_id"] == imports[name].id
    assert byom.packages.get_version(principal=ALICE, project="p", name="pmml", version="1.0").lineage[
        "byom"]["target"] == "y"
    for name, job in ended.items():
        stats_job = wait_terminal(byom, job.result["statistics_job_id"], JOB_TIMEOUT)
        assert stats_job.status is JobStatus.COMPLETED, (name, stats_job.error)
        assert stats_job.target_id == job.result["model_version_id"]
        stored = byom.byom.latest_statistics(principal=ALICE, project="p", name=name, version="1.0")
        assert stored.job_id == stats_job.id
        assert stored.stats["rows"] == 400 and set(stored.stats["features"]) == set(bm.FEATURES)
        assert stored.stats["dataset"] == {"name": "train", "version": 1, "folder": ""}
    regression = byom.byom.latest_statistics(principal=ALICE, project="p", name="pmml", version="1.0")
    assert regression.stats["predictions"]["kind"] == "numeric"
    # A second import of the same name is the next major version.
    again = wait_terminal(byom, submit(byom, "pickle", tmp_path / "joblib" / "model.joblib").id, JOB_TIMEOUT)
    assert again.status is JobStatus.COMPLETED and again.result["version"] == "2.0"
    assert again.result["statistics_job_id"] is None


BAD_UPLOADS = {
    "not-a-model": (bm.not_a_model_pickle, {"features": "a,b,c", "task": "regression"},
                    "has no predict method"),
    "corrupt-onnx": (bm.corrupt_onnx, {"features": "a,b,c"}, "not a valid ONNX model"),
    "onnx-outside": (lambda d: bm.onnx_linear(d / "m", external_location="../secret.bin").parent,
                     {"features": "a,b,c"}, "unsafe ONNX external data"),
    "feature-count": (bm.onnx_classifier, {"features": "a,b"},
                      "the model expects 3 input features but 2 were declared"),
    "pmml-entity": (lambda d: bm.pmml_with_entity(d, Path("/etc/hostname")), {},
                    "the PMML declares a DTD or XML entities"),
}


def test_bad_files_fail_the_import_job_and_register_nothing(byom_sqlite: Container, tmp_path: Path) -> None:
    container = byom_sqlite
    add_dataset(container, tmp_path)
    jobs = {
        name: submit(container, name, builder(tmp_path / name), dataset="train", **options)
        for name, (builder, options, _) in BAD_UPLOADS.items()
    }
    for name, job in jobs.items():
        ended = wait_terminal(container, job.id, JOB_TIMEOUT)
        assert ended.status is JobStatus.FAILED, name
        assert BAD_UPLOADS[name][2] in (ended.error or ""), (name, ended.error)
        assert ended.result == {}
        assert versions_of(container, name) == []
    # No package, no version, and no statistics job was ever created for them.
    assert container.packages.list(principal=ALICE, project="p") == []
    statistics_jobs = container.jobs.list(principal=ALICE, project="p", kinds=["compute_statistics"])
    assert statistics_jobs == []


def test_statistics_that_cannot_score_fail_and_store_nothing(byom_sqlite: Container, tmp_path: Path) -> None:
    container = byom_sqlite
    add_dataset(container, tmp_path, name="no-c", frame=bm.training_frame().drop(columns=["c"]))
    job = wait_terminal(container, submit(container, "clf", bm.joblib_classifier(tmp_path / "m"),
                                          dataset="no-c").id, JOB_TIMEOUT)
    # The import itself is fine: the model loads. Its statistics cannot score the data.
    assert job.status is JobStatus.COMPLETED
    stats_job = wait_terminal(container, job.result["statistics_job_id"], JOB_TIMEOUT)
    assert stats_job.status is JobStatus.FAILED
    assert "the dataset lacks 1: c" in (stats_job.error or "")
    with pytest.raises(NotFound, match="no statistics"):
        container.byom.latest_statistics(principal=ALICE, project="p", name="clf", version="1.0")


PACKAGE_MAIN = textwrap.dedent("""\
    import joblib

    class Main:
        def __init__(self):
            # Packages find the files save() wrote in their working folder.
            self.model = joblib.load("model.joblib")

        def predict(self, frame):
            return self.model.predict(frame[["a", "b", "c"]])
    """)


def test_statistics_on_demand_for_an_ml_package_version(byom_sqlite: Container, tmp_path: Path) -> None:
    container = byom_sqlite
    add_dataset(container, tmp_path)
    package = tmp_path / "package"
    bm.joblib_classifier(package)
    (package / "main.py").write_text(PACKAGE_MAIN)
    pack_zip(package, tmp_path / "package.zip")
    container.packages.upload(principal=ALICE, project="p", name="pkg", archive=tmp_path / "package.zip")
    job = container.byom.submit_statistics(principal=ALICE, project="p", name="pkg", version="1.0",
                                           dataset="train", target="label", sample_rows=50)
    assert job.target_type == "model_version"
    ended = wait_terminal(container, job.id, JOB_TIMEOUT)
    assert ended.status is JobStatus.COMPLETED, ended.error
    stats = container.byom.latest_statistics(principal=ALICE, project="p", name="pkg", version="1.0",
                                             dataset="train", dataset_version=1).stats
    assert stats["scored_rows"] == 50
    # Without recorded features a package reads whole rows: every column but the target.
    assert set(stats["features"]) == {"a", "b", "c", "city", "y"}
    assert stats["predictions"]["kind"] == "categorical"


def test_statistics_requests_are_checked_before_a_job_exists(byom_sqlite: Container, tmp_path: Path) -> None:
    container = byom_sqlite
    add_dataset(container, tmp_path)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "readme.txt").write_text("no tables here")
    pack_tar(docs, tmp_path / "docs.tar.gz")
    container.datasets.upload_version(principal=ALICE, project="p", name="docs", archive=tmp_path / "docs.tar.gz")
    job = wait_terminal(container, submit(container, "clf", bm.joblib_classifier(tmp_path / "m")).id, JOB_TIMEOUT)
    assert job.status is JobStatus.COMPLETED
    before = len(container.jobs.list(principal=ALICE, project="p"))
    with pytest.raises(NotFound, match="dataset 'nope' not found"):
        container.byom.submit_statistics(principal=ALICE, project="p", name="clf", version="1.0", dataset="nope")
    with pytest.raises(NotFound, match="version 9.0 not found"):
        container.byom.submit_statistics(principal=ALICE, project="p", name="clf", version="9.0", dataset="train")
    with pytest.raises(InvalidInput, match="has no CSV or Parquet file"):
        container.byom.submit_statistics(principal=ALICE, project="p", name="clf", version="1.0", dataset="docs")
    with pytest.raises(InvalidInput, match="cannot tell the model format"):
        submit(container, "txt", docs / "readme.txt")
    with pytest.raises(InvalidInput, match="has no CSV or Parquet file"):
        submit(container, "clf", tmp_path / "m" / "model.joblib", dataset="docs")
    assert len(container.jobs.list(principal=ALICE, project="p")) == before
