"""Population stability index (PSI) of new data against stored reference statistics.

One function, ``compute_drift``, used by batch prediction (and anything else that scores new
data): it bins the new values with the reference's own bins and compares the shares.

    PSI = Σ over bins (actual% − expected%) × ln(actual% / expected%)

Rules (also in docs/statistics.md):
- Numeric features use the reference histogram's edges. New values below the first edge count
  in the first bin and values above the last edge in the last bin.
- Categorical features use the reference's top values plus one "other" bin holding the
  reference's remaining values; a category the reference never listed (unseen, or beyond its
  top-k) counts in "other". New categories therefore raise PSI through that bin.
- Missing values (null, NaN, ±inf) are one more bin, used when either side has any.
- A share of zero would make ln() infinite, so every share is floored at ``epsilon`` (1e-4 by
  default) on both sides before the sum; shares are not renormalised after flooring.
- Levels: PSI < 0.1 stable, < 0.25 moderate, otherwise significant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelops.runtime.statistics import bin_counts, category_labels, is_numeric, numeric_values

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FORMAT_VERSION = 1
EPSILON = 1e-4
STABLE_BELOW = 0.1
MODERATE_BELOW = 0.25
OTHER = "__other__"
MISSING = "__missing__"


def psi_level(psi: float) -> str:
    if psi < STABLE_BELOW:
        return "stable"
    return "moderate" if psi < MODERATE_BELOW else "significant"


def population_stability_index(
    expected: Sequence[float], actual: Sequence[float], *, epsilon: float = EPSILON
) -> float:
    """PSI of two count (or share) vectors over the same bins; empty bins floored at epsilon."""
    expected_total = float(sum(expected))
    actual_total = float(sum(actual))
    if expected_total <= 0 or actual_total <= 0:
        return 0.0
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e_share = max(e / expected_total, epsilon)
        a_share = max(a / actual_total, epsilon)
        total += (a_share - e_share) * math.log(a_share / e_share)
    return total


def _bins_result(labels: list[str], expected: list[float], actual: list[float], epsilon: float) -> dict[str, Any]:
    psi = population_stability_index(expected, actual, epsilon=epsilon)
    e_total, a_total = sum(expected) or 1.0, sum(actual) or 1.0
    return {
        "psi": psi,
        "level": psi_level(psi),
        "bins": [
            {"bin": label, "expected": e / e_total, "actual": a / a_total}
            for label, e, a in zip(labels, expected, actual, strict=True)
        ],
    }


def _numeric_drift(reference: Mapping[str, Any], series: pd.Series, epsilon: float) -> dict[str, Any]:
    edges = list(reference.get("histogram", {}).get("edges") or [])
    ref_counts = [float(c) for c in reference.get("histogram", {}).get("counts") or []]
    if not is_numeric(series):
        # Text where the reference had numbers: unparseable values count as missing.
        import pandas as pd

        series = pd.to_numeric(series, errors="coerce")
    values = numeric_values(series)
    new_counts = [float(c) for c in bin_counts(values, edges)]
    labels = [
        f"[{edges[i]:.6g}, {edges[i + 1]:.6g}{']' if i == len(edges) - 2 else ')'}"
        for i in range(len(edges) - 1)
    ]
    new_missing = float(len(series) - len(values))
    ref_missing = float(reference.get("nulls") or 0)
    if ref_missing or new_missing:
        labels.append(MISSING)
        ref_counts.append(ref_missing)
        new_counts.append(new_missing)
    return {"kind": "numeric", **_bins_result(labels, ref_counts, new_counts, epsilon)}


def _categorical_drift(reference: Mapping[str, Any], series: pd.Series, epsilon: float) -> dict[str, Any]:
    top = [(str(item["value"]), float(item["count"])) for item in reference.get("top") or []]
    known = {value for value, _ in top}
    labels_series = category_labels(series)
    counts = labels_series.value_counts()
    labels = [value for value, _ in top] + [OTHER]
    expected = [count for _, count in top] + [float(reference.get("other_count") or 0)]
    actual = [float(counts.get(value, 0)) for value, _ in top]
    actual.append(float(sum(int(c) for v, c in counts.items() if v not in known)))
    new_missing = float(len(series) - len(labels_series))
    ref_missing = float(reference.get("nulls") or 0)
    if ref_missing or new_missing:
        labels.append(MISSING)
        expected.append(ref_missing)
        actual.append(new_missing)
    unseen = sorted(v for v in counts.index if v not in known)
    result = {"kind": "categorical", **_bins_result(labels, expected, actual, epsilon)}
    result["unseen_categories"] = unseen[:20]
    result["unseen_count"] = len(unseen)
    return result


def _drift_of(reference: Mapping[str, Any], series: pd.Series, epsilon: float) -> dict[str, Any]:
    if reference.get("kind") == "numeric":
        return _numeric_drift(reference, series, epsilon)
    return _categorical_drift(reference, series, epsilon)


def compute_drift(
    reference: Mapping[str, Any], data: pd.DataFrame,
    predictions: Sequence[Any] | np.ndarray | pd.Series | None = None, *,
    epsilon: float = EPSILON,
) -> dict[str, Any]:
    """PSI per feature of ``data`` and of ``predictions`` against stored ``reference`` statistics
    (the output of the COMPUTE_STATISTICS job). Features absent from ``data`` are listed, not
    scored. The result's format is documented in docs/statistics.md."""
    import numpy as np
    import pandas as pd

    if not isinstance(reference.get("features"), Mapping):
        raise ValueError("reference statistics have no 'features' section")
    features: dict[str, Any] = {}
    absent: list[str] = []
    for name, ref in reference["features"].items():
        if name not in data.columns:
            absent.append(name)
            continue
        features[name] = _drift_of(ref, data[name], epsilon)
    prediction_drift = None
    if predictions is not None and isinstance(reference.get("predictions"), Mapping):
        prediction_drift = _drift_of(reference["predictions"], pd.Series(np.asarray(predictions)), epsilon)
    scored = {name: item["psi"] for name, item in features.items()}
    return {
        "format_version": FORMAT_VERSION,
        "epsilon": epsilon,
        "rows": int(len(data)),
        "features": features,
        "predictions": prediction_drift,
        "absent_features": absent,
        "max_psi": max(scored.values(), default=None),
        "drifted_features": sorted(n for n, p in scored.items() if p >= STABLE_BELOW),
    }
