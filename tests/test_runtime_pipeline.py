"""The pipeline runtime, run as the job's process would run it: a real subprocess on real files.

Packages here are tiny and stdlib-only so each run takes a fraction of a second; the example
scikit-learn package is exercised end to end in test_pipeline_api.py.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import modelops.runtime.pipeline as runtime

RUNTIME = Path(runtime.__file__)

GOOD = '''
import os
from pathlib import Path

class Main:
    def __init__(self):
        self.seen = None

    def process_data(self, input_directory):
        rows = sorted(p.name for p in Path(input_directory).iterdir())
        Path(os.environ["training_data_directory"], "train.txt").write_text(",".join(rows))
        Path(os.environ["test_data_directory"], "test.txt").write_text("held out")

    def train(self, data_directory):
        self.seen = sorted(p.name for p in Path(data_directory).iterdir())
        Path(os.environ["artifacts_directory"], "sub").mkdir(parents=True, exist_ok=True)
        Path(os.environ["artifacts_directory"], "sub", "note.txt").write_text("trained")

    def evaluate(self, data_directory):
        Path("evaluated_on.txt").write_text(data_directory)
        return 0.75

    def save(self):
        Path("model.txt").write_text(repr(self.seen))
'''


def make_package(root: Path, source: str = GOOD) -> Path:
    code = root / "code"
    code.mkdir(parents=True)
    (code / "train.py").write_text(textwrap.dedent(source))
    return code


def run_runtime(tmp_path: Path, code: Path, kind: str, data: Path,
                **extra_env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    outputs = tmp_path / "outputs.json"
    argv = [sys.executable, str(RUNTIME), "--type", kind, "--code", str(code), "--data", str(data),
            "--outputs", str(outputs)]
    env = {"PATH": "/usr/bin:/bin", "artifacts_directory": "artifacts", **extra_env}
    if kind == "full":
        argv += ["--training-dir", extra_env["training_data_directory"],
                 "--test-dir", extra_env["test_data_directory"]]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    return done, outputs


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    (folder / "b.csv").write_text("x\n2\n")
    return folder


def test_training_calls_train_then_save_in_the_package_folder(tmp_path: Path, data: Path) -> None:
    code = make_package(tmp_path)
    done, outputs = run_runtime(tmp_path, code, "training", data)
    assert done.returncode == 0, done.stderr
    assert (code / "model.txt").read_text() == "['a.csv', 'b.csv']"
    assert (code / "artifacts" / "sub" / "note.txt").read_text() == "trained"
    report = json.loads(outputs.read_text())
    assert report["saved_files"] == ["model.txt"]
    assert report["score"] is None
    assert report["ended_at"] >= report["started_at"]
    assert "Main.train(" in done.stdout and "Main.save()" in done.stdout


def test_evaluation_reports_the_score(tmp_path: Path, data: Path) -> None:
    code = make_package(tmp_path)
    done, outputs = run_runtime(tmp_path, code, "evaluation", data)
    assert done.returncode == 0, done.stderr
    assert json.loads(outputs.read_text())["score"] == 0.75
    assert not (code / "model.txt").exists()  # evaluation never saves


def test_full_pipeline_trains_on_what_process_data_wrote(tmp_path: Path, data: Path) -> None:
    code = make_package(tmp_path)
    training, test = tmp_path / "training", tmp_path / "test"
    training.mkdir()
    test.mkdir()
    done, outputs = run_runtime(tmp_path, code, "full", data, training_data_directory=str(training),
                                test_data_directory=str(test))
    assert done.returncode == 0, done.stderr
    assert (training / "train.txt").read_text() == "a.csv,b.csv"
    assert (code / "model.txt").read_text() == "['train.txt']"
    assert (code / "evaluated_on.txt").read_text() == str(test)
    order = [line for line in done.stdout.splitlines() if line.startswith("[pipeline] Main.") and "(" in line
             and "finished" not in line]
    assert [line.split("(")[0] for line in order] == [
        "[pipeline] Main.process_data", "[pipeline] Main.train", "[pipeline] Main.evaluate",
        "[pipeline] Main.save"]
    assert json.loads(outputs.read_text())["score"] == 0.75


def test_full_pipeline_without_process_data_uses_the_input(tmp_path: Path, data: Path) -> None:
    code = make_package(tmp_path, GOOD.replace("def process_data", "def _unused"))
    training, test = tmp_path / "training", tmp_path / "test"
    training.mkdir()
    test.mkdir()
    done, _ = run_runtime(tmp_path, code, "full", data, training_data_directory=str(training),
                          test_data_directory=str(test))
    assert done.returncode == 0, done.stderr
    assert (code / "model.txt").read_text() == "['a.csv', 'b.csv']"
    assert (code / "evaluated_on.txt").read_text() == str(data)


def test_a_missing_method_fails_before_any_user_code_runs(tmp_path: Path, data: Path) -> None:
    code = make_package(tmp_path, GOOD.replace("def save", "def keep"))
    done, outputs = run_runtime(tmp_path, code, "training", data)
    assert done.returncode == 2
    assert "class Main has no save()" in done.stderr
    assert "Main.train(" not in done.stdout
    assert not outputs.exists()


def test_an_exception_in_train_prints_the_users_traceback(tmp_path: Path, data: Path) -> None:
    code = make_package(tmp_path, GOOD.replace(
        "        self.seen = sorted(", "        raise ValueError('column x is empty')\n        self.seen = sorted("))
    done, outputs = run_runtime(tmp_path, code, "training", data)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "train.py" in done.stderr and "raise ValueError('column x is empty')" in done.stderr
    assert "Main.train() raised ValueError: column x is empty" in done.stderr
    assert not outputs.exists() and not (code / "model.txt").exists()


def test_a_save_that_writes_nothing_fails(tmp_path: Path, data: Path) -> None:
    code = make_package(tmp_path, GOOD.replace(
        'Path("model.txt").write_text(repr(self.seen))', "pass"))
    done, outputs = run_runtime(tmp_path, code, "training", data)
    assert done.returncode == 2
    assert "Main.save() wrote nothing to the working directory" in done.stderr
    assert not outputs.exists()


def test_a_score_that_is_not_a_number_fails(tmp_path: Path, data: Path) -> None:
    code = make_package(tmp_path, GOOD.replace("return 0.75", "return 'great'"))
    done, outputs = run_runtime(tmp_path, code, "evaluation", data)
    assert done.returncode == 2
    assert "must return a number" in done.stderr
    assert not outputs.exists()


def test_the_users_exit_code_is_kept(tmp_path: Path, data: Path) -> None:
    code = make_package(tmp_path, GOOD.replace(
        "        self.seen = sorted(", "        raise SystemExit(3)\n        self.seen = sorted("))
    done, outputs = run_runtime(tmp_path, code, "training", data)
    assert done.returncode == 3
    assert not outputs.exists()


def test_no_class_main_and_import_errors_are_reported(tmp_path: Path, data: Path) -> None:
    code = make_package(tmp_path / "a", "class Other:\n    pass\n")
    done, _ = run_runtime(tmp_path, code, "training", data)
    assert done.returncode == 2 and "train.py has no 'class Main'" in done.stderr
    code = make_package(tmp_path / "b", "import not_a_real_module_xyz\n")
    done, _ = run_runtime(tmp_path, code, "training", data)
    assert done.returncode == 1
    assert "ModuleNotFoundError" in done.stderr and "importing train.py failed" in done.stderr


def test_the_runtime_imports_only_the_standard_library() -> None:
    tree = ast.parse(RUNTIME.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported
