"""Runs one pipeline of an ML package inside the job's own process. STANDARD LIBRARY ONLY.

This file runs under the package's interpreter, which may hold nothing but the package's own
requirements, so it imports nothing from modelops and can be run by path:

    python pipeline.py --type training --code CODE_DIR --data DATA_DIR --outputs OUT.json

It makes CODE_DIR the working directory (where ``save()`` writes, by the package convention),
imports CODE_DIR/train.py, checks that ``class Main`` has the methods the pipeline type needs,
then calls them in order:

    training    Main(), train(data), save()
    evaluation  Main(), evaluate(data) -> score
    full        Main(), process_data(data) if defined, train(training), evaluate(test), save()

On success it writes OUT.json (score, files save() wrote, times) atomically and exits 0. On
failure it prints the traceback of the user's code and exits non-zero: 2 when the package
breaks the contract, 1 when the user's code raised, or the code the user's code exited with.
"""

from __future__ import annotations

import os
import sys

# Python puts this file's folder (run by path) or the current folder (run with -m: the job's
# working folder, holding package/ and data/) first on sys.path, where they could shadow the
# standard library or the package's own imports. Drop it before importing more.
if sys.path and os.path.abspath(sys.path[0] or ".") in (
    os.path.dirname(os.path.abspath(__file__)), os.getcwd()
):
    del sys.path[0]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REQUIRED = {
    "training": ("train", "save"),
    "evaluation": ("evaluate",),
    "full": ("train", "evaluate", "save"),
}
EXIT_CONTRACT = 2
EXIT_USER_ERROR = 1
SKIPPED_DIRS = ("__pycache__",)


class ContractError(Exception):
    """The package does not offer what this pipeline type needs."""


class UserCodeError(Exception):
    """The user's code raised; the traceback has been printed already."""


def say(message: str) -> None:
    print(f"[pipeline] {message}", flush=True)


def load_main(code: Path) -> type:
    train_py = code / "train.py"
    if not train_py.is_file():
        raise ContractError(f"the package has no train.py in its root folder ({code})")
    spec = importlib.util.spec_from_file_location("train", train_py)
    if spec is None or spec.loader is None:
        raise ContractError(f"cannot load {train_py}")
    module = importlib.util.module_from_spec(spec)
    # Registered as 'train' so objects pickled from it (joblib) can be loaded again later.
    sys.modules["train"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        print_user_traceback(exc)
        raise UserCodeError(f"importing train.py failed: {type(exc).__name__}: {exc}") from None
    main_class = getattr(module, "Main", None)
    if not isinstance(main_class, type):
        raise ContractError("train.py has no 'class Main'")
    return main_class


def check_methods(main_class: type, pipeline_type: str) -> None:
    missing = [m for m in REQUIRED[pipeline_type] if not callable(getattr(main_class, m, None))]
    if missing:
        names = ", ".join(f"{m}()" for m in missing)
        raise ContractError(
            f"train.py: class Main has no {names}; a {pipeline_type} pipeline calls "
            + ", ".join(f"{m}()" for m in REQUIRED[pipeline_type])
        )


def print_user_traceback(exc: BaseException) -> None:
    # Drop this module's own frames at the top: the user wants to see where their code broke.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb, file=sys.stderr)
    sys.stderr.flush()


def call(instance: object, method: str, *args: str) -> Any:
    shown = ", ".join(repr(a) for a in args)
    say(f"Main.{method}({shown})")
    started = time.monotonic()
    try:
        result = getattr(instance, method)(*args)
    except Exception as exc:
        print_user_traceback(exc)
        raise UserCodeError(f"Main.{method}() raised {type(exc).__name__}: {exc}") from None
    say(f"Main.{method}() finished in {time.monotonic() - started:.2f}s")
    return result


def snapshot(code: Path, excluded: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under the working directory, outside the artifacts folder."""
    files: dict[str, tuple[int, int]] = {}
    for root, dirs, names in os.walk(code):
        root_path = Path(root)
        dirs[:] = [
            d for d in dirs if d not in SKIPPED_DIRS and (root_path / d) != excluded
        ]
        for name in names:
            path = root_path / name
            try:
                info = path.lstat()
            except OSError:
                continue
            files[path.relative_to(code).as_posix()] = (info.st_size, info.st_mtime_ns)
    return files


def as_score(value: object) -> float:
    if isinstance(value, bool | str | bytes) or value is None:
        raise ContractError(f"Main.evaluate() must return a number, it returned {value!r}")
    try:
        score = float(value)  # type: ignore[arg-type]  # numpy scalars convert too
    except (TypeError, ValueError):
        raise ContractError(
            f"Main.evaluate() must return a number, it returned {type(value).__name__}"
        ) from None
    if not math.isfinite(score):
        raise ContractError(f"Main.evaluate() must return a finite number, it returned {score}")
    return score


def run(args: argparse.Namespace) -> dict[str, Any]:
    code = Path(args.code).resolve()
    os.chdir(code)
    sys.path.insert(0, str(code))
    # The package contract names this variable in lower case.
    artifacts = (code / os.environ.get("artifacts_directory", "artifacts")).resolve()  # noqa: SIM112
    artifacts.mkdir(parents=True, exist_ok=True)
    started = time.time()

    main_class = load_main(code)
    check_methods(main_class, args.type)
    say(f"{args.type} pipeline; working directory {code}; artifacts in {artifacts}")
    say("Main()")
    try:
        instance = main_class()
    except Exception as exc:
        print_user_traceback(exc)
        raise UserCodeError(f"Main() raised {type(exc).__name__}: {exc}") from None

    score: float | None = None
    train_dir = eval_dir = args.data
    if args.type == "full":
        if callable(getattr(instance, "process_data", None)):
            call(instance, "process_data", args.data)
            train_dir, eval_dir = args.training_dir, args.test_dir
        else:
            # Without process_data the input is the training data; evaluation uses the chosen
            # evaluation data if any, else the input data as well.
            has_test_data = any(Path(args.test_dir).iterdir())
            eval_dir = args.test_dir if has_test_data else args.data
            say("Main has no process_data(): training on the input data as is")
    if args.type in ("training", "full"):
        call(instance, "train", train_dir)
    if args.type in ("evaluation", "full"):
        score = as_score(call(instance, "evaluate", eval_dir))
        say(f"score: {score}")

    saved: list[str] = []
    if args.type in ("training", "full"):
        before = snapshot(code, artifacts)
        call(instance, "save")
        after = snapshot(code, artifacts)
        saved = sorted(path for path, stamp in after.items() if before.get(path) != stamp)
        if not saved:
            raise ContractError(
                f"Main.save() wrote nothing to the working directory {code}: save the trained "
                "model there (e.g. joblib.dump(model, 'model.joblib')) so the new version holds it"
            )
        say(f"save() wrote {len(saved)} file(s): {', '.join(saved[:20])}")
    return {
        "pipeline_type": args.type,
        "score": score,
        "saved_files": saved,
        "started_at": started,
        "ended_at": time.time(),
    }


def write_outputs(path: Path, outputs: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(outputs, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="modelops-pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--type", required=True, choices=sorted(REQUIRED))
    parser.add_argument("--code", required=True, help="the package's working directory")
    parser.add_argument("--data", required=True, help="the input data directory")
    parser.add_argument("--training-dir", help="full pipeline: where process_data writes training data")
    parser.add_argument("--test-dir", help="full pipeline: evaluation data directory")
    parser.add_argument("--outputs", required=True, help="where to write the run's outputs (JSON)")
    args = parser.parse_args(argv)
    if args.type == "full" and not (args.training_dir and args.test_dir):
        parser.error("a full pipeline needs --training-dir and --test-dir")
    return args


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    args = parse_args(argv)
    outputs_path = Path(args.outputs).resolve()
    try:
        outputs = run(args)
    except ContractError as exc:
        print(f"[pipeline] error: {exc}", file=sys.stderr, flush=True)
        return EXIT_CONTRACT
    except UserCodeError as exc:
        print(f"[pipeline] error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    write_outputs(outputs_path, outputs)
    say(f"done in {outputs['ended_at'] - outputs['started_at']:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
