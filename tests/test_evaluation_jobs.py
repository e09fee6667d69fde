"""Evaluation jobs run by the in-process engine on SQLite and PostgreSQL: re-evaluation replaces
the version's report, and the comparison is made with whatever is the champion at the time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest
from fixtures.jobs.support import ALICE, close_engine_container, engine_container, wait_terminal
from support import byom_models as bm
from support.lifecycle import ADMIN

from modelops.archives import pack_tar
from modelops.bootstrap import Container
from modelops.domain.jobs import Job, JobStatus

JOB_TIMEOUT = 180.0


@pytest.fixture
def container(tmp_path: Path, database_url: str) -> Iterator[Container]:
    built = engine_container(tmp_path / "home", database_url, max_concurrent_jobs=4)
    built.projects.create(principal=ALICE, name="p")
    frame = bm.training_frame().rename(columns={"label": "target"})
    pack_tar(bm.write_dataset(tmp_path / "data", frame), tmp_path / "data.tar.gz")
    built.datasets.upload_version(principal=ALICE, project="p", name="data", archive=tmp_path / "data.tar.gz")
    try:
        yield built
    finally:
        close_engine_container(built)


def ended(container: Container, job: Job) -> Job:
    done = wait_terminal(container, job.id, timeout=JOB_TIMEOUT)
    assert done.status is JobStatus.COMPLETED, done.error
    return done


def test_re_evaluation_replaces_the_report_and_compares_with_the_champion_of_the_day(
    container: Container, tmp_path: Path
) -> None:
    from sklearn.dummy import DummyClassifier

    frame = bm.training_frame()
    (tmp_path / "weak").mkdir()
    weak = DummyClassifier(strategy="most_frequent").fit(frame[bm.FEATURES], frame.label)
    joblib.dump(weak, tmp_path / "weak" / "model.joblib")
    imports = [
        container.byom.submit_import(principal=ALICE, project="p", name="m", upload=path, filename=path.name)
        for path in (bm.joblib_classifier(tmp_path / "good"), tmp_path / "weak" / "model.joblib")
    ]
    good, challenger = (str(ended(container, job).result["version"]) for job in imports)

    def evaluate(version: str) -> Job:
        return container.evaluation.submit(principal=ALICE, project="p", name="m", version=version,
                                           dataset="data")

    first, _ = (ended(container, job) for job in [evaluate(challenger), evaluate(good)])
    assert first.result["champion"] is None
    container.lifecycle.decisions.approve(principal=ADMIN, project="p", package="m", version=good, reason="best")
    container.lifecycle.deployments.deploy(principal=ADMIN, project="p", package="m", version=good, reason="live")

    again = ended(container, evaluate(challenger))
    report = container.evaluation.report(principal=ALICE, project="p", name="m", version=challenger)
    assert report.status == "evaluated" and report.evaluation["job_id"] == again.id != first.id
    assert report.champion == again.result["champion"]
    assert report.champion is not None and report.champion["version"] == good
    rows = {row["metric"]: row for row in report.champion["metrics"]}
    # Always predicting the majority class: its accuracy is the majority's share, its ROC AUC 0.5.
    share = max(frame.label.mean(), 1 - frame.label.mean())
    assert report.metrics["accuracy"] == pytest.approx(share) and report.metrics["roc_auc"] == 0.5
    assert rows["roc_auc"]["delta"] < 0 and rows["roc_auc"]["better"] == "champion"
    assert report.champion["winner"] == "champion"
    with container.evaluation.open_plot(principal=ALICE, project="p", name="m", version=challenger,
                                        plot="confusion_matrix.png")[1] as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
