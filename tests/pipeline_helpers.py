"""Shared by the pipeline tests: the example package and data, and tiny stdlib-only packages."""

from __future__ import annotations

import textwrap
from pathlib import Path

from modelops.client import ModelOpsClient

REPO = Path(__file__).resolve().parent.parent
IRIS_PACKAGE = REPO / "examples" / "iris_package"
IRIS_DATA = REPO / "examples" / "iris_data"

# A package that needs nothing but the standard library, so its runs take a moment. The
# markers are replaced to make the failing variants.
TINY = '''
import os
import sys
import time
from pathlib import Path


class Main:
    def __init__(self):
        self.rows = None

    def train(self, data_directory):
        self.rows = sum(len(p.read_text().splitlines()) for p in Path(data_directory).rglob("*.csv"))
        Path(os.environ["artifacts_directory"], "rows.txt").write_text(str(self.rows))
        seen = [os.environ.get(name, "unset") for name in ("greeting", "CUDA_VISIBLE_DEVICES")]
        Path(os.environ["artifacts_directory"], "env.txt").write_text("|".join(seen))
        print("training started", flush=True)
        # TRAIN

    def evaluate(self, data_directory):
        return 0.5

    def save(self):
        # SAVE
        Path("model.txt").write_text(str(self.rows))
'''

VARIANTS = {
    "ok": {},
    "raises": {"# TRAIN": "raise ValueError('bad rows in the training data')"},
    "saves_nothing": {"# SAVE": "return"},
    "exits": {"# TRAIN": "sys.exit(4)"},
    # The upload check reads the source; this Main loses save() only when the code runs.
    "no_save": {"# SAVE": "pass", "__END__": "\ndel Main.save\n"},
    "slow": {"# TRAIN": "time.sleep(120)"},
}


def tiny_package(root: Path, variant: str = "ok") -> Path:
    source = TINY + "__END__"
    for marker, replacement in VARIANTS[variant].items():
        source = source.replace(marker, replacement)
    folder = root / f"tiny-{variant}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(textwrap.dedent(source.replace("__END__", "")))
    return folder


def seed(client: ModelOpsClient, project: str) -> None:
    """A project holding the iris dataset (version 1) and the iris package (version 1.0)."""
    client.projects.create(project)
    client.datasets.upload_version(project, "iris", IRIS_DATA)
    client.packages.upload(project, "iris", IRIS_PACKAGE)


def log_text(client: ModelOpsClient, job_id: int) -> str:
    return "\n".join(line["text"] for line in client.jobs.logs(job_id, limit=5000))
