"""Real models of every importable format, and bad files, made with the real libraries.

Shared by the BYOM tests. Every builder writes into a folder the caller owns and returns the
path to upload (a file or a folder). The data: a binary target ``label = a + b > 0`` over
numeric features a, b, c and a categorical ``city``; a regression target ``y = 2a - b + 1``.
"""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["a", "b", "c"]


def training_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=FEATURES)
    frame["city"] = rng.choice(["paris", "lyon", "nice"], size=rows, p=[0.5, 0.3, 0.2])
    frame["label"] = (frame.a + frame.b > 0).astype(int)
    frame["y"] = 2 * frame.a - frame.b + 1
    return frame


def write_dataset(folder: Path, frame: pd.DataFrame | None = None, *, parquet: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame = training_frame() if frame is None else frame
    if parquet:
        frame.to_parquet(folder / "train.parquet", index=False)
    else:
        frame.to_csv(folder / "train.csv", index=False)
    return folder


def classifier_pipeline():  # type: ignore[no-untyped-def]
    """A scikit-learn pipeline fitted on named columns (feature_names_in_ is set)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = training_frame()
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[FEATURES], frame.label)


def joblib_classifier(folder: Path) -> Path:
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(classifier_pipeline(), folder / "model.joblib")
    return folder / "model.joblib"


def pickle_regressor_unnamed(folder: Path) -> Path:
    """A regressor fitted on a bare array: it knows it wants 3 features, not their names."""
    from sklearn.tree import DecisionTreeRegressor

    frame = training_frame()
    model = DecisionTreeRegressor(max_depth=4, random_state=0).fit(frame[FEATURES].to_numpy(), frame.y)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "model.pkl", "wb") as handle:
        pickle.dump(model, handle)
    return folder / "model.pkl"


def onnx_classifier(folder: Path) -> Path:
    """skl2onnx output: one float input 'X' of shape [None, 3] (unnamed columns)."""
    import onnx
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    frame = training_frame()
    model = LogisticRegression().fit(frame[FEATURES].to_numpy(), frame.label)
    proto = to_onnx(model, frame[FEATURES].to_numpy().astype(np.float32)[:1])
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, folder / "model.onnx")
    return folder / "model.onnx"


def onnx_linear(folder: Path, *, external_location: str | None = None, weights_file: bool = True) -> Path:
    """A hand-built regression graph Y = X·W with W an initializer; optionally stored as
    external data at ``external_location`` (relative to the model file)."""
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    weights = np.asarray([[2.0], [-1.0], [0.0]], dtype=np.float32)
    initializer = numpy_helper.from_array(weights, name="W")
    if external_location is not None:
        if weights_file:
            target = (folder / external_location)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(weights.tobytes())
        initializer.ClearField("raw_data")
        initializer.data_location = TensorProto.EXTERNAL
        for key, value in (("location", external_location), ("offset", "0"), ("length", str(weights.nbytes))):
            entry = initializer.external_data.add()
            entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])], "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
        [initializer],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    path = folder / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


def pmml_tree_classifier(folder: Path) -> Path:
    from nyoka import skl_to_pmml
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier

    frame = training_frame()
    pipeline = Pipeline([("model", DecisionTreeClassifier(max_depth=3, random_state=0))])
    pipeline.fit(frame[FEATURES], frame.label)
    folder.mkdir(parents=True, exist_ok=True)
    skl_to_pmml(pipeline, FEATURES, "label", str(folder / "model.pmml"))
    return folder / "model.pmml"


def pmml_linear_regression(folder: Path) -> Path:
    from nyoka import skl_to_pmml
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline

    frame = training_frame()
    pipeline = Pipeline([("model", LinearRegression())]).fit(frame[FEATURES], frame.y)
    folder.mkdir(parents=True, exist_ok=True)
    skl_to_pmml(pipeline, FEATURES, "y", str(folder / "model.pmml"))
    return folder / "model.pmml"


def pmml_with_entity(folder: Path, secret: Path) -> Path:
    """A PMML that declares an external entity pointing at a local file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.pmml"
    path.write_text(textwrap.dedent(f"""\
        <?xml version="1.0" encoding="UTF-8"?>
        <!DOCTYPE PMML [<!ENTITY leak SYSTEM "file://{secret}">]>
        <PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
          <Header description="&leak;"/>
          <DataDictionary numberOfFields="2">
            <DataField name="a" optype="continuous" dataType="double"/>
            <DataField name="y" optype="continuous" dataType="double"/>
          </DataDictionary>
          <RegressionModel functionName="regression">
            <MiningSchema>
              <MiningField name="a"/>
              <MiningField name="y" usageType="target"/>
            </MiningSchema>
            <RegressionTable intercept="1.0"><NumericPredictor name="a" coefficient="2.0"/></RegressionTable>
          </RegressionModel>
        </PMML>
        """))
    return path


def mlflow_sklearn(folder: Path, *, with_signature: bool = True) -> Path:
    """An MLflow model folder written by hand: MLmodel (YAML) + the pickled estimator."""
    import sklearn
    from sklearn.ensemble import RandomForestClassifier

    frame = training_frame()
    model = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0)
    model.fit(frame[FEATURES].to_numpy(), frame.label)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "model.pkl", "wb") as handle:
        pickle.dump(model, handle)
    signature = ""
    if with_signature:
        inputs = ", ".join(f'{{"type": "double", "name": "{n}", "required": true}}' for n in FEATURES)
        signature = textwrap.dedent(f"""\
            signature:
              inputs: '[{inputs}]'
              outputs: '[{{"type": "long", "required": true}}]'
            """)
    (folder / "MLmodel").write_text(
        textwrap.dedent(f"""\
            artifact_path: model
            flavors:
              python_function:
                env:
                  virtualenv: python_env.yaml
                loader_module: mlflow.sklearn
                model_path: model.pkl
                predict_fn: predict
                python_version: 3.11.9
              sklearn:
                code: null
                pickled_model: model.pkl
                serialization_format: cloudpickle
                sklearn_version: {sklearn.__version__}
            mlflow_version: 2.14.1
            model_uuid: 0f3c2d1e9b8a4c7d8e6f5a4b3c2d1e0f
            """) + signature
    )
    (folder / "python_env.yaml").write_text("python: 3.11.9\n")
    return folder


class MarkerPayload:
    """Unpickling this runs code: it appends '<pid> <cwd>' to a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        code = (
            "import os\n"
            f"with open({self.marker!r}, 'a') as f: f.write(f'{{os.getpid()}} {{os.getcwd()}}\\n')"
        )
        return (exec, (code,))


def malicious_pickle(folder: Path, marker: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.pkl"
    with open(path, "wb") as handle:
        pickle.dump(MarkerPayload(marker), handle)
    return path


def not_a_model_pickle(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.pkl"
    with open(path, "wb") as handle:
        pickle.dump({"weights": [1, 2, 3]}, handle)
    return path


def corrupt_onnx(folder: Path) -> Path:
    valid = onnx_classifier(folder.parent / f"{folder.name}-valid").read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(valid[: len(valid) // 3])
    return path
