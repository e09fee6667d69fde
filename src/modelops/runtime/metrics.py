"""Model metrics by task and the report plots, for evaluation jobs (inside a job's process).

    metrics = compute_metrics(task, y_true, y_pred, probabilities=proba, classes=classes)
    plots = write_report_plots(task, y_true, y_pred, out_dir, probabilities=proba, classes=classes)

Classification: accuracy, precision, recall, f1 (binary: of the positive class, the last of the
sorted labels or of ``classes``; more than two classes: macro averages), roc_auc when
probabilities are given (binary, or one-vs-rest macro) with, for binary tasks, the curve's points
(``roc_curve``: fpr, tpr, at most 200), and the confusion matrix (rows: true label, columns:
predicted, in ``labels`` order). Regression: mae, rmse, r2.
Plots are PNG files written with matplotlib's Agg backend (no display needed): the confusion
matrix and ROC curve for classification, residuals for regression. Compare two models' metrics
with ``modelops.domain.champion.compare_to_champion``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.domain.byom import ModelTask

if TYPE_CHECKING:
    import numpy as np

ROC_CURVE_POINTS = 200


def _float(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _labels(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[Any] | None) -> list[Any]:
    import numpy as np

    if classes is not None:
        seen = set(np.unique(y_true).tolist()) | set(np.unique(y_pred).tolist())
        extra = sorted(seen - set(classes), key=_sort_key)
        return list(classes) + extra
    return sorted(set(np.unique(y_true).tolist()) | set(np.unique(y_pred).tolist()), key=_sort_key)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def _aligned(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    true, pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if len(true) != len(pred):
        raise ValueError(f"{len(true)} true values but {len(pred)} predictions")
    if len(true) == 0:
        raise ValueError("no rows to compute metrics on")
    return true, pred


def _plain(values: Sequence[Any]) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in values]


def classification_metrics(
    y_true: Any, y_pred: Any, *, probabilities: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    import numpy as np
    from sklearn import metrics as skm

    true, pred = _aligned(y_true, y_pred)
    # Labels and predictions of different types (1 vs "1") would never match: compare as text
    # only when the types differ.
    if true.dtype.kind != pred.dtype.kind and (true.dtype.kind in "OUS" or pred.dtype.kind in "OUS"):
        true, pred = true.astype(str), pred.astype(str)
        classes = [str(c) for c in classes] if classes is not None else None
    labels = _labels(true, pred, classes)
    binary = len(labels) == 2
    average = "binary" if binary else "macro"
    extra: dict[str, Any] = {"pos_label": labels[-1]} if binary else {"labels": labels}
    result: dict[str, Any] = {
        "n_samples": int(len(true)),
        "accuracy": _float(skm.accuracy_score(true, pred)),
        "precision": _float(skm.precision_score(true, pred, average=average, zero_division=0, **extra)),
        "recall": _float(skm.recall_score(true, pred, average=average, zero_division=0, **extra)),
        "f1": _float(skm.f1_score(true, pred, average=average, zero_division=0, **extra)),
        "average": average,
        "roc_auc": None,
        "confusion_matrix": {
            "labels": _plain(labels),
            "matrix": skm.confusion_matrix(true, pred, labels=labels).tolist(),
        },
    }
    if binary:
        result["positive_label"] = _plain([labels[-1]])[0]
    proba_classes = list(classes) if classes is not None else None
    if probabilities is not None and proba_classes and len(np.unique(true)) > 1:
        proba = np.asarray(probabilities, dtype=float)
        try:
            if proba.shape[1] == 2 and binary:
                positive = proba_classes.index(labels[-1]) if labels[-1] in proba_classes else 1
                result["roc_auc"] = _float(skm.roc_auc_score(true == labels[-1], proba[:, positive]))
                fpr, tpr, _ = skm.roc_curve(true == labels[-1], proba[:, positive])
                result["roc_curve"] = _thinned_curve(fpr, tpr)
            elif proba.shape[1] == len(proba_classes) > 2:
                result["roc_auc"] = _float(
                    skm.roc_auc_score(true, proba, multi_class="ovr", average="macro", labels=proba_classes)
                )
        except ValueError:
            result["roc_auc"] = None  # e.g. a class absent from y_true: AUC is undefined
    return result


def _thinned_curve(fpr: np.ndarray, tpr: np.ndarray, points: int = ROC_CURVE_POINTS) -> dict[str, list[float]]:
    """The ROC curve's points, at most ``points`` of them (ends kept), small enough to store
    with the metrics so a page can draw the curve without the plot file."""
    import numpy as np

    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    return {"fpr": [float(x) for x in fpr[keep]], "tpr": [float(y) for y in tpr[keep]]}


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    import numpy as np
    from sklearn import metrics as skm

    true, pred = _aligned(y_true, y_pred)
    true, pred = true.astype(float), pred.astype(float)
    return {
        "n_samples": int(len(true)),
        "mae": _float(skm.mean_absolute_error(true, pred)),
        "rmse": _float(np.sqrt(skm.mean_squared_error(true, pred))),
        "r2": _float(skm.r2_score(true, pred)) if len(true) > 1 else None,
    }


def compute_metrics(
    task: ModelTask | str, y_true: Any, y_pred: Any, *, probabilities: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    if ModelTask(task) is ModelTask.CLASSIFICATION:
        return classification_metrics(y_true, y_pred, probabilities=probabilities, classes=classes)
    return regression_metrics(y_true, y_pred)


# --------------------------------------------------------------------------- plots


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only: never look for a display
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(metrics: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    labels = [str(x) for x in metrics["confusion_matrix"]["labels"]]
    matrix = metrics["confusion_matrix"]["matrix"]
    size = max(4.0, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels,
           yticklabels=labels, xlabel="Predicted", ylabel="True", title="Confusion matrix")
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center",
                    color="white" if value > peak / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_roc_curve(
    y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[Any], path: Path
) -> Path | None:
    import numpy as np
    from sklearn.metrics import auc, roc_curve

    plt = _pyplot()
    true = np.asarray(y_true).reshape(-1)
    proba = np.asarray(probabilities, dtype=float)
    shown = list(classes)[-1:] if len(classes) == 2 else list(classes)
    fig, ax = plt.subplots(figsize=(5, 5))
    drawn = 0
    for label in shown:
        column = list(classes).index(label)
        positives = true == label
        if positives.all() or not positives.any():
            continue  # a curve needs both classes present
        fpr, tpr, _ = roc_curve(positives, proba[:, column])
        ax.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_residuals(y_true: Any, y_pred: Any, path: Path) -> Path:
    import numpy as np

    plt = _pyplot()
    true, pred = _aligned(y_true, y_pred)
    residuals = true.astype(float) - pred.astype(float)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.scatter(pred.astype(float), residuals, s=8, alpha=0.6)
    left.axhline(0, color="grey", linestyle="--")
    left.set(xlabel="Predicted", ylabel="Residual (true − predicted)", title="Residuals")
    right.hist(residuals[np.isfinite(residuals)], bins=30)
    right.set(xlabel="Residual", ylabel="Rows", title="Residual distribution")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report_plots(
    task: ModelTask | str, y_true: Any, y_pred: Any, out_dir: Path, *,
    probabilities: np.ndarray | None = None, classes: Sequence[Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> list[Path]:
    """Write the task's plots into ``out_dir``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if ModelTask(task) is ModelTask.CLASSIFICATION:
        metrics = metrics or classification_metrics(
            y_true, y_pred, probabilities=probabilities, classes=classes
        )
        written.append(plot_confusion_matrix(metrics, out_dir / "confusion_matrix.png"))
        if probabilities is not None and classes is not None:
            roc = plot_roc_curve(y_true, probabilities, classes, out_dir / "roc_curve.png")
            if roc is not None:
                written.append(roc)
    else:
        written.append(plot_residuals(y_true, y_pred, out_dir / "residuals.png"))
    return written
