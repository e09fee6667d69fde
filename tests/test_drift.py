"""Population stability index of new data against stored statistics (runtime.drift)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from support.byom_models import training_frame

from modelops.domain.byom import ModelTask
from modelops.runtime.drift import EPSILON, compute_drift, population_stability_index, psi_level
from modelops.runtime.statistics import feature_statistics, prediction_statistics

FEATURES = ["a", "b", "city"]


def reference_of(frame: pd.DataFrame, predictions: np.ndarray | None = None) -> dict[str, object]:
    """Statistics as the COMPUTE_STATISTICS job stores them (round-tripped through JSON)."""
    stats: dict[str, object] = {"features": feature_statistics(frame, FEATURES)}
    if predictions is not None:
        stats["predictions"] = prediction_statistics(predictions, ModelTask.CLASSIFICATION)
    return json.loads(json.dumps(stats))


def test_psi_of_equal_shares_is_zero_and_grows_with_the_shift() -> None:
    assert population_stability_index([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)
    small = population_stability_index([50, 50], [55, 45])
    large = population_stability_index([50, 50], [90, 10])
    assert 0 < small < 0.1 <= 0.25 < large
    expected = (0.9 - 0.5) * math.log(0.9 / 0.5) + (0.1 - 0.5) * math.log(0.1 / 0.5)
    assert large == pytest.approx(expected)
    assert [psi_level(x) for x in (0.05, 0.1, 0.2, 0.25, 3.0)] == [
        "stable", "moderate", "moderate", "significant", "significant"]


def test_empty_bins_are_floored_at_epsilon_not_infinite() -> None:
    psi = population_stability_index([100, 0], [50, 50])
    expected = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    assert psi == pytest.approx(expected)
    assert math.isfinite(psi)
    looser = population_stability_index([100, 0], [50, 50], epsilon=1e-2)
    assert looser < psi


def test_same_data_shows_no_drift() -> None:
    frame = training_frame(rows=1000)
    drift = compute_drift(reference_of(frame), frame)
    assert set(drift["features"]) == set(FEATURES)
    for item in drift["features"].values():
        assert item["psi"] == pytest.approx(0.0, abs=1e-9) and item["level"] == "stable"
    assert drift["drifted_features"] == [] and drift["absent_features"] == []
    assert drift["epsilon"] == EPSILON and drift["rows"] == 1000


def test_a_shifted_numeric_feature_drifts_and_the_others_do_not() -> None:
    reference = reference_of(training_frame(rows=2000, seed=1))
    new = training_frame(rows=2000, seed=2)
    new["a"] = new["a"] + 3  # far beyond the reference's range: lands in the last bin
    drift = compute_drift(reference, new)
    a = drift["features"]["a"]
    assert a["kind"] == "numeric" and a["level"] == "significant" and a["psi"] > 1
    assert a["bins"][-1]["actual"] > 0.9
    assert sum(b["actual"] for b in a["bins"]) == pytest.approx(1.0)
    assert drift["features"]["b"]["level"] == "stable"
    assert drift["drifted_features"] == ["a"]
    assert drift["max_psi"] == pytest.approx(a["psi"])


def test_unseen_categories_count_in_the_other_bin() -> None:
    reference = {"features": {"city": {
        "kind": "categorical", "count": 100, "nulls": 0, "distinct": 2,
        "top": [{"value": "x", "count": 50, "frequency": 0.5}, {"value": "y", "count": 50, "frequency": 0.5}],
        "other_count": 0,
    }}}
    new = pd.DataFrame({"city": ["x"] * 50 + ["y"] * 25 + ["z"] * 20 + ["w"] * 5})
    city = compute_drift(reference, new)["features"]["city"]
    assert [b["bin"] for b in city["bins"]] == ["x", "y", "__other__"]
    assert city["bins"][2] == {"bin": "__other__", "expected": 0.0, "actual": 0.25}
    assert city["unseen_categories"] == ["w", "z"] and city["unseen_count"] == 2
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.25 - EPSILON) * math.log(0.25 / EPSILON)
    assert city["psi"] == pytest.approx(expected)


def test_missing_values_are_their_own_bin_and_absent_columns_are_listed() -> None:
    frame = training_frame(rows=500)
    reference = reference_of(frame)
    new = frame.drop(columns=["city"]).copy()
    new.loc[:249, "b"] = np.nan
    drift = compute_drift(reference, new)
    assert drift["absent_features"] == ["city"] and "city" not in drift["features"]
    b = drift["features"]["b"]
    assert b["bins"][-1]["bin"] == "__missing__"
    assert b["bins"][-1]["expected"] == 0.0 and b["bins"][-1]["actual"] == pytest.approx(0.5)
    assert b["level"] == "significant"


def test_prediction_drift_uses_the_stored_prediction_distribution() -> None:
    frame = training_frame(rows=1000)
    predictions = (frame.a + frame.b > 0).astype(int).to_numpy()
    reference = reference_of(frame, predictions)
    same = compute_drift(reference, frame, predictions)
    assert same["predictions"]["psi"] == pytest.approx(0.0)
    flipped = compute_drift(reference, frame, np.ones(1000, dtype=int))
    assert flipped["predictions"]["kind"] == "categorical"
    assert flipped["predictions"]["level"] == "significant"
    assert compute_drift(reference, frame)["predictions"] is None


def test_reference_without_features_is_refused() -> None:
    with pytest.raises(ValueError, match="no 'features' section"):
        compute_drift({}, pd.DataFrame({"a": [1.0]}))
