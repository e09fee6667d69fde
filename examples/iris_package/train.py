"""Iris classifier: a small ML package that follows the train.py contract.

The platform imports this file, builds ``Main()`` and calls, depending on the pipeline type:
training ``train(data_directory)`` then ``save()``; evaluation ``evaluate(data_directory)``;
full ``process_data(input_directory)``, ``train``, ``evaluate`` and ``save``. The working
directory is this package's folder: ``save()`` writes the model next to this file, and the new
package version holds it. Anything written to ``os.environ["artifacts_directory"]`` is kept
with the run (text, images, sub-folders).

Parameters (environment variables): ``C`` (regularisation, default 1.0) and, for full
pipelines, ``test_fraction`` (share of rows kept for evaluation, default 0.2).
"""

# The platform names its environment variables in lower case (artifacts_directory, …).
# ruff: noqa: SIM112

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix

HERE = Path(__file__).resolve().parent
MODEL_FILE = HERE / "model.joblib"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
TARGET = "species"


def read_rows(directory: str) -> list[dict[str, str]]:
    """Every row of every CSV file under ``directory`` (sub-folders included)."""
    rows: list[dict[str, str]] = []
    for path in sorted(Path(directory).rglob("*.csv")):
        with open(path, newline="") as handle:
            rows.extend(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"no CSV rows found under {directory}")
    return rows


def to_arrays(rows: list[dict[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    features = np.array([[float(row[name]) for name in FEATURES] for row in rows])
    labels = np.array([row[TARGET] for row in rows])
    return features, labels


def write_rows(directory: str, rows: list[dict[str, str]]) -> None:
    Path(directory).mkdir(parents=True, exist_ok=True)
    with open(Path(directory) / "iris.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*FEATURES, TARGET], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def artifacts_dir() -> Path:
    path = Path(os.environ.get("artifacts_directory", "artifacts"))
    (path / "plots").mkdir(parents=True, exist_ok=True)
    return path


def bar_chart(path: Path, title: str, labels: list[str], values: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display in a job
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3))
    axes.bar(labels, values)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


class Main:
    def __init__(self) -> None:
        # A trained version carries model.joblib: load it so evaluate() can score it.
        self.model = joblib.load(MODEL_FILE) if MODEL_FILE.exists() else None

    def process_data(self, input_directory: str) -> None:
        rows = read_rows(input_directory)
        random.Random(42).shuffle(rows)
        fraction = float(os.environ.get("test_fraction", "0.2"))
        cut = max(1, int(len(rows) * fraction))
        write_rows(os.environ["test_data_directory"], rows[:cut])
        write_rows(os.environ["training_data_directory"], rows[cut:])
        print(f"process_data: {len(rows) - cut} training rows, {cut} test rows")

    def train(self, data_directory: str) -> None:
        features, labels = to_arrays(read_rows(data_directory))
        regularisation = float(os.environ.get("C", "1.0"))
        self.model = LogisticRegression(C=regularisation, max_iter=1000)
        self.model.fit(features, labels)
        accuracy = accuracy_score(labels, self.model.predict(features))
        print(f"trained on {len(labels)} rows with C={regularisation}: training accuracy {accuracy:.3f}")
        out = artifacts_dir()
        (out / "training-summary.txt").write_text(
            f"rows: {len(labels)}\nC: {regularisation}\ntraining accuracy: {accuracy:.4f}\n"
        )
        classes, counts = np.unique(labels, return_counts=True)
        bar_chart(out / "plots" / "class_counts.png", "training rows per class",
                  [str(c) for c in classes], [float(c) for c in counts])

    def evaluate(self, data_directory: str) -> float:
        if self.model is None:
            raise RuntimeError("this version holds no trained model: run a training pipeline first")
        features, labels = to_arrays(read_rows(data_directory))
        predicted = self.model.predict(features)
        accuracy = float(accuracy_score(labels, predicted))
        out = artifacts_dir()
        classes = [str(c) for c in self.model.classes_]
        matrix = confusion_matrix(labels, predicted, labels=self.model.classes_)
        (out / "evaluation.txt").write_text(
            f"rows: {len(labels)}\naccuracy: {accuracy:.4f}\nclasses: {', '.join(classes)}\n"
            f"confusion matrix:\n{matrix}\n"
        )
        bar_chart(out / "plots" / "per_class_recall.png", "recall per class", classes,
                  [float(matrix[i, i] / max(matrix[i].sum(), 1)) for i in range(len(classes))])
        print(f"evaluated on {len(labels)} rows: accuracy {accuracy:.3f}")
        return accuracy

    def save(self) -> None:
        if self.model is None:
            raise RuntimeError("nothing to save: train() has not run")
        joblib.dump(self.model, MODEL_FILE)
