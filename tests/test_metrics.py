"""Metrics by task and report plots (runtime.metrics), checked against hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from modelops.runtime.metrics import compute_metrics, write_report_plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_binary_classification_metrics() -> None:
    y_true = [0, 0, 0, 0, 1, 1, 1, 1]
    y_pred = [0, 0, 0, 1, 1, 1, 0, 0]
    # Positive class 1: TP=2, FP=1, FN=2, TN=3.
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.4, 0.6],
                      [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.75, 0.25]])
    m = compute_metrics("classification", y_true, y_pred, probabilities=proba, classes=[0, 1])
    assert m["n_samples"] == 8 and m["average"] == "binary" and m["positive_label"] == 1
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert m["confusion_matrix"] == {"labels": [0, 1], "matrix": [[3, 1], [2, 2]]}
    # Positive scores 0.8, 0.7, 0.4, 0.25 against negatives 0.1, 0.2, 0.3, 0.6: 13 of 16 pairs.
    assert m["roc_auc"] == pytest.approx(13 / 16)


def test_multiclass_text_labels_use_macro_averages() -> None:
    y_true = ["cat", "cat", "dog", "dog", "fox", "fox"]
    y_pred = ["cat", "dog", "dog", "dog", "fox", "cat"]
    m = compute_metrics("classification", y_true, y_pred)
    assert m["average"] == "macro" and m["roc_auc"] is None
    assert m["accuracy"] == pytest.approx(4 / 6)
    # Per class precision: cat 1/2, dog 2/3, fox 1; recall: cat 1/2, dog 1, fox 1/2.
    assert m["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert m["confusion_matrix"]["labels"] == ["cat", "dog", "fox"]
    assert m["confusion_matrix"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_multiclass_roc_auc_one_vs_rest() -> None:
    y_true = [0, 1, 2, 0, 1, 2]
    proba = np.eye(3)[[0, 1, 2, 0, 1, 2]] * 0.8 + 0.2 / 3
    m = compute_metrics("classification", y_true, y_true, probabilities=proba, classes=[0, 1, 2])
    assert m["roc_auc"] == pytest.approx(1.0) and m["f1"] == pytest.approx(1.0)


def test_regression_metrics() -> None:
    y_true = [3.0, -0.5, 2.0, 7.0]
    y_pred = [2.5, 0.0, 2.0, 8.0]
    m = compute_metrics("regression", y_true, y_pred)
    assert m["mae"] == pytest.approx((0.5 + 0.5 + 0 + 1) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 0.25 + 0 + 1) / 4))
    mean = sum(y_true) / 4
    ss_tot = sum((y - mean) ** 2 for y in y_true)
    assert m["r2"] == pytest.approx(1 - 1.5 / ss_tot)
    assert "accuracy" not in m


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="3 true values but 2 predictions"):
        compute_metrics("regression", [1, 2, 3], [1, 2])


def test_classification_plots_are_png_files(tmp_path: Path) -> None:
    y_true = [0, 1, 1, 0, 1]
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4], [0.9, 0.1]])
    written = write_report_plots("classification", y_true, proba.argmax(axis=1), tmp_path / "report",
                                 probabilities=proba, classes=[0, 1])
    assert [p.name for p in written] == ["confusion_matrix.png", "roc_curve.png"]
    for path in written:
        assert path.read_bytes().startswith(PNG) and path.stat().st_size > 1000


def test_regression_plot_is_a_residuals_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    written = write_report_plots("regression", y, y + rng.normal(scale=0.1, size=50), tmp_path)
    assert [p.name for p in written] == ["residuals.png"]
    assert written[0].read_bytes().startswith(PNG)


def test_no_roc_curve_without_probabilities(tmp_path: Path) -> None:
    written = write_report_plots("classification", [0, 1], [0, 1], tmp_path)
    assert [p.name for p in written] == ["confusion_matrix.png"]
