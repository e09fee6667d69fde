"""The batch prediction job's process (``modelops.runtime.batch_predict``) on real files:
chunked reading of CSV and Parquet, columns that widen further down, the output's columns,
drift against reference statistics, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from support.lifecycle import MAIN_PY

from modelops.runtime.batch_predict import DriftSample, score_stream
from modelops.runtime.scoring import ModelError

SPEC = {"format": "package", "code_root": ""}


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Loading a package imports its main.py and enters its folder: undo both afterwards.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "main", raising=False)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "main.py").write_text(MAIN_PY)
    return folder


def frame(rows: int, start: int = 0) -> pd.DataFrame:
    values = np.arange(start, start + rows)
    return pd.DataFrame({"id": values, "sepal_length": 4.0 + (values % 40) / 10.0, "kind": "a"})


def score(model_dir: Path, data: Path, tmp_path: Path, **options: object) -> tuple[dict, pd.DataFrame]:  # type: ignore[type-arg]
    out = tmp_path / "out.parquet"
    summary = score_stream(
        model_dir=model_dir, spec=SPEC, data=data, out=out, job_id=77,
        chunk_rows=int(options.get("chunk_rows", 1000)), reference=options.get("reference"),  # type: ignore[arg-type]
        drift_sample=int(options.get("drift_sample", 500)),
    )
    return summary, pq.read_table(out).to_pandas()


def test_every_row_of_csv_and_parquet_files_is_scored_in_chunks(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "part").mkdir(parents=True)
    frame(2500).to_csv(data / "a.csv", index=False)
    frame(1200, start=2500).to_parquet(data / "part" / "b.parquet")
    summary, out = score(model_dir, data, tmp_path, chunk_rows=700)
    assert summary["rows"] == 3700 and summary["files"] == 2
    assert list(out.columns) == ["id", "sepal_length", "kind", "prediction", "job_id"]
    assert out["id"].tolist() == list(range(3700))  # every row once, in file order
    expected = ["big" if v > 5.8 else "small" for v in out["sepal_length"]]
    assert out["prediction"].tolist() == expected
    assert set(out["job_id"]) == {77}
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_row_groups >= 5  # written chunk by chunk


def test_a_column_that_turns_decimal_far_down_a_csv_is_widened_not_fatal(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rows = frame(120_000)  # well past pyarrow's first block, where types are inferred
    rows["count"] = np.arange(len(rows))
    lines = rows.to_csv(index=False).splitlines()
    lines[-1] = lines[-1].rsplit(",", 1)[0] + ",0.5"  # the only decimal, in the last row
    (data / "big.csv").write_text("\n".join(lines) + "\n")
    summary, out = score(model_dir, data, tmp_path, chunk_rows=50_000)
    assert summary["rows"] == 120_000
    assert out["count"].dtype == np.float64 and out["count"].iloc[-1] == 0.5


def test_drift_is_measured_on_a_bounded_sample_against_the_reference(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    frame(3000).to_csv(data / "a.csv", index=False)
    reference = {"features": {"sepal_length": {
        "kind": "numeric", "nulls": 0,
        "histogram": {"edges": [0.0, 5.0, 6.0, 10.0], "counts": [0, 0, 100]},  # all old rows were large
    }}}
    summary, _ = score(model_dir, data, tmp_path, reference=reference, drift_sample=400)
    drift = summary["drift"]
    assert drift["sample_rows"] == 400 and drift["rows"] == 400
    assert drift["drifted_features"] == ["sepal_length"] and drift["max_psi"] > 0.25


def test_the_drift_sample_is_uniform_over_the_whole_stream() -> None:
    sample = DriftSample(["x"], size=1000, seed=1)
    for start in range(0, 100_000, 5000):
        chunk = pd.DataFrame({"x": np.arange(start, start + 5000)})
        sample.add(chunk, chunk["x"].to_numpy())
    assert sample.frame is not None and len(sample.frame) == 1000
    assert 40_000 < sample.frame["x"].mean() < 60_000  # not just the first or last rows


def test_clear_errors_for_missing_columns_and_data(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(ModelError, match="no CSV or Parquet"):
        score(model_dir, data, tmp_path)
    frame(10).to_csv(data / "a.csv", index=False)
    frame(10).rename(columns={"kind": "type"}).to_csv(data / "b.csv", index=False)
    with pytest.raises(ModelError, match="other columns than the first file"):
        score(model_dir, data, tmp_path)
    assert not (tmp_path / "out.parquet").exists()


def test_the_job_process_reports_a_failing_model_as_its_last_error(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"petal": [1.0, 2.0]}).to_csv(data / "a.csv", index=False)
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    done = subprocess.run(
        [sys.executable, "-m", "modelops.runtime.batch_predict", "--model-dir", str(model_dir),
         "--spec", str(tmp_path / "spec.json"), "--data", str(data), "--out", str(tmp_path / "o.parquet"),
         "--summary", str(tmp_path / "s.json"), "--job-id", "1"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("ERROR: the model failed to score: KeyError")
    assert not (tmp_path / "o.parquet").exists() and not (tmp_path / "s.json").exists()
