"""Format loaders behind ``scoring.load_model``: pickle/joblib, MLflow, ML package; ONNX and
PMML live in their own modules. Job processes only: every function here may run user code.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.domain.byom import Introspection, ModelFormat, ModelTask
from modelops.runtime.onnx_loader import load_onnx, load_onnx_file
from modelops.runtime.pmml_loader import load_pmml
from modelops.runtime.scoring import LoadedModel, ModelError, Prediction, resolve_inside

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_onnx", "load_pmml", "load_pickle", "load_mlflow", "load_package", "EstimatorModel"]

MAX_MLMODEL_BYTES = 1024 * 1024


def plain(values: Any) -> list[Any]:
    """numpy scalars → Python values, so classes survive JSON."""
    return [v.item() if hasattr(v, "item") else v for v in list(values)]


class EstimatorModel(LoadedModel):
    """Anything with a scikit-learn style ``predict`` (and maybe ``predict_proba``)."""

    def __init__(self, estimator: Any, fmt: ModelFormat, *, source: str) -> None:
        if not callable(getattr(estimator, "predict", None)):
            raise ModelError(
                f"not a model: {source} holds a {type(estimator).__module__}."
                f"{type(estimator).__qualname__}, which has no predict method"
            )
        self.estimator = estimator
        self.format = fmt
        names = getattr(estimator, "feature_names_in_", None)
        self.features = [str(n) for n in names] if names is not None else None
        self.task = _task_of(estimator)
        classes = getattr(estimator, "classes_", None)
        self.classes = plain(classes) if classes is not None else None

    def introspect(self) -> Introspection:
        count = getattr(self.estimator, "n_features_in_", None)
        return Introspection(
            features=self.features,
            n_features=int(count) if isinstance(count, int | float) and count == count else None,
            task=self.task,
            classes=self.classes,
            details={"estimator": f"{type(self.estimator).__module__}.{type(self.estimator).__qualname__}"},
        )

    def predict(self, frame: pd.DataFrame) -> Prediction:
        selected = self.select(frame)
        # Estimators fitted on named columns want a frame; those fitted on arrays, an array.
        data: Any = selected if hasattr(self.estimator, "feature_names_in_") else selected.to_numpy()
        values = self.estimator.predict(data)
        proba = None
        if self.task is ModelTask.CLASSIFICATION and callable(getattr(self.estimator, "predict_proba", None)):
            try:
                proba = self.estimator.predict_proba(data)
            except Exception:  # e.g. SVC without probability=True: labels are enough
                proba = None
        return Prediction(values=values, probabilities=proba, classes=self.classes)


def _task_of(estimator: Any) -> ModelTask | None:
    kind = getattr(estimator, "_estimator_type", None)
    if kind is None:
        # scikit-learn ≥ 1.6 moved the estimator type into its tags.
        try:
            kind = estimator.__sklearn_tags__().estimator_type
        except Exception:
            kind = None
    if kind == "classifier":
        return ModelTask.CLASSIFICATION
    if kind == "regressor":
        return ModelTask.REGRESSION
    if hasattr(estimator, "classes_") and callable(getattr(estimator, "predict_proba", None)):
        return ModelTask.CLASSIFICATION
    return None


def load_pickle(path: Path, model_dir: Path, fmt: ModelFormat = ModelFormat.PICKLE) -> LoadedModel:
    """joblib.load reads joblib files and plain pickles alike. This runs the file's code."""
    import joblib

    try:
        estimator = joblib.load(path)
    except Exception as exc:
        raise ModelError(
            f"cannot load {path.name} as a pickle/joblib model: {type(exc).__name__}: {exc}"
        ) from exc
    return EstimatorModel(estimator, fmt, source=path.name)


# --------------------------------------------------------------------------- MLflow


def read_mlmodel(path: Path) -> dict[str, Any]:
    import yaml

    if path.stat().st_size > MAX_MLMODEL_BYTES:
        raise ModelError("the MLmodel file is larger than 1 MiB")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f"the MLmodel file is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        raise ModelError("the MLmodel file has no 'flavors' section")
    return data


def mlflow_signature(mlmodel: dict[str, Any]) -> tuple[list[str] | None, dict[str, str]]:
    """Column names and types of a column-based MLflow signature (tensor specs name nothing)."""
    signature = mlmodel.get("signature")
    if not isinstance(signature, dict) or not signature.get("inputs"):
        return None, {}
    try:
        inputs = json.loads(signature["inputs"]) if isinstance(signature["inputs"], str) else signature["inputs"]
    except ValueError as exc:
        raise ModelError(f"the MLmodel signature's inputs are not JSON: {exc}") from exc
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise ModelError("the MLmodel signature's inputs are not a list of columns")
    if any(i.get("type") == "tensor" or "name" not in i for i in inputs):
        return None, {}
    names = [str(i["name"]) for i in inputs]
    return names, {str(i["name"]): str(i.get("type", "")) for i in inputs}


def load_mlflow(mlmodel_path: Path, model_dir: Path) -> LoadedModel:
    """An MLflow model folder: the sklearn flavour's pickle, or python_function's loader."""
    mlmodel = read_mlmodel(mlmodel_path)
    folder = mlmodel_path.parent
    flavors: dict[str, Any] = mlmodel["flavors"]
    features, types = mlflow_signature(mlmodel)
    pyfunc: dict[str, Any] = flavors.get("python_function") or {}
    sklearn_flavor: dict[str, Any] | None = flavors.get("sklearn")
    if not isinstance(pyfunc, dict) or not (sklearn_flavor is None or isinstance(sklearn_flavor, dict)):
        raise ModelError("the MLmodel file's flavours are not mappings")
    loader_module = str(pyfunc.get("loader_module", ""))
    model: LoadedModel
    if sklearn_flavor is not None and sklearn_flavor.get("pickled_model"):
        model = _mlflow_pickle(folder, model_dir, str(sklearn_flavor["pickled_model"]))
    elif loader_module == "mlflow.sklearn" and pyfunc.get("model_path"):
        model = _mlflow_pickle(folder, model_dir, str(pyfunc["model_path"]))
    elif isinstance(flavors.get("onnx"), dict) and flavors["onnx"].get("data"):
        model = load_onnx_file(_inside(folder, model_dir, str(flavors["onnx"]["data"])), model_dir)
    elif pyfunc:
        model = _mlflow_pyfunc(folder, loader_module)
    else:
        raise ModelError(
            "the MLmodel file has neither a python_function nor a sklearn flavour: "
            f"found {', '.join(sorted(flavors)) or 'none'}"
        )
    model.format = ModelFormat.MLFLOW
    if features is not None and (model.features is None or len(model.features) == len(features)):
        model.features = features
    inner = model.introspect
    signature_features = features

    def introspect() -> Introspection:
        found = inner()
        return Introspection(
            features=signature_features or found.features, n_features=found.n_features,
            task=found.task, classes=found.classes, feature_types=types or found.feature_types,
            details={**found.details, "flavors": sorted(flavors)},
        )

    model.introspect = introspect  # type: ignore[method-assign]
    return model


def _inside(folder: Path, model_dir: Path, relative: str) -> Path:
    path = resolve_inside(folder, relative)
    root = model_dir.resolve()
    if root not in path.parents:
        raise ModelError(f"path {relative!r} leaves the model folder")
    return path


def _mlflow_pickle(folder: Path, model_dir: Path, relative: str) -> LoadedModel:
    path = _inside(folder, model_dir, relative)
    if path.is_dir():
        path = path / "model.pkl"
    if not path.is_file():
        raise ModelError(f"the MLmodel file points at {relative!r}, which is missing")
    return load_pickle(path, model_dir, ModelFormat.MLFLOW)


def _mlflow_pyfunc(folder: Path, loader_module: str) -> LoadedModel:
    if importlib.util.find_spec("mlflow") is None:
        raise ModelError(
            f"this MLflow model's python_function flavour (loader {loader_module or 'unknown'}) "
            "needs the mlflow library, which this platform does not install: export it with the "
            "sklearn or onnx flavour, or import the pickle/ONNX file itself"
        )
    import mlflow.pyfunc  # pragma: no cover - only when a user installs mlflow

    model = mlflow.pyfunc.load_model(str(folder))  # pragma: no cover
    return EstimatorModel(model, ModelFormat.MLFLOW, source="MLmodel")  # pragma: no cover


# --------------------------------------------------------------------------- ML package


class PackageModel(LoadedModel):
    """An ML package's ``main.py``: ``Main().predict(frame)`` gets a DataFrame of the rows."""

    format = ModelFormat.PACKAGE

    def __init__(self, main: Any) -> None:
        self.main = main

    def predict(self, frame: pd.DataFrame) -> Prediction:
        import numpy as np
        import pandas as pd

        result = self.main.predict(self.select(frame))
        if isinstance(result, bytes | str):
            result = json.loads(result)  # packages that answer serving requests return JSON
        if isinstance(result, dict) and "predictions" in result:
            result = result["predictions"]
        if isinstance(result, pd.DataFrame):
            result = result.iloc[:, 0] if result.shape[1] == 1 else result.to_numpy()
        return Prediction(values=np.asarray(result))


def load_package(code_dir: Path) -> LoadedModel:
    """Import ``main.py`` from the package folder and build ``Main()`` with that folder as the
    working directory, where packages by convention find the files ``save()`` wrote."""
    main_py = code_dir / "main.py"
    if not main_py.is_file():
        raise ModelError("the ML package has no main.py with class Main and predict")
    sys.path.insert(0, str(code_dir))
    os.chdir(code_dir)
    try:
        spec = importlib.util.spec_from_file_location("main", main_py)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["main"] = module
        spec.loader.exec_module(module)
        main = module.Main()
    except Exception as exc:
        raise ModelError(f"main.py failed to load: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(main, "predict", None)):
        raise ModelError("main.py's class Main has no predict method")
    return PackageModel(main)
