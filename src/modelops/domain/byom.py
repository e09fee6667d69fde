"""Bring-your-own-model rules: formats, tasks, feature schemas and stored statistics.

Pure functions over names, a few header bytes and plain dicts. Nothing here opens a model:
detection looks at file names and magic bytes only, and what a job's process reports about a
model (its introspection) is treated as untrusted input and checked before it is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from modelops.domain.errors import InvalidInput

MAX_FEATURES = 10_000
MAX_FEATURE_NAME = 256
MAX_CLASSES = 1_000


class ModelFormat(StrEnum):
    ONNX = "onnx"
    PICKLE = "pickle"
    JOBLIB = "joblib"
    PMML = "pmml"
    MLFLOW = "mlflow"
    # An ML package (main.py with class Main and predict): not importable, but scored the same way.
    PACKAGE = "package"


IMPORTABLE_FORMATS = tuple(f for f in ModelFormat if f is not ModelFormat.PACKAGE)


class ModelTask(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


def parse_format(text: str | None) -> ModelFormat | None:
    if text is None or not text.strip():
        return None
    value = text.strip().lower()
    if value == "pkl":
        value = "pickle"
    try:
        fmt = ModelFormat(value)
    except ValueError:
        fmt = None
    if fmt is None or fmt is ModelFormat.PACKAGE:
        choices = ", ".join(f.value for f in IMPORTABLE_FORMATS)
        raise InvalidInput(f"unknown model format {text!r}: use one of {choices}")
    return fmt


def parse_task(text: str | None) -> ModelTask | None:
    if text is None or not text.strip():
        return None
    try:
        return ModelTask(text.strip().lower())
    except ValueError:
        raise InvalidInput(f"unknown task {text!r}: use classification or regression") from None


def check_feature_names(names: Sequence[Any], *, what: str = "feature") -> list[str]:
    """Feature names as the columns a dataset must have: non-empty, unique, bounded."""
    if len(names) > MAX_FEATURES:
        raise InvalidInput(f"too many {what}s: {len(names)} (limit {MAX_FEATURES})")
    cleaned: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"invalid {what} name {name!r}: names must be non-empty text")
        if len(name) > MAX_FEATURE_NAME:
            raise InvalidInput(f"{what} name {name[:40]!r}… is longer than {MAX_FEATURE_NAME}")
        cleaned.append(name.strip())
    duplicates = sorted({n for n in cleaned if cleaned.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"duplicate {what} name(s): {', '.join(duplicates)}")
    return cleaned


def parse_features(text: str | None) -> list[str] | None:
    """``a,b,c`` as given on a URL or command line; None when not given."""
    if text is None or not text.strip():
        return None
    return check_feature_names([part for part in text.split(",")])


# --------------------------------------------------------------------------- format detection

_EXTENSIONS = {
    ".onnx": ModelFormat.ONNX,
    ".pmml": ModelFormat.PMML,
    ".joblib": ModelFormat.JOBLIB,
    ".pkl": ModelFormat.PICKLE,
    ".pickle": ModelFormat.PICKLE,
    ".sav": ModelFormat.PICKLE,
}
MLMODEL_FILE = "MLmodel"
# How many leading bytes of each file detection looks at.
HEAD_BYTES = 256


def _looks_like_pmml(head: bytes) -> bool:
    return b"<PMML" in head


def _looks_like_pickle(head: bytes) -> bool:
    # Protocol 2+ pickles open with PROTO (0x80) and the protocol number.
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _format_of(path: str, head: bytes) -> ModelFormat | None:
    name = PurePosixPath(path).name
    suffix = PurePosixPath(path).suffix.lower()
    if name == MLMODEL_FILE:
        return ModelFormat.MLFLOW
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    if suffix == ".xml" and _looks_like_pmml(head):
        return ModelFormat.PMML
    return None


@dataclass(frozen=True)
class DetectedModel:
    format: ModelFormat
    model_file: str  # relative POSIX path of the file a loader opens (MLmodel for MLflow)


def detect_model(files: Mapping[str, bytes], declared: ModelFormat | None = None) -> DetectedModel:
    """Pick the model file among a folder's files (relative path → first bytes).

    An ``MLmodel`` file at the top makes the folder an MLflow model. Otherwise file extensions
    decide (.onnx, .pmml, .joblib, .pkl/.pickle/.sav, PMML in .xml); a lone file without a known
    extension is sniffed (PMML text, pickle header). A declared format narrows the choice.
    """
    if not files:
        raise InvalidInput("the upload holds no files")
    top_mlmodel = MLMODEL_FILE in files
    if declared is ModelFormat.MLFLOW or (declared is None and top_mlmodel):
        if not top_mlmodel:
            raise InvalidInput(
                "an MLflow model needs an MLmodel file at the top of the uploaded folder"
            )
        return DetectedModel(ModelFormat.MLFLOW, MLMODEL_FILE)
    candidates: dict[ModelFormat, list[str]] = {}
    for path, head in sorted(files.items()):
        fmt = _format_of(path, head)
        if fmt is not None and fmt is not ModelFormat.MLFLOW:
            candidates.setdefault(fmt, []).append(path)
    if declared is not None:
        # joblib.load reads plain pickles too, so either extension serves either format.
        same_family = {declared}
        if declared in (ModelFormat.PICKLE, ModelFormat.JOBLIB):
            same_family = {ModelFormat.PICKLE, ModelFormat.JOBLIB}
        paths = sorted(p for fmt in same_family for p in candidates.get(fmt, []))
        if not paths and len(files) == 1:
            paths = list(files)
        return DetectedModel(declared, _only_one(paths, declared))
    if not candidates and len(files) == 1:
        (path, head), = files.items()
        if _looks_like_pmml(head):
            return DetectedModel(ModelFormat.PMML, path)
        if _looks_like_pickle(head):
            return DetectedModel(ModelFormat.PICKLE, path)
    if not candidates:
        shown = ", ".join(sorted(files)[:5]) + (" …" if len(files) > 5 else "")
        raise InvalidInput(
            f"cannot tell the model format of {shown}: expected an .onnx, .pkl, .joblib or "
            ".pmml file, or a folder with an MLflow MLmodel file; or give format="
        )
    if len(candidates) > 1:
        listing = "; ".join(f"{fmt.value}: {', '.join(paths)}" for fmt, paths in candidates.items())
        raise InvalidInput(f"the upload holds models of several formats ({listing}): give format=")
    (fmt, paths), = candidates.items()
    return DetectedModel(fmt, _only_one(paths, fmt))


def _only_one(paths: list[str], fmt: ModelFormat) -> str:
    if not paths:
        raise InvalidInput(f"the upload holds no {fmt.value} model file")
    if len(paths) > 1:
        raise InvalidInput(
            f"the upload holds several {fmt.value} files ({', '.join(paths)}): keep only one"
        )
    return paths[0]


# --------------------------------------------------------------------------- feature schema


@dataclass(frozen=True)
class Introspection:
    """What a job's process read from a model file (each field None when the file is silent)."""

    features: list[str] | None = None
    n_features: int | None = None
    task: ModelTask | None = None
    classes: list[Any] | None = None
    target: str | None = None
    feature_types: dict[str, str] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSignature:
    """What the platform records about an imported model on its version (lineage["byom"])."""

    format: ModelFormat
    model_file: str
    task: ModelTask
    features: list[str]
    target: str | None = None
    classes: list[Any] | None = None
    feature_types: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # "features"/"task" → "model"|"user"
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = self.format.value
        data["task"] = self.task.value
        return data


def resolve_signature(
    *, format: ModelFormat, model_file: str, found: Introspection,
    declared_features: Sequence[str] | None, declared_task: ModelTask | None,
    declared_target: str | None = None,
) -> ModelSignature:
    """Combine what the file says with what the user declared; a disagreement is an error.

    The file wins where it speaks (it is what will score); the user fills the gaps. A model
    that names no features and a user who declares none cannot be checked against data later,
    so that fails here rather than at the first scoring.
    """
    sources: dict[str, str] = {}
    declared = check_feature_names(list(declared_features)) if declared_features else None
    if found.features is not None:
        features = check_feature_names(found.features)
        if declared is not None and declared != features:
            raise InvalidInput(
                f"the declared features ({_short(declared)}) differ from the model's own "
                f"({_short(features)})"
            )
        sources["features"] = "model"
    elif declared is not None:
        if found.n_features is not None and found.n_features != len(declared):
            raise InvalidInput(
                f"wrong feature count: the model expects {found.n_features} input features but "
                f"{len(declared)} were declared ({_short(declared)})"
            )
        features = declared
        sources["features"] = "user"
    else:
        count = f"{found.n_features} " if found.n_features is not None else ""
        raise InvalidInput(
            f"the model does not name its {count}input features: declare them with "
            "features=a,b,c (in the order the model expects)"
        )
    if found.n_features is not None and found.n_features != len(features):
        raise InvalidInput(
            f"wrong feature count: the model expects {found.n_features} input features but "
            f"names {len(features)}"
        )
    if found.task is not None:
        if declared_task is not None and declared_task is not found.task:
            raise InvalidInput(
                f"the declared task '{declared_task}' contradicts the model, which is a "
                f"{found.task} model"
            )
        task = found.task
        sources["task"] = "model"
    elif declared_task is not None:
        task = declared_task
        sources["task"] = "user"
    else:
        raise InvalidInput(
            "the model file does not say whether it classifies or regresses: "
            "declare task=classification or task=regression"
        )
    target = declared_target or found.target
    if target is not None and target in features:
        raise InvalidInput(f"the target column {target!r} is also a feature")
    classes = list(found.classes)[:MAX_CLASSES] if found.classes is not None else None
    types = {k: str(v)[:64] for k, v in (found.feature_types or {}).items() if k in features}
    return ModelSignature(
        format=format, model_file=model_file, task=task, features=features, target=target,
        classes=classes if task is ModelTask.CLASSIFICATION else None, feature_types=types,
        sources=sources, details=dict(found.details),
    )


def signature_from_dict(data: Any) -> ModelSignature:
    """Read a signature back (from a job's output or a version's lineage), checking every field:
    a job's process ran the user's model, so what it wrote is not trusted blindly."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the model signature is not a JSON object")
    fmt = parse_format(str(data.get("format", "")) or None)
    task = parse_task(str(data.get("task", "")) or None)
    if fmt is None or task is None:
        raise InvalidInput("the model signature lacks its format or task")
    model_file = data.get("model_file")
    if not isinstance(model_file, str) or not model_file:
        raise InvalidInput("the model signature lacks its model file")
    check_relative_path(model_file)
    features = data.get("features")
    if not isinstance(features, list) or not features:
        raise InvalidInput("the model signature lacks its features")
    target = data.get("target")
    classes = data.get("classes")
    if classes is not None and (not isinstance(classes, list) or len(classes) > MAX_CLASSES):
        raise InvalidInput("the model signature's classes are not a short list")
    if classes is not None and not all(isinstance(c, str | int | float | bool) for c in classes):
        raise InvalidInput("the model signature's classes must be plain values")
    types = data.get("feature_types") or {}
    sources = data.get("sources") or {}
    details = data.get("details") or {}
    if not all(isinstance(x, dict) for x in (types, sources, details)):
        raise InvalidInput("the model signature has malformed fields")
    return ModelSignature(
        format=fmt, model_file=model_file, task=task, features=check_feature_names(features),
        target=str(target)[:MAX_FEATURE_NAME] if target else None, classes=classes,
        feature_types={str(k): str(v)[:64] for k, v in types.items()},
        sources={str(k): str(v)[:16] for k, v in sources.items()},
        details=details,
    )


def check_relative_path(path: str) -> str:
    """A path a model folder refers to must stay inside that folder."""
    pure = PurePosixPath(path.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (len(path) > 1 and path[1] == ":"):
        raise InvalidInput(f"path {path!r} leaves the model folder")
    return pure.as_posix()


def scoring_spec(lineage: Mapping[str, Any], code_root: str = "") -> dict[str, Any]:
    """What ``modelops.runtime.scoring.load_model`` needs to load a version's unpacked zip: the
    recorded signature of an imported model, else the ML package's code root (main.py)."""
    recorded = lineage.get("byom") if isinstance(lineage, Mapping) else None
    if isinstance(recorded, Mapping):
        return dict(recorded)
    return {"format": ModelFormat.PACKAGE.value, "code_root": code_root}


def missing_columns(features: Sequence[str], columns: Sequence[str]) -> list[str]:
    present = set(columns)
    return [f for f in features if f not in present]


def _short(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


# --------------------------------------------------------------------------- stored statistics


@dataclass(frozen=True)
class ModelStatistics:
    """Statistics of one model version on one dataset version, from one COMPUTE_STATISTICS job.

    ``stats`` has the format documented in docs/statistics.md; drift is measured against it."""

    id: int
    model_version_id: int
    dataset_version_id: int
    job_id: int
    folder: str
    stats: dict[str, Any]
    created_at: datetime
    created_by: str
