"""The import and statistics steps on model files made here with the real libraries.

A few tests run the steps exactly as a job does, as subprocesses (``python -m
modelops.runtime.…``); the many format and bad-file cases call the same ``main`` in this test
process, which saves an interpreter start (scikit-learn alone takes seconds to import).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import byom_models as bm

from modelops.domain.byom import ModelFormat, detect_model


def run_module(
    module: str, *args: str | Path, cwd: Path, subprocess_run: bool = False
) -> subprocess.CompletedProcess[str]:
    argv = [str(a) for a in args]
    if subprocess_run:
        return subprocess.run(
            [sys.executable, "-m", f"modelops.runtime.{module}", *argv],
            cwd=cwd, capture_output=True, text=True, timeout=180,
        )
    main = importlib.import_module(f"modelops.runtime.{module}").main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def import_model(
    path: Path, tmp: Path, *, features: list[str] | None = None, task: str | None = None,
    target: str | None = None, fmt: str | None = None, subprocess_run: bool = False,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """Detect like the server does, then run the import step in its own process."""
    model_dir = path if path.is_dir() else path.parent
    files = {
        p.relative_to(model_dir).as_posix(): p.read_bytes()[:256]
        for p in model_dir.rglob("*") if p.is_file()
    }
    detected = detect_model(files, ModelFormat(fmt) if fmt else None)
    spec = {"format": detected.format.value, "model_file": detected.model_file,
            "features": features, "task": task, "target": target}
    (tmp / "spec.json").write_text(json.dumps(spec))
    out = tmp / "signature.json"
    done = run_module("model_import", "--model-dir", model_dir, "--spec", tmp / "spec.json",
                      "--out", out, cwd=tmp, subprocess_run=subprocess_run)
    return done, json.loads(out.read_text()) if out.exists() else None


def last_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, done.stdout
    assert lines[-1].startswith("ERROR: "), done.stderr
    return lines[-1].removeprefix("ERROR: ")


GOOD: dict[str, tuple[Callable[[Path], Path], dict[str, Any], dict[str, Any]]] = {
    # name: (builder, declared, expected parts of the signature)
    "joblib-pipeline": (bm.joblib_classifier, {},
                        {"format": "joblib", "task": "classification", "features": bm.FEATURES,
                         "classes": [0, 1], "sources": {"features": "model", "task": "model"}}),
    "pickle-unnamed": (bm.pickle_regressor_unnamed, {"features": bm.FEATURES, "target": "y"},
                       {"format": "pickle", "task": "regression", "features": bm.FEATURES,
                        "target": "y", "sources": {"features": "user", "task": "model"}}),
    "onnx-skl2onnx": (bm.onnx_classifier, {"features": bm.FEATURES},
                      {"format": "onnx", "task": "classification", "classes": [0, 1]}),
    "onnx-external-inside": (lambda d: bm.onnx_linear(d, external_location="weights/w.bin"),
                             {"features": bm.FEATURES},
                             {"format": "onnx", "task": "regression"}),
    "pmml-tree": (bm.pmml_tree_classifier, {},
                  {"format": "pmml", "task": "classification", "features": bm.FEATURES,
                   "target": "label", "classes": [0, 1]}),
    "pmml-linear": (bm.pmml_linear_regression, {"task": "regression"},
                    {"format": "pmml", "task": "regression", "target": "y"}),
    "mlflow-sklearn": (bm.mlflow_sklearn, {},
                       {"format": "mlflow", "model_file": "MLmodel", "task": "classification",
                        "features": bm.FEATURES, "sources": {"features": "model", "task": "model"}}),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_import_step_reads_each_format(name: str, tmp_path: Path) -> None:
    builder, declared, expected = GOOD[name]
    path = builder(tmp_path / "upload")
    done, signature = import_model(path, tmp_path, **declared,
                                   subprocess_run=name == "joblib-pipeline")
    assert done.returncode == 0, done.stderr
    assert signature is not None
    for key, value in expected.items():
        assert signature[key] == value, (key, signature)
    assert signature["features"] == bm.FEATURES


BAD: dict[str, tuple[Callable[[Path], Path], dict[str, Any], str]] = {
    "pickle of a dict": (bm.not_a_model_pickle, {"features": bm.FEATURES, "task": "regression"},
                         "not a model: model.pkl holds a builtins.dict, which has no predict method"),
    "text file called .pkl": (lambda d: _write(d / "model.pkl", b"\x80\x04 this is text"), {},
                              "cannot load model.pkl as a pickle/joblib model"),
    "truncated onnx": (bm.corrupt_onnx, {"features": bm.FEATURES}, "not a valid ONNX model"),
    "onnx data outside": (lambda d: bm.onnx_linear(d / "m", external_location="../secret.bin"),
                          {"features": bm.FEATURES},
                          "unsafe ONNX external data: tensor 'W' points at '../secret.bin'"),
    "onnx data absolute": (lambda d: bm.onnx_linear(d, external_location="/etc/hostname", weights_file=False),
                           {"features": bm.FEATURES}, "unsafe ONNX external data"),
    "declared count differs": (bm.onnx_classifier, {"features": ["a", "b"]},
                               "wrong feature count: the model expects 3 input features but 2 were declared"),
    "features unknown": (bm.pickle_regressor_unnamed, {},
                         "the model does not name its 3 input features: declare them"),
    "names contradict": (bm.joblib_classifier, {"features": ["a", "c", "b"]},
                         "the declared features (a, c, b) differ from the model's own (a, b, c)"),
    "task contradicts": (bm.joblib_classifier, {"task": "regression"},
                         "contradicts the model, which is a classification model"),
    "pmml entity": (lambda d: bm.pmml_with_entity(d, Path("/etc/hostname")), {},
                    "refused model.pmml: the PMML declares a DTD or XML entities"),
}


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", sorted(BAD))
def test_import_step_refuses_bad_models_with_the_reason(name: str, tmp_path: Path) -> None:
    builder, declared, message = BAD[name]
    path = builder(tmp_path / "upload")
    done, signature = import_model(path, tmp_path, **declared,
                                   subprocess_run=name == "onnx data outside")
    assert done.returncode == 1
    assert signature is None  # nothing written: nothing to register
    assert message in last_error(done)


def test_unpickling_runs_in_the_job_process_not_the_caller(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    path = bm.malicious_pickle(tmp_path / "upload", marker)
    done, signature = import_model(path, tmp_path, features=["a"], task="regression",
                                   subprocess_run=True)
    assert signature is None
    assert "has no predict method" in last_error(done)
    pid, cwd = marker.read_text().split()
    assert int(pid) != os.getpid()
    assert Path(cwd) == tmp_path


def run_statistics(model_dir: Path, signature: dict[str, Any], data: Path, tmp: Path,
                   *extra: str, subprocess_run: bool = False,
                   ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    (tmp / "stats-spec.json").write_text(json.dumps(signature))
    out = tmp / "statistics.json"
    done = run_module("statistics", "--model-dir", model_dir, "--spec", tmp / "stats-spec.json",
                      "--data", data, "--out", out, *extra, cwd=tmp, subprocess_run=subprocess_run)
    return done, json.loads(out.read_text()) if out.exists() else None


def test_statistics_step_scores_a_sample_and_describes_features_and_predictions(tmp_path: Path) -> None:
    path = bm.pmml_tree_classifier(tmp_path / "upload")
    done, signature = import_model(path, tmp_path)
    assert done.returncode == 0, done.stderr
    frame = bm.training_frame(rows=500)
    frame.loc[:9, "a"] = None
    data = bm.write_dataset(tmp_path / "data", frame, parquet=True)
    done, stats = run_statistics(path.parent, signature, data, tmp_path, "--sample-rows", "200",
                                 subprocess_run=True)
    assert done.returncode == 0, done.stderr
    assert stats is not None
    assert stats["rows"] == 500 and stats["scored_rows"] == 200
    a = stats["features"]["a"]
    assert a["kind"] == "numeric" and a["count"] == 490 and a["nulls"] == 10
    assert a["min"] == pytest.approx(frame.a.min()) and a["max"] == pytest.approx(frame.a.max())
    assert a["mean"] == pytest.approx(frame.a.mean()) and a["std"] == pytest.approx(frame.a.std())
    assert a["quantiles"]["p50"] == pytest.approx(frame.a.median())
    assert sum(a["histogram"]["counts"]) == 490
    assert len(a["histogram"]["edges"]) == len(a["histogram"]["counts"]) + 1
    predictions = stats["predictions"]
    assert predictions["kind"] == "categorical" and predictions["count"] == 200
    assert {item["value"] for item in predictions["top"]} <= {"0", "1"}
    assert set(predictions["mean_probability"]) == {"0", "1"}
    assert stats["target"]["name"] == "label"


def test_statistics_describe_categorical_features_and_regression_predictions(tmp_path: Path) -> None:
    """A package-free regression model with an extra categorical column recorded as a feature:
    the pipeline below ignores it, but its frequencies are still described."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = bm.training_frame()
    columns = ["a", "b", "city"]
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough"),
        LinearRegression(),
    ).fit(frame[columns], frame.y)
    upload = tmp_path / "upload"
    upload.mkdir()
    import joblib

    joblib.dump(model, upload / "model.joblib")
    done, signature = import_model(upload / "model.joblib", tmp_path, target="y")
    assert done.returncode == 0, done.stderr
    assert signature is not None and signature["features"] == columns
    done, stats = run_statistics(upload, signature, bm.write_dataset(tmp_path / "data", frame), tmp_path)
    assert done.returncode == 0, done.stderr
    assert stats is not None
    city = stats["features"]["city"]
    assert city["kind"] == "categorical" and city["distinct"] == 3 and city["other_count"] == 0
    expected = frame.city.value_counts()
    assert {t["value"]: t["count"] for t in city["top"]} == expected.to_dict()
    assert city["top"][0]["value"] == "paris"
    assert stats["predictions"]["kind"] == "numeric"
    assert stats["predictions"]["mean"] == pytest.approx(frame.y.mean(), abs=0.05)


def test_statistics_fail_when_the_dataset_lacks_a_feature(tmp_path: Path) -> None:
    path = bm.joblib_classifier(tmp_path / "upload")
    done, signature = import_model(path, tmp_path)
    assert signature is not None
    data = bm.write_dataset(tmp_path / "data", bm.training_frame().drop(columns=["c"]))
    done, stats = run_statistics(path.parent, signature, data, tmp_path)
    assert done.returncode == 1 and stats is None
    assert "the model expects 3 feature column(s) and the dataset lacks 1: c" in last_error(done)


def test_statistics_fail_when_the_model_cannot_score(tmp_path: Path) -> None:
    path = bm.onnx_classifier(tmp_path / "upload")
    done, signature = import_model(path, tmp_path, features=bm.FEATURES)
    assert signature is not None
    frame = bm.training_frame()
    frame["c"] = "text"  # not convertible to the float input the graph takes
    done, stats = run_statistics(path.parent, signature, bm.write_dataset(tmp_path / "data", frame), tmp_path)
    assert done.returncode == 1 and stats is None
    assert "cannot convert the input columns to tensor(float)" in last_error(done)


def test_scoring_predicts_in_chunks_the_same_as_at_once(tmp_path: Path) -> None:
    from modelops.domain.byom import scoring_spec
    from modelops.runtime.scoring import ModelError, load_model, predict_in_chunks

    path = bm.joblib_classifier(tmp_path / "upload")
    frame = bm.training_frame(rows=50)
    spec = scoring_spec({"byom": {"format": "joblib", "model_file": "model.joblib", "features": bm.FEATURES}})
    model = load_model(path.parent, spec)
    whole = predict_in_chunks(model, frame)
    chunked = predict_in_chunks(model, frame, chunk_rows=7)
    assert (whole.values == chunked.values).all() and len(chunked.values) == 50
    assert chunked.probabilities is not None and chunked.probabilities.shape == (50, 2)
    assert chunked.classes == [0, 1]
    assert list(whole.values) == list(bm.classifier_pipeline().predict(frame[bm.FEATURES]))
    with pytest.raises(ModelError, match="lacks 1 of the model's 3 feature column"):
        predict_in_chunks(model, frame.drop(columns=["b"]))
    with pytest.raises(ModelError, match="leaves the model folder"):
        load_model(path.parent, {"format": "joblib", "model_file": "../model.joblib"})


def test_scoring_an_ml_package_calls_main_predict_with_a_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelops.domain.byom import scoring_spec
    from modelops.runtime.scoring import load_model, predict_in_chunks

    code = tmp_path / "zip" / "pkg"
    code.mkdir(parents=True)
    (code / "main.py").write_text(
        "import json\n"
        "class Main:\n"
        "    def __init__(self):\n"
        "        self.offset = json.load(open('params.json'))['offset']\n"
        "    def predict(self, frame):\n"
        "        return (frame['a'] + self.offset).tolist()\n"
    )
    (code / "params.json").write_text('{"offset": 10}')
    monkeypatch.chdir(tmp_path)  # load_package enters the code folder; restored after the test
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, "main", None)  # removed again after the test
    model = load_model(tmp_path / "zip", scoring_spec({}, "pkg"))
    frame = bm.training_frame(rows=30)
    prediction = predict_in_chunks(model, frame, chunk_rows=4)
    assert list(prediction.values) == pytest.approx(list(frame.a + 10))
    assert prediction.probabilities is None
