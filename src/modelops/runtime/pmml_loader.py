"""PMML models through sklearn-pmml-model, after a defusedxml pass that refuses DTDs and entities.

The estimator class is chosen from the PMML's model element and its functionName (TreeModel →
tree, RegressionModel → linear/logistic, MiningModel → forest or gradient boosting by its
segmentation method, …). Features are the DataDictionary fields other than the target, in
document order, which is the column order sklearn-pmml-model reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.domain.byom import Introspection, ModelFormat, ModelTask
from modelops.runtime.scoring import LoadedModel, ModelError

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

MAX_PMML_BYTES = 200 * 1024 * 1024

# (model element, functionName) → (module, class) of sklearn_pmml_model.
_CLASSES: dict[tuple[str, str], tuple[str, str]] = {
    ("TreeModel", "classification"): ("tree", "PMMLTreeClassifier"),
    ("TreeModel", "regression"): ("tree", "PMMLTreeRegressor"),
    ("RegressionModel", "classification"): ("linear_model", "PMMLLogisticRegression"),
    ("RegressionModel", "regression"): ("linear_model", "PMMLLinearRegression"),
    ("GeneralRegressionModel", "classification"): ("linear_model", "PMMLRidgeClassifier"),
    ("GeneralRegressionModel", "regression"): ("linear_model", "PMMLRidge"),
    ("NeuralNetwork", "classification"): ("neural_network", "PMMLMLPClassifier"),
    ("NeuralNetwork", "regression"): ("neural_network", "PMMLMLPRegressor"),
    ("SupportVectorMachineModel", "classification"): ("svm", "PMMLSVC"),
    ("SupportVectorMachineModel", "regression"): ("svm", "PMMLSVR"),
    ("NaiveBayesModel", "classification"): ("naive_bayes", "PMMLGaussianNB"),
    ("NearestNeighborModel", "classification"): ("neighbors", "PMMLKNeighborsClassifier"),
    ("NearestNeighborModel", "regression"): ("neighbors", "PMMLKNeighborsRegressor"),
}
# MiningModel: how segments combine says which ensemble it is.
_ENSEMBLES: dict[tuple[str, str], tuple[str, str]] = {
    ("majorityVote", "classification"): ("ensemble", "PMMLForestClassifier"),
    ("average", "classification"): ("ensemble", "PMMLForestClassifier"),
    ("average", "regression"): ("ensemble", "PMMLForestRegressor"),
    ("modelChain", "classification"): ("ensemble", "PMMLGradientBoostingClassifier"),
    ("sum", "regression"): ("ensemble", "PMMLGradientBoostingRegressor"),
}
_MODEL_ELEMENTS = {element for element, _ in _CLASSES} | {"MiningModel"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if _local(child.tag) == name]


def parse_safely(path: Path) -> Element:
    """Parse with defusedxml: a DTD, an entity or an external reference fails the load."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, parse

    if path.stat().st_size > MAX_PMML_BYTES:
        raise ModelError(f"{path.name} is larger than {MAX_PMML_BYTES} bytes")
    try:
        tree = parse(str(path), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ModelError(
            f"refused {path.name}: the PMML declares a DTD or XML entities ({exc}), "
            "which could read local files or expand without bound"
        ) from exc
    except ParseError as exc:
        raise ModelError(f"not a valid PMML file ({path.name}): {exc}") from exc
    root = tree.getroot()
    if root is None or _local(root.tag) != "PMML":
        raise ModelError(f"not a PMML file ({path.name}): the root element is not <PMML>")
    return root


class PmmlDescription:
    """What the PMML document says, read from the defused tree."""

    def __init__(self, root: Element) -> None:
        models = [child for child in root if _local(child.tag) in _MODEL_ELEMENTS]
        if not models:
            found = ", ".join(sorted({_local(c.tag) for c in root})) or "nothing"
            raise ModelError(
                f"the PMML holds no supported model element (found {found}); supported: "
                + ", ".join(sorted(_MODEL_ELEMENTS))
            )
        self.model = models[0]
        self.element = _local(self.model.tag)
        self.function = self.model.get("functionName", "")
        if self.function not in ("classification", "regression"):
            raise ModelError(
                f"the PMML {self.element} has functionName={self.function!r}: only "
                "classification and regression models are supported"
            )
        schema = _children(self.model, "MiningSchema")
        mining = _children(schema[0], "MiningField") if schema else []
        targets = [m.get("name", "") for m in mining if m.get("usageType") in ("target", "predicted")]
        dictionary = _children(root, "DataDictionary")
        fields = _children(dictionary[0], "DataField") if dictionary else []
        if not fields:
            raise ModelError("the PMML has no DataDictionary fields")
        if not targets:
            raise ModelError("the PMML's MiningSchema names no target field")
        self.target = targets[0]
        self.features = [f.get("name", "") for f in fields if f.get("name") not in targets]
        self.types = {f.get("name", ""): f.get("dataType", "") for f in fields if f.get("name") not in targets}
        target_field = next((f for f in fields if f.get("name") == self.target), None)
        values = _children(target_field, "Value") if target_field is not None else []
        self.classes: list[Any] | None = None
        if self.function == "classification" and values:
            data_type = target_field.get("dataType", "") if target_field is not None else ""
            raw = [v.get("value", "") for v in values]
            self.classes = [int(v) for v in raw] if data_type == "integer" else raw

    def estimator_class(self) -> tuple[str, str]:
        if self.element == "MiningModel":
            segmentation = _children(self.model, "Segmentation")
            method = segmentation[0].get("multipleModelMethod", "") if segmentation else ""
            choice = _ENSEMBLES.get((method, self.function))
            if choice is None:
                raise ModelError(
                    f"PMML MiningModel with multipleModelMethod={method!r} for {self.function} "
                    "is not supported"
                )
            return choice
        choice = _CLASSES.get((self.element, self.function))
        if choice is None:
            raise ModelError(f"PMML {self.element} for {self.function} is not supported")
        return choice


def load_pmml(path: Path, model_dir: Path) -> LoadedModel:
    import importlib

    from modelops.runtime.model_loaders import EstimatorModel

    description = PmmlDescription(parse_safely(path))
    module_name, class_name = description.estimator_class()
    module = importlib.import_module(f"sklearn_pmml_model.{module_name}")
    try:
        estimator = getattr(module, class_name)(pmml=str(path))
    except Exception as exc:
        raise ModelError(
            f"sklearn-pmml-model cannot load this {description.element} as {class_name}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    model = EstimatorModel(estimator, ModelFormat.PMML, source=path.name)
    model.features = description.features
    model.task = ModelTask(description.function)
    if model.classes is None:  # the estimator's own classes_ order its probabilities
        model.classes = description.classes

    def introspect() -> Introspection:
        return Introspection(
            features=description.features, n_features=len(description.features),
            task=ModelTask(description.function), classes=model.classes,
            target=description.target, feature_types=description.types,
            details={"model_element": description.element, "estimator": class_name},
        )

    model.introspect = introspect  # type: ignore[method-assign]
    return model
