"""Load any model version's files and score a pandas DataFrame, INSIDE a job's process only.

This is the one place models are deserialised (pickles, joblib files, ONNX sessions, PMML
estimators, MLflow models, an ML package's ``main.py``). The server imports none of it: job
kinds copy files into a job's folder and run ``python -m modelops.runtime.<step>`` there.

Entry points for the EVALUATION, BATCH_PREDICTION and statistics jobs:

    model = load_model(model_dir, spec)      # spec = domain.byom.scoring_spec(version.lineage,
                                             #   version.code_root), written by the job kind
    prediction = predict_in_chunks(model, frame, chunk_rows=10_000)
    prediction.values         # one label or value per row (numpy, 1-D)
    prediction.probabilities  # rows × classes (numpy) for classifiers that give them, else None
    prediction.classes        # the column order of ``probabilities``

Every failure a user can cause (unreadable file, wrong columns, a model that raises) is a
``ModelError`` whose message says why; jobs print it as their error.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.domain.byom import Introspection, ModelFormat, ModelTask, check_relative_path
from modelops.domain.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DEFAULT_CHUNK_ROWS = 10_000


class ModelError(Exception):
    """A model cannot be loaded or cannot score; the message is the job's error as is."""


@dataclass
class Prediction:
    values: np.ndarray
    probabilities: np.ndarray | None = None
    classes: list[Any] | None = None


class LoadedModel:
    """A model ready to score frames whose columns include ``features``."""

    format: ModelFormat
    features: list[str] | None = None
    task: ModelTask | None = None
    classes: list[Any] | None = None

    def predict(self, frame: pd.DataFrame) -> Prediction:
        raise NotImplementedError

    def introspect(self) -> Introspection:
        """What the model file itself says about inputs, task and classes."""
        return Introspection()

    def select(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The feature columns in the model's order; a clear error when some are missing."""
        if self.features is None:
            return frame
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
            raise ModelError(
                f"the data lacks {len(missing)} of the model's {len(self.features)} feature "
                f"column(s): {shown}"
            )
        return frame[self.features]


def resolve_inside(model_dir: Path, relative: str) -> Path:
    """A file the model refers to, refused if it would leave the model folder."""
    try:
        check_relative_path(relative)
    except InvalidInput as exc:
        raise ModelError(str(exc)) from None
    root = model_dir.resolve()
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise ModelError(f"path {relative!r} leaves the model folder")
    return path


def load_model(model_dir: Path, spec: Mapping[str, Any]) -> LoadedModel:
    """Load the model a version's files hold; ``spec`` says the format and where the file is."""
    from modelops.runtime import model_loaders as loaders

    try:
        fmt = ModelFormat(str(spec.get("format", "")))
    except ValueError:
        raise ModelError(f"unknown model format {spec.get('format')!r}") from None
    if fmt is ModelFormat.PACKAGE:
        code_root = str(spec.get("code_root") or "")
        model: LoadedModel = loaders.load_package(
            resolve_inside(model_dir, code_root) if code_root else model_dir.resolve()
        )
    else:
        model_file = resolve_inside(model_dir, str(spec.get("model_file") or ""))
        if not model_file.is_file():
            raise ModelError(f"the model file {spec.get('model_file')!r} is missing")
        load = {
            ModelFormat.ONNX: loaders.load_onnx,
            ModelFormat.PICKLE: loaders.load_pickle,
            ModelFormat.JOBLIB: loaders.load_pickle,
            ModelFormat.PMML: loaders.load_pmml,
            ModelFormat.MLFLOW: loaders.load_mlflow,
        }[fmt]
        model = load(model_file, model_dir.resolve())
        model.format = fmt
    # What the platform recorded at import takes precedence over guesses from the file.
    if spec.get("features"):
        model.features = [str(f) for f in spec["features"]]
    if spec.get("task"):
        model.task = ModelTask(str(spec["task"]))
    if spec.get("classes") and not model.classes:
        model.classes = list(spec["classes"])
    return model


def predict_in_chunks(
    model: LoadedModel, frame: pd.DataFrame, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Prediction:
    """Score ``frame`` ``chunk_rows`` rows at a time so memory stays bounded by the chunk."""
    import numpy as np

    if chunk_rows < 1:
        raise ModelError("chunk_rows must be at least 1")
    values: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    classes: list[Any] | None = None
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start : start + chunk_rows]
        part = _predict_checked(model, chunk)
        values.append(part.values)
        if part.probabilities is not None:
            probabilities.append(part.probabilities)
            classes = part.classes
    if not values:
        return Prediction(values=np.asarray([]), probabilities=None, classes=model.classes)
    merged = np.concatenate(values)
    proba = np.concatenate(probabilities) if len(probabilities) == len(values) else None
    return Prediction(values=merged, probabilities=proba, classes=classes or model.classes)


def _predict_checked(model: LoadedModel, chunk: pd.DataFrame) -> Prediction:
    import numpy as np

    try:
        with warnings.catch_warnings():
            # Column-name warnings from estimators fitted on arrays are noise here.
            warnings.simplefilter("ignore", UserWarning)
            part = model.predict(chunk)
    except ModelError:
        raise
    except Exception as exc:  # the user's model raised: say so, with its own words
        raise ModelError(f"the model failed to score: {type(exc).__name__}: {exc}") from exc
    values = np.asarray(part.values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values.reshape(-1)
    if values.ndim != 1 or len(values) != len(chunk):
        raise ModelError(
            f"the model returned {values.shape} predictions for {len(chunk)} rows: "
            "expected one value per row"
        )
    proba = part.probabilities
    if proba is not None:
        proba = np.asarray(proba, dtype=float)
        if proba.ndim != 2 or proba.shape[0] != len(chunk):
            proba = None  # unusable probabilities are dropped, the labels still count
    return Prediction(values=values, probabilities=proba, classes=part.classes)


def read_table(folder: Path, *, max_rows: int | None = None) -> pd.DataFrame:
    """All CSV and Parquet files under ``folder`` (sorted by path) as one frame.

    Files must share their columns; a dataset version with neither kind of file is an error.
    """
    import pandas as pd

    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in (".csv", ".parquet", ".pq")
    )
    if not files:
        raise ModelError("the dataset holds no CSV or Parquet file")
    frames = []
    columns: list[str] | None = None
    total = 0
    for path in files:
        try:
            if path.suffix.lower() == ".csv":
                frame = pd.read_csv(path, nrows=None if max_rows is None else max_rows - total)
            else:
                frame = pd.read_parquet(path)
        except Exception as exc:
            raise ModelError(f"cannot read {path.relative_to(folder)}: {exc}") from exc
        if columns is None:
            columns = [str(c) for c in frame.columns]
        elif [str(c) for c in frame.columns] != columns:
            raise ModelError(
                f"{path.relative_to(folder)} has other columns than the first file: every file "
                "of the dataset must share the same columns"
            )
        frames.append(frame)
        total += len(frame)
        if max_rows is not None and total >= max_rows:
            break
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    table.columns = [str(c) for c in table.columns]
    return table if max_rows is None else table.iloc[:max_rows]
