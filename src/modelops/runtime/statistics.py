"""Statistics of a dataset and of a model's predictions on it (the COMPUTE_STATISTICS job).

    python -m modelops.runtime.statistics --model-dir MODEL --spec spec.json --data DATA \
        --out statistics.json [--sample-rows 10000] [--bins 10] [--top-k 20]

Feature statistics cover every row of the dataset's CSV/Parquet files; the model scores a
random sample of at most --sample-rows rows (seed 0), which checks that it loads and scores
the recorded feature columns, and gives the distribution of its predictions. The format of
the output is documented in docs/statistics.md; ``drift.compute_drift`` reads it back.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.domain.byom import ModelFormat, ModelTask, check_feature_names
from modelops.runtime.model_import import run_step, write_json_atomically

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FORMAT_VERSION = 1
DEFAULT_BINS = 10
DEFAULT_TOP_K = 20
DEFAULT_SAMPLE_ROWS = 10_000
QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
# Predicted classes are all kept up to this many; beyond it the rest count as "other".
PREDICTION_TOP_K = 100


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def is_numeric(series: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def numeric_values(series: pd.Series) -> np.ndarray:
    """The finite values of a numeric column (NaN and ±inf count as missing)."""
    import numpy as np

    values = np.asarray(series.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    return values[np.isfinite(values)]


def histogram_edges(values: np.ndarray, bins: int) -> list[float]:
    """Reference bin edges: one bin per value when there are at most ``bins`` distinct values
    (edges at the midpoints), else quantile edges so each bin holds about the same share."""
    import numpy as np

    distinct = np.unique(values)
    if len(distinct) == 0:
        return []
    if len(distinct) == 1:
        return [float(distinct[0]), float(distinct[0])]
    if len(distinct) <= bins:
        middles = (distinct[:-1] + distinct[1:]) / 2
        return [float(distinct[0]), *(float(m) for m in middles), float(distinct[-1])]
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    return [float(e) for e in edges]


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> list[int]:
    """Counts per bin [e0,e1), [e1,e2), …, [e(n-1),en]. Values below the first edge fall in the
    first bin and values above the last in the last bin, so new data always lands somewhere."""
    import numpy as np

    if len(edges) < 2:
        return []
    nbins = len(edges) - 1
    index = np.searchsorted(np.asarray(edges[1:-1], dtype=float), values, side="right")
    return [int(c) for c in np.bincount(index, minlength=nbins)[:nbins]]


def category_labels(series: pd.Series) -> pd.Series:
    """Non-missing values of a categorical column as text, the keys frequencies use."""
    return series.dropna().astype(str)


def numeric_summary(series: pd.Series, *, bins: int) -> dict[str, Any]:
    import numpy as np

    values = numeric_values(series)
    summary: dict[str, Any] = {
        "kind": "numeric", "count": int(len(values)), "nulls": int(len(series) - len(values)),
        "min": None, "max": None, "mean": None, "std": None,
        "quantiles": dict.fromkeys(QUANTILES), "histogram": {"edges": [], "counts": []},
    }
    if len(values) == 0:
        return summary
    edges = histogram_edges(values, bins)
    summary.update(
        min=_finite(values.min()), max=_finite(values.max()), mean=_finite(values.mean()),
        std=_finite(values.std(ddof=1)) if len(values) > 1 else None,
        quantiles={k: _finite(v) for k, v in zip(QUANTILES, np.quantile(values, list(QUANTILES.values())), strict=True)},
        histogram={"edges": edges, "counts": bin_counts(values, edges)},
    )
    return summary


def categorical_summary(series: pd.Series, *, top_k: int) -> dict[str, Any]:
    labels = category_labels(series)
    counts = labels.value_counts(sort=False)
    # Most frequent first; equal counts by value, so the order does not depend on the data's.
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    top = ranked[:top_k]
    total = int(len(labels))
    return {
        "kind": "categorical", "count": total, "nulls": int(len(series) - total),
        "distinct": int(len(counts)),
        "top": [
            {"value": str(value), "count": int(count), "frequency": int(count) / total if total else 0.0}
            for value, count in top
        ],
        "other_count": total - sum(int(c) for _, c in top),
    }


def column_summary(series: pd.Series, *, bins: int = DEFAULT_BINS, top_k: int = DEFAULT_TOP_K) -> dict[str, Any]:
    if is_numeric(series):
        return numeric_summary(series, bins=bins)
    return categorical_summary(series, top_k=top_k)


def feature_statistics(
    frame: pd.DataFrame, features: Sequence[str], *, bins: int = DEFAULT_BINS, top_k: int = DEFAULT_TOP_K
) -> dict[str, dict[str, Any]]:
    return {name: column_summary(frame[name], bins=bins, top_k=top_k) for name in features}


def prediction_statistics(
    values: Sequence[Any] | np.ndarray, task: ModelTask, *, bins: int = DEFAULT_BINS,
    probabilities: np.ndarray | None = None, classes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Predicted classes as frequencies (classification) or a numeric summary (regression)."""
    import numpy as np
    import pandas as pd

    series = pd.Series(np.asarray(values))
    if task is ModelTask.CLASSIFICATION:
        summary = categorical_summary(series, top_k=PREDICTION_TOP_K)
        if probabilities is not None and classes is not None and len(classes) == probabilities.shape[1]:
            means = probabilities.mean(axis=0) if len(probabilities) else []
            summary["mean_probability"] = {str(c): _finite(m) for c, m in zip(classes, means, strict=True)}
    else:
        if not is_numeric(series):
            from modelops.runtime.scoring import ModelError

            raise ModelError("the regression model returned non-numeric predictions")
        summary = numeric_summary(series, bins=bins)
    summary["task"] = task.value
    return summary


def infer_task(values: np.ndarray) -> ModelTask:
    """For a package that does not say: integer-valued or text predictions are classes."""
    import numpy as np
    import pandas as pd

    series = pd.Series(values)
    if not is_numeric(series):
        return ModelTask.CLASSIFICATION
    finite = numeric_values(series)
    whole = bool(len(finite)) and bool(np.all(np.equal(np.mod(finite, 1), 0)))
    return ModelTask.CLASSIFICATION if whole and len(np.unique(finite)) <= 50 else ModelTask.REGRESSION


def compute_statistics(
    model_dir: Path, spec: dict[str, Any], data_dir: Path, *, sample_rows: int = DEFAULT_SAMPLE_ROWS,
    bins: int = DEFAULT_BINS, top_k: int = DEFAULT_TOP_K,
) -> dict[str, Any]:
    from modelops.runtime.scoring import ModelError, load_model, predict_in_chunks, read_table

    table = read_table(data_dir)
    if len(table) == 0:
        raise ModelError("the dataset has no rows")
    target = spec.get("target")
    features = spec.get("features")
    if not features:
        if spec.get("format") != ModelFormat.PACKAGE.value:
            raise ModelError("the model version records no feature columns")
        features = [c for c in table.columns if c != target]  # a package reads whole rows
    features = check_feature_names(features)
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise ModelError(
            f"wrong features for this dataset: the model expects {len(features)} feature "
            f"column(s) and the dataset lacks {len(missing)}: {', '.join(missing[:10])}"
            f"{' …' if len(missing) > 10 else ''} (it has: {', '.join(list(table.columns)[:20])})"
        )
    print(f"dataset: {len(table)} rows, {len(table.columns)} columns; {len(features)} features")
    stats = feature_statistics(table, features, bins=bins, top_k=top_k)
    sample = table.sample(n=sample_rows, random_state=0) if len(table) > sample_rows else table
    model = load_model(model_dir, {**spec, "features": features})
    print(f"model loaded ({model.format.value}); scoring {len(sample)} rows")
    prediction = predict_in_chunks(model, sample)
    task = model.task or (ModelTask(spec["task"]) if spec.get("task") else infer_task(prediction.values))
    result: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "rows": int(len(table)),
        "scored_rows": int(len(sample)),
        "model": {"format": model.format.value, "task": task.value, "features": features,
                  "classes": model.classes},
        "settings": {"bins": bins, "top_k": top_k, "sample_rows": sample_rows, "seed": 0},
        "features": stats,
        "predictions": prediction_statistics(
            prediction.values, task, bins=bins, probabilities=prediction.probabilities,
            classes=prediction.classes,
        ),
    }
    if target and target in table.columns:
        result["target"] = {"name": target, **column_summary(table[target], bins=bins, top_k=PREDICTION_TOP_K)}
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelops.runtime.statistics")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sample-rows", type=int, default=DEFAULT_SAMPLE_ROWS)
    parser.add_argument("--bins", type=int, default=DEFAULT_BINS)
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K)
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text(encoding="utf-8"))

    def step() -> None:
        result = compute_statistics(
            args.model_dir, spec, args.data, sample_rows=args.sample_rows, bins=args.bins,
            top_k=args.top_k,
        )
        write_json_atomically(args.out, result)
        print(f"statistics written: {len(result['features'])} features, "
              f"{result['scored_rows']} rows scored")

    return run_step(step)


if __name__ == "__main__":
    sys.exit(main())
