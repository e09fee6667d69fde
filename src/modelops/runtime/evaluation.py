"""The EVALUATION job's process: score a model version on labelled data, compute its metrics
and write the report plots; for an ML package with ``train.py``, also run its own
``Main.evaluate(data_directory)`` as an evaluation pipeline would.

    python -m modelops.runtime.evaluation --model-dir MODEL --spec spec.json --data DATA \
        --label target --plots PLOTS --out report.json [--package-code CODE]

spec.json is ``domain.byom.scoring_spec`` of the version, with ``features`` and ``task`` when
the request or the import named them. The data are every CSV/Parquet file under DATA (one
table); rows without a label are left out. The report written to --out (atomically) is read
back by ``services.evaluation`` as untrusted input:

    {"format_version": 1, "task", "label", "features", "rows", "labelled_rows",
     "metrics": {...runtime.metrics...}, "score": evaluate()'s number or null,
     "plots": ["confusion_matrix.png", ...]}

A user-caused failure (no label column, missing features, a model or evaluate() that raises)
ends with ``ERROR: <why>`` as the last line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.domain.byom import ModelTask, check_feature_names
from modelops.runtime.model_import import run_step, write_json_atomically

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FORMAT_VERSION = 1


def _fail(message: str) -> Exception:
    from modelops.runtime.scoring import ModelError

    return ModelError(message)


def labelled_rows(table: pd.DataFrame, label: str) -> pd.DataFrame:
    if label not in table.columns:
        shown = ", ".join(list(table.columns)[:20]) + (" …" if len(table.columns) > 20 else "")
        raise _fail(
            f"the dataset has no label column {label!r} (its columns: {shown}): name the column "
            "holding the true values with label="
        )
    labelled = table[table[label].notna()]
    if len(labelled) == 0:
        raise _fail(f"the label column {label!r} holds no values")
    if len(labelled) < len(table):
        print(f"{len(table) - len(labelled)} row(s) without a label are left out")
    return labelled


def feature_columns(spec: dict[str, Any], table: pd.DataFrame, label: str) -> list[str]:
    """The model's recorded (or requested) features, else every column but the label."""
    features = spec.get("features") or [c for c in table.columns if c != label]
    features = check_feature_names(list(features))
    if label in features:
        raise _fail(f"the label column {label!r} is one of the model's features: name another label")
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise _fail(
            f"wrong features for this dataset: the model expects {len(features)} feature "
            f"column(s) and the dataset lacks {len(missing)}: {', '.join(missing[:10])}"
            f"{' …' if len(missing) > 10 else ''}"
        )
    return features


def choose_task(spec: dict[str, Any], model_task: ModelTask | None, truth: np.ndarray,
                predicted: np.ndarray) -> ModelTask:
    """Declared (request or import) first, then what the model says, else inferred: text
    labels are classes, otherwise the predictions decide (whole numbers, few values)."""
    import pandas as pd

    from modelops.runtime.statistics import infer_task, is_numeric

    if spec.get("task"):
        return ModelTask(str(spec["task"]))
    if model_task is not None:
        return model_task
    if not is_numeric(pd.Series(truth)):
        return ModelTask.CLASSIFICATION
    return infer_task(predicted)


def package_score(code: Path, data_dir: Path) -> float:
    """``train.py``'s ``Main().evaluate(data_dir)``, under the rules of an evaluation pipeline."""
    # Importing it may drop a leading sys.path entry equal to the working directory (the
    # package's folder once main.py is loaded): the folder is put back first just below.
    from modelops.runtime import pipeline as package_contract

    os.chdir(code)
    if str(code) not in sys.path:
        sys.path.insert(0, str(code))
    artifacts = Path(os.environ.get("artifacts_directory", "artifacts"))  # noqa: SIM112
    artifacts.mkdir(parents=True, exist_ok=True)
    try:
        main_class = package_contract.load_main(code)
        package_contract.check_methods(main_class, "evaluation")
        try:
            instance = main_class()
        except Exception as exc:
            package_contract.print_user_traceback(exc)
            raise package_contract.UserCodeError(f"Main() raised {type(exc).__name__}: {exc}") from None
        return package_contract.as_score(package_contract.call(instance, "evaluate", str(data_dir)))
    except (package_contract.ContractError, package_contract.UserCodeError) as exc:
        raise _fail(f"the package's own evaluation failed: {exc}") from None


def evaluate_version(
    model_dir: Path, spec: dict[str, Any], data_dir: Path, *, label: str, plots_dir: Path,
    package_code: Path | None = None,
) -> dict[str, Any]:
    from modelops.runtime.metrics import compute_metrics, write_report_plots
    from modelops.runtime.scoring import load_model, predict_in_chunks, read_table

    table = read_table(data_dir)
    labelled = labelled_rows(table, label)
    features = feature_columns(spec, labelled, label)
    print(f"dataset: {len(table)} rows ({len(labelled)} labelled), label {label!r}, "
          f"{len(features)} features")
    model = load_model(model_dir, {**spec, "features": features})
    print(f"model loaded ({model.format.value}); scoring {len(labelled)} rows")
    prediction = predict_in_chunks(model, labelled)
    truth = labelled[label].to_numpy()
    task = choose_task(spec, model.task, truth, prediction.values)
    if task is ModelTask.REGRESSION:
        import pandas as pd

        from modelops.runtime.statistics import is_numeric

        if not is_numeric(pd.Series(truth)):
            raise _fail(f"the label column {label!r} is not numeric: a regression needs numbers")
    try:
        metrics = compute_metrics(task, truth, prediction.values,
                                  probabilities=prediction.probabilities, classes=prediction.classes)
        plots = write_report_plots(task, truth, prediction.values, plots_dir, metrics=metrics,
                                   probabilities=prediction.probabilities, classes=prediction.classes)
    except (TypeError, ValueError) as exc:
        raise _fail(f"cannot compute {task.value} metrics from these labels and predictions: {exc}") from exc
    shown = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    print(f"{task.value} metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()))
    score = package_score(package_code, data_dir.resolve()) if package_code is not None else None
    return {
        "format_version": FORMAT_VERSION,
        "task": task.value,
        "label": label,
        "features": features,
        "rows": int(len(table)),
        "labelled_rows": int(len(labelled)),
        "metrics": metrics,
        "score": score,
        "plots": [path.name for path in plots],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelops.runtime.evaluation")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--plots", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--package-code", type=Path, help="run this package's train.py evaluate() too")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text(encoding="utf-8"))
    out, plots = args.out.resolve(), args.plots.resolve()  # the package's code may change folder

    def step() -> None:
        report = evaluate_version(
            args.model_dir.resolve(), spec, args.data.resolve(), label=args.label, plots_dir=plots,
            package_code=args.package_code.resolve() if args.package_code else None,
        )
        write_json_atomically(out, report)
        print(f"report written: {len(report['plots'])} plot(s)"
              + (f", package score {report['score']}" if report["score"] is not None else ""))

    return run_step(step)


if __name__ == "__main__":
    sys.exit(main())
