"""Serving side of the iris package: ``Main().predict(input)``.

``input`` is JSON text (or bytes): one flower as four numbers or as an object with the feature
names, or a list of either. The answer is JSON text: one species, or a list of them. Batch
scoring passes a pandas DataFrame of rows instead and gets one species per row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib

HERE = Path(__file__).resolve().parent
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _row(item: object) -> list[float]:
    if isinstance(item, dict):
        return [float(item[name]) for name in FEATURES]
    if isinstance(item, list) and len(item) == len(FEATURES):
        return [float(value) for value in item]
    raise ValueError(f"expected four numbers or an object with {', '.join(FEATURES)}")


class Main:
    def __init__(self) -> None:
        self.model = joblib.load(HERE / "model.joblib")

    def predict(self, input: str | bytes | Any) -> str | list[str]:
        if hasattr(input, "columns"):  # batch scoring hands over a pandas DataFrame of rows
            return [str(label) for label in self.model.predict(input[FEATURES].to_numpy(dtype=float))]
        data = json.loads(input)
        single = isinstance(data, dict) or (
            isinstance(data, list) and data and not isinstance(data[0], dict | list)
        )
        rows = [_row(data)] if single else [_row(item) for item in data]
        species = [str(label) for label in self.model.predict(rows)]
        return json.dumps(species[0] if single else species)
