"""ONNX models: every external-data location is checked before onnxruntime opens the file.

An ONNX file may keep large tensors in other files it names by a relative path. onnxruntime
would open whatever path it is given, so a crafted model could read files outside its folder;
the graph is parsed first (protobuf only, no external data) and any location that is absolute,
climbs with '..', or resolves outside the model folder fails the load.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.domain.byom import Introspection, ModelFormat, ModelTask
from modelops.runtime.scoring import LoadedModel, ModelError, Prediction, resolve_inside

if TYPE_CHECKING:
    import onnx
    import pandas as pd

_NUMPY_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}
_LABEL_TYPES = ("tensor(int64)", "tensor(int32)", "tensor(string)")
_FLOAT_TYPES = ("tensor(float)", "tensor(double)", "tensor(float16)")


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("sparse_tensor"):
            yield attr.sparse_tensor.values
            yield attr.sparse_tensor.indices
        if attr.HasField("g"):
            yield from _graph_tensors(attr.g)
        for sub in attr.graphs:
            yield from _graph_tensors(sub)


def all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node)


def check_external_data(model: onnx.ModelProto, model_path: Path, model_dir: Path) -> list[str]:
    """Refuse external data outside the model folder; the locations that were checked."""
    import onnx

    base = model_path.parent
    root = model_dir.resolve()
    checked: list[str] = []
    for tensor in all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = entries.get("location", "")
        if not location:
            raise ModelError(f"tensor {tensor.name!r} stores external data without a location")
        try:
            path = resolve_inside(base, location)
        except ModelError:
            raise ModelError(
                f"unsafe ONNX external data: tensor {tensor.name!r} points at {location!r}, "
                "outside the model folder"
            ) from None
        if root not in path.parents:
            raise ModelError(
                f"unsafe ONNX external data: tensor {tensor.name!r} points at {location!r}, "
                "outside the model folder"
            )
        if not path.is_file():
            raise ModelError(
                f"tensor {tensor.name!r} keeps its data in {location!r}, which is not in the upload"
            )
        checked.append(location)
    return sorted(set(checked))


def _class_labels(model: onnx.ModelProto) -> list[Any] | None:
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name == "classlabels_int64s" and attr.ints:
                return [int(v) for v in attr.ints]
            if attr.name == "classlabels_strings" and attr.strings:
                return [v.decode("utf-8", "replace") for v in attr.strings]
    return None


class OnnxModel(LoadedModel):
    def __init__(self, session: Any, proto: onnx.ModelProto, external: list[str]) -> None:
        self.session = session
        self.format = ModelFormat.ONNX
        self.inputs = list(session.get_inputs())
        self.outputs = list(session.get_outputs())
        self.external = external
        self.classes = _class_labels(proto)
        self.task = self._task()
        self.features = [i.name for i in self.inputs] if len(self.inputs) > 1 else None

    def _task(self) -> ModelTask | None:
        types = [o.type for o in self.outputs]
        if any(t.startswith("seq(map") for t in types) or self.classes is not None:
            return ModelTask.CLASSIFICATION
        if len(types) >= 2 and types[0] in _LABEL_TYPES:
            return ModelTask.CLASSIFICATION
        if len(types) == 1 and types[0] in _FLOAT_TYPES:
            return ModelTask.REGRESSION
        if len(types) == 1 and types[0] in _LABEL_TYPES:
            return ModelTask.CLASSIFICATION
        return None

    def _single_input_width(self) -> int | None:
        shape = self.inputs[0].shape
        if len(shape) == 2 and isinstance(shape[1], int):
            return int(shape[1])
        return 1 if len(shape) == 1 else None

    def introspect(self) -> Introspection:
        multi = len(self.inputs) > 1
        return Introspection(
            features=self.features,
            n_features=len(self.inputs) if multi else self._single_input_width(),
            task=self.task,
            classes=self.classes,
            feature_types={i.name: i.type for i in self.inputs} if multi else None,
            details={
                "inputs": [{"name": i.name, "type": i.type, "shape": _shape(i.shape)} for i in self.inputs],
                "outputs": [{"name": o.name, "type": o.type} for o in self.outputs],
                "external_data": self.external,
            },
        )

    def _feeds(self, frame: pd.DataFrame) -> dict[str, Any]:
        import numpy as np

        selected = self.select(frame)
        feeds: dict[str, Any] = {}
        if len(self.inputs) == 1:
            only = self.inputs[0]
            feeds[only.name] = _as_type(selected.to_numpy(), only.type)
            if len(only.shape) == 1:
                feeds[only.name] = feeds[only.name].reshape(-1)
            return feeds
        for item in self.inputs:
            column = _as_type(np.asarray(selected[item.name].to_numpy()), item.type)
            feeds[item.name] = column.reshape(-1, 1) if len(item.shape) == 2 else column
        return feeds

    def predict(self, frame: pd.DataFrame) -> Prediction:
        import numpy as np

        results = self.session.run(None, self._feeds(frame))
        values = np.asarray(results[0])
        if self.task is not ModelTask.CLASSIFICATION or len(results) < 2:
            return Prediction(values=values, classes=self.classes)
        second = results[1]
        classes = self.classes
        if isinstance(second, list) and second and isinstance(second[0], dict):
            # ZipMap output: one {class: probability} per row.
            classes = classes or list(second[0])
            proba = np.asarray([[row.get(c, 0.0) for c in classes] for row in second], dtype=float)
        else:
            proba = np.asarray(second, dtype=float)
        return Prediction(values=values, probabilities=proba, classes=classes)


def _shape(shape: list[Any]) -> list[Any]:
    return [d if isinstance(d, int) else None for d in shape]


def _as_type(array: Any, onnx_type: str) -> Any:
    import numpy as np

    numpy_type = _NUMPY_TYPES.get(onnx_type)
    if numpy_type is None:
        raise ModelError(f"the ONNX model takes inputs of type {onnx_type}, which is not supported")
    try:
        if numpy_type == "object":
            return np.asarray(array).astype(str).astype(object)
        return np.asarray(array).astype(numpy_type)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot convert the input columns to {onnx_type}: {exc}") from exc


def load_onnx(path: Path, model_dir: Path) -> LoadedModel:
    import onnx
    import onnxruntime as ort

    try:
        # Parse the graph only: external data is read by onnxruntime after the check below.
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"not a valid ONNX model ({path.name}): {type(exc).__name__}: {exc}") from exc
    if not proto.graph.node or not proto.graph.output:
        raise ModelError(f"not a valid ONNX model ({path.name}): it has no graph to run")
    external = check_external_data(proto, path, model_dir)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"onnxruntime cannot load {path.name}: {exc}") from exc
    return OnnxModel(session, proto, external)


load_onnx_file = load_onnx
