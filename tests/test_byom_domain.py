"""Pure BYOM rules: format detection, signatures, and the champion comparison."""

from __future__ import annotations

import pytest

from modelops.domain.byom import (
    Introspection,
    ModelFormat,
    ModelTask,
    detect_model,
    parse_features,
    parse_format,
    resolve_signature,
    signature_from_dict,
)
from modelops.domain.champion import compare_to_champion
from modelops.domain.errors import InvalidInput

PICKLE_HEAD = b"\x80\x04\x95"


@pytest.mark.parametrize(("files", "declared", "expected"), [
    ({"model.onnx": b"\x08\x07"}, None, (ModelFormat.ONNX, "model.onnx")),
    ({"m/model.pkl": PICKLE_HEAD, "readme.md": b"#"}, None, (ModelFormat.PICKLE, "m/model.pkl")),
    ({"model.joblib": b"x"}, None, (ModelFormat.JOBLIB, "model.joblib")),
    ({"tree.xml": b"<?xml version='1.0'?><PMML>"}, None, (ModelFormat.PMML, "tree.xml")),
    ({"MLmodel": b"flavors:", "model.pkl": PICKLE_HEAD}, None, (ModelFormat.MLFLOW, "MLmodel")),
    ({"MLmodel": b"flavors:", "model.pkl": PICKLE_HEAD}, ModelFormat.PICKLE, (ModelFormat.PICKLE, "model.pkl")),
    ({"model.pkl": PICKLE_HEAD}, ModelFormat.JOBLIB, (ModelFormat.JOBLIB, "model.pkl")),
    ({"blob": PICKLE_HEAD}, None, (ModelFormat.PICKLE, "blob")),
    ({"weights": b"\x08\x07"}, ModelFormat.ONNX, (ModelFormat.ONNX, "weights")),
    ({"model.onnx": b"", "weights.bin": b"\0"}, None, (ModelFormat.ONNX, "model.onnx")),
])
def test_detection_picks_the_model_file(
    files: dict[str, bytes], declared: ModelFormat | None, expected: tuple[ModelFormat, str]
) -> None:
    found = detect_model(files, declared)
    assert (found.format, found.model_file) == expected


@pytest.mark.parametrize(("files", "declared", "message"), [
    ({"notes.txt": b"hello"}, None, "cannot tell the model format of notes.txt"),
    ({"a.onnx": b"", "b.pkl": PICKLE_HEAD}, None, "models of several formats"),
    ({"a.onnx": b"", "b.onnx": b""}, None, "several onnx files (a.onnx, b.onnx)"),
    ({"model.pkl": PICKLE_HEAD}, ModelFormat.MLFLOW, "needs an MLmodel file"),
    ({"model.pkl": PICKLE_HEAD, "x.bin": b""}, ModelFormat.ONNX, "holds no onnx model file"),
    ({}, None, "holds no files"),
])
def test_detection_explains_what_it_cannot_decide(
    files: dict[str, bytes], declared: ModelFormat | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        detect_model(files, declared)


def test_parsing_of_user_input() -> None:
    assert parse_format("PKL") is ModelFormat.PICKLE and parse_format(" ") is None
    with pytest.raises(InvalidInput, match="unknown model format 'package'"):
        parse_format("package")  # an ML package is uploaded, not imported
    assert parse_features(" a, b ,c") == ["a", "b", "c"]
    with pytest.raises(InvalidInput, match="non-empty"):
        parse_features("a,,b")


def resolve(found: Introspection, **declared: object) -> object:
    return resolve_signature(format=ModelFormat.ONNX, model_file="model.onnx", found=found,
                             declared_features=declared.get("features"),  # type: ignore[arg-type]
                             declared_task=declared.get("task"),  # type: ignore[arg-type]
                             declared_target=declared.get("target"))  # type: ignore[arg-type]


def test_the_file_wins_where_it_speaks_and_the_user_fills_gaps() -> None:
    signature = resolve(Introspection(n_features=2, task=ModelTask.REGRESSION), features=["x", "y"],
                        target="z")
    assert signature.features == ["x", "y"] and signature.target == "z"  # type: ignore[attr-defined]
    assert signature.sources == {"features": "user", "task": "model"}  # type: ignore[attr-defined]
    named = resolve(Introspection(features=["x", "y"], classes=[0, 1]), task=ModelTask.CLASSIFICATION)
    assert named.sources == {"features": "model", "task": "user"}  # type: ignore[attr-defined]
    assert named.classes == [0, 1]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("found", "declared", "message"), [
    (Introspection(n_features=3, task=ModelTask.REGRESSION), {}, "does not name its 3 input features"),
    (Introspection(n_features=3, task=ModelTask.REGRESSION), {"features": ["a"]},
     "the model expects 3 input features but 1 were declared"),
    (Introspection(features=["a", "b"]), {"task": ModelTask.REGRESSION, "features": ["b", "a"]},
     "differ from the model's own"),
    (Introspection(features=["a"], task=ModelTask.CLASSIFICATION), {"task": ModelTask.REGRESSION},
     "contradicts the model"),
    (Introspection(features=["a"]), {}, "declare task=classification or task=regression"),
    (Introspection(features=["a", "y"], task=ModelTask.REGRESSION), {"target": "y"}, "also a feature"),
])
def test_disagreements_fail_with_the_reason(found: Introspection, declared: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        resolve(found, **declared)


def test_a_job_written_signature_is_checked_before_it_is_trusted() -> None:
    good = resolve(Introspection(features=["a"], task=ModelTask.REGRESSION)).as_dict()  # type: ignore[attr-defined]
    assert signature_from_dict(good).features == ["a"]
    for bad, message in [
        ({**good, "model_file": "../etc/passwd"}, "leaves the model folder"),
        ({**good, "features": []}, "lacks its features"),
        ({**good, "features": ["a", "a"]}, "duplicate"),
        ({**good, "classes": [{"x": 1}]}, "plain values"),
        ({**good, "task": "ranking"}, "unknown task"),
        ([1, 2], "not a JSON object"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            signature_from_dict(bad)


def test_champion_comparison_knows_which_way_is_better() -> None:
    result = compare_to_champion(
        {"mae": 1.0, "rmse": 2.0, "r2": 0.8, "n_samples": 10},
        {"mae": 1.5, "rmse": 1.0, "r2": 0.8, "n_samples": 12},
    )
    rows = {r.metric: r for r in result.metrics}
    assert set(rows) == {"mae", "rmse", "r2"}  # counts are reported, not compared
    assert (rows["mae"].delta, rows["mae"].better, rows["mae"].lower_is_better) == (-0.5, "challenger", True)
    assert (rows["rmse"].delta, rows["rmse"].better) == (1.0, "champion")
    assert rows["r2"].better == "tie"
    # No primary metric named: the first preferred one both report decides (rmse).
    assert result.primary == "rmse" and result.winner == "champion"
    by_mae = compare_to_champion({"mae": 1.0, "rmse": 2.0}, {"mae": 1.5, "rmse": 1.0}, primary="mae")
    assert by_mae.winner == "challenger"
    scores = compare_to_champion({"accuracy": 0.9, "f1": 0.7, "roc_auc": None},
                                 {"accuracy": 0.8, "f1": 0.75, "confusion_matrix": {"labels": []}})
    assert scores.primary == "f1" and scores.winner == "champion"
    assert {r.metric: r.better for r in scores.metrics} == {"accuracy": "challenger", "f1": "champion"}
    assert compare_to_champion({"f1": 0.5}, None).winner == "challenger"
    assert compare_to_champion({"f1": 0.5}, {"accuracy": 0.9}).winner is None
    with pytest.raises(InvalidInput, match="'auc' is not reported"):
        compare_to_champion({"f1": 0.5}, {"f1": 0.4}, primary="auc")
    assert compare_to_champion({"f1": 0.5}, {"f1": 0.4}).as_dict()["metrics"][0]["better"] == "challenger"
