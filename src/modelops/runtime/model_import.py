"""The IMPORT job's process: load an uploaded model, read what it says, write its signature.

    python -m modelops.runtime.model_import --model-dir MODEL --spec spec.json --out signature.json

spec.json holds the detected ``format`` and ``model_file`` and what the user declared
(``features``, ``task``, ``target``). Loading the model runs the file's code (pickles do), which
is why this happens here, in the job's own process, and never in the server. On success the
resolved signature is written atomically to --out and the exit code is 0; on a bad model the
last line on stderr is ``ERROR: <why>`` and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelops.domain.byom import (
    ModelFormat,
    ModelSignature,
    parse_task,
    resolve_signature,
)
from modelops.domain.errors import InvalidInput

EXIT_BAD_MODEL = 1


def write_json_atomically(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(data, indent=2, default=str, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)


def introspect_model(model_dir: Path, spec: dict[str, Any]) -> ModelSignature:
    """Load the model as uploaded and combine what it says with what the user declared."""
    from modelops.runtime.scoring import load_model

    fmt = ModelFormat(spec["format"])
    # Load with nothing declared, so the file speaks for itself; the declarations are checked
    # against it afterwards.
    model = load_model(model_dir, {"format": fmt.value, "model_file": spec["model_file"]})
    found = model.introspect()
    print(f"loaded {spec['model_file']} as {fmt.value}: task={found.task or 'not stated'}, "
          f"features={'named' if found.features else found.n_features or 'not stated'}")
    return resolve_signature(
        format=fmt, model_file=spec["model_file"], found=found,
        declared_features=spec.get("features") or None,
        declared_task=parse_task(spec.get("task")),
        declared_target=spec.get("target") or None,
    )


def run_step(step: Callable[[], None]) -> int:
    """Run a job step: a user-caused failure ends with ``ERROR: why`` as the last line."""
    from modelops.runtime.scoring import ModelError

    try:
        step()
    except (ModelError, InvalidInput) as exc:
        sys.stdout.flush()
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_MODEL
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelops.runtime.model_import")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text(encoding="utf-8"))

    def step() -> None:
        signature = introspect_model(args.model_dir, spec)
        write_json_atomically(args.out, signature.as_dict())
        print(f"signature: task={signature.task.value}, {len(signature.features)} features "
              f"({signature.sources.get('features')}), target={signature.target or '-'}")

    return run_step(step)


if __name__ == "__main__":
    sys.exit(main())
