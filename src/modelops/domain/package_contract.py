"""The ML package contract, checked by reading the source, never by importing it.

A package has train.py with ``class Main`` (``__init__``, ``train``, ``evaluate``, ``save``)
to be trainable, and/or main.py with ``class Main`` (``__init__``, ``predict``) to be servable.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

TRAIN_METHODS = ("__init__", "train", "evaluate", "save")
SERVE_METHODS = ("__init__", "predict")


@dataclass(frozen=True)
class ContractReport:
    can_train: bool
    can_serve: bool
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and (self.can_train or self.can_serve)


def _methods_of_main(source: str, filename: str) -> tuple[set[str] | None, str | None]:
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        return None, f"{filename}: syntax error{where}: {exc.msg}"
    except (MemoryError, RecursionError):  # CPython's parser reports a stack overflow this way
        return None, f"{filename}: nested too deeply to be read"
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Main":
            return {
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            }, None
    return None, f"{filename}: no top-level 'class Main'"


def _check(source: str | None, filename: str, needed: tuple[str, ...]) -> tuple[bool, list[str]]:
    if source is None:
        return False, []
    methods, problem = _methods_of_main(source, filename)
    if problem:
        return False, [problem]
    assert methods is not None
    missing = [m for m in needed if m not in methods]
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        return False, [f"{filename}: class Main is missing method(s) {names}"]
    return True, []


def check_package(train_source: str | None, main_source: str | None) -> ContractReport:
    """Check train.py and main.py sources; a file that is present must be complete."""
    can_train, train_problems = _check(train_source, "train.py", TRAIN_METHODS)
    can_serve, serve_problems = _check(main_source, "main.py", SERVE_METHODS)
    problems = train_problems + serve_problems
    if train_source is None and main_source is None:
        problems.append(
            "the package has neither train.py (class Main with __init__, train, evaluate, save) "
            "nor main.py (class Main with __init__, predict) at its root"
        )
    return ContractReport(can_train=can_train, can_serve=can_serve, problems=problems)
