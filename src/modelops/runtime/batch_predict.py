"""The process of a BATCH_PREDICTION job: score a dataset version of any size in chunks.

    python -m modelops.runtime.batch_predict --model-dir M --spec spec.json --data D \
        --out predictions.parquet --summary summary.json --job-id N [--reference stats.json]

Reads every CSV and Parquet file under ``D`` (sorted by path) with pyarrow, ``chunk_rows`` rows
at a time, scores each chunk with ``runtime.scoring`` and appends it to one Parquet file: the
input columns, ``prediction`` (plus ``probability_<class>`` for classifiers that give them) and
``job_id``. Memory stays flat: one chunk, one Parquet row group and a bounded drift sample.

CSV types are inferred from the first block; should a later row not fit (an integer column that
turns decimal further down), that column is widened (integer → float → text) and the file read
again, so a large file never needs a type declared by hand.

Drift (``runtime.drift``) is measured against the version's reference statistics on a uniform
random sample of at most ``--drift-sample`` rows (all rows when fewer).

On a Ray cluster (the Ray executor says so in the job's environment: ``runtime.ray_scoring``)
this process is the driver: it reads, writes and samples as above, while each chunk is scored
by a Ray task, a bounded number at once, the results written strictly in input order. The
model is then loaded in the cluster's worker processes only, once per process. There is no
fallback: a job told it runs on Ray that cannot join the cluster fails, saying why.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.runtime.model_import import run_step, write_json_atomically
from modelops.runtime.ray_scoring import (
    ChunkScorer,
    RayPlacement,
    ScoredChunk,
    placement_from_environment,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

# Chunks in, their results out in the same order: scored here, or as Ray tasks.
Scoring = Callable[[Iterable[tuple["pa.Table", Path]]], Iterator[ScoredChunk]]

DATA_SUFFIXES = (".csv", ".parquet", ".pq")
DEFAULT_CHUNK_ROWS = 50_000
DEFAULT_DRIFT_SAMPLE = 100_000
CSV_BLOCK_BYTES = 1 << 20
PARQUET_BUFFER_BYTES = 1 << 20
PROGRESS_SECONDS = 2.0
_CSV_COLUMN = re.compile(r"In CSV column #(\d+)")


class _Widen(Exception):
    """A CSV column needs a wider type than inferred: read again with it."""

    def __init__(self, column: str) -> None:
        super().__init__(column)
        self.column = column


def data_files(folder: Path) -> list[Path]:
    from modelops.runtime.scoring import ModelError

    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
    if not files:
        raise ModelError("the dataset holds no CSV or Parquet file")
    return files


def wider(current: pa.DataType) -> pa.DataType | None:
    import pyarrow as pa

    if pa.types.is_integer(current) or pa.types.is_null(current):
        return pa.float64()
    if pa.types.is_string(current) or pa.types.is_large_string(current):
        return None
    return pa.string()


def _csv_batches(path: Path, types: dict[str, pa.DataType]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names: list[str] = []
    try:
        reader = pcsv.open_csv(
            path, read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            convert_options=pcsv.ConvertOptions(column_types=types),
        )
        names = reader.schema.names
        yield from reader
    except pa.ArrowInvalid as exc:
        found = _CSV_COLUMN.search(str(exc))
        if found and "conversion error" in str(exc):
            index = int(found.group(1))
            if not names:  # failed on the first block: read the header for the name
                names = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES)).schema.names
            raise _Widen(names[index]) from exc
        raise


def _chunks(files: Sequence[Path], root: Path, chunk_rows: int, types: dict[str, pa.DataType]) -> Iterator[tuple[pa.Table, Path]]:
    """Tables of at most ``chunk_rows`` rows over all files, cast to the first file's schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from modelops.runtime.scoring import ModelError

    schema: pa.Schema | None = None
    for path in files:
        rel = path.relative_to(root)
        print(f"reading {rel} ({path.stat().st_size:,} bytes)", flush=True)
        if path.suffix.lower() == ".csv":
            # Every file is parsed with the types already settled, so they all agree.
            wanted = dict(types)
            if schema is not None:
                wanted = {f.name: f.type for f in schema} | wanted
            batches: Iterator[pa.RecordBatch] = _csv_batches(path, wanted)
        else:
            try:
                # pre_buffer would keep every row group read so far cached until the file is
                # closed: memory would grow with the file. Plain buffered reads keep it flat.
                batches = pq.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES).iter_batches(
                    batch_size=chunk_rows
                )
            except Exception as exc:
                raise ModelError(f"cannot read {rel}: {exc}") from exc
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in batches:
            if schema is None:
                schema = pa.schema([pa.field(f.name, types.get(f.name, f.type)) for f in batch.schema])
            if batch.schema.names != schema.names:
                raise ModelError(
                    f"{rel} has other columns than the first file: every file of the dataset must "
                    "share the same columns"
                )
            try:
                batch = batch.cast(schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ModelError(f"{rel}: a column's values do not fit the first file's types: {exc}") from exc
            pending.append(batch)
            held += batch.num_rows
            while held >= chunk_rows:
                table = pa.Table.from_batches(pending).combine_chunks()
                yield table.slice(0, chunk_rows), rel
                rest = table.slice(chunk_rows)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield pa.Table.from_batches(pending), rel


def text_columns(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary-encoding: text. Trying it on numbers costs more than half of the
    writing time and saves nothing on measurements."""
    import pyarrow as pa

    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_dictionary(f.type)]


def _unique(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def scored_table(table: pa.Table, prediction: Any, job_id: int) -> pa.Table:
    """The input columns, then the prediction, probabilities and the job id."""
    import numpy as np
    import pyarrow as pa

    taken = set(table.column_names)
    values = np.asarray(prediction.values)
    try:
        column = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        column = pa.array([None if v is None else str(v) for v in values.tolist()], pa.string())
    out = table.append_column(_unique("prediction", taken), column)
    if prediction.probabilities is not None and prediction.classes is not None:
        for index, cls in enumerate(prediction.classes):
            out = out.append_column(
                _unique(f"probability_{cls}", taken), pa.array(prediction.probabilities[:, index], pa.float64())
            )
    return out.append_column(_unique("job_id", taken), pa.array(np.full(len(table), job_id, dtype=np.int64)))


class DriftSample:
    """A uniform random sample without replacement of at most ``size`` rows of a stream: each
    row draws a random key and the rows with the smallest keys are kept."""

    def __init__(self, columns: list[str], size: int, seed: int = 0) -> None:
        import numpy as np

        self.columns = columns
        self.size = size
        self.random = np.random.default_rng(seed)
        self.keys: np.ndarray | None = None
        self.frame: pd.DataFrame | None = None
        self.predictions: np.ndarray | None = None

    def add(self, frame: pd.DataFrame, predictions: np.ndarray) -> None:
        import numpy as np
        import pandas as pd

        if self.size <= 0 or not len(frame):
            return
        keys = self.random.random(len(frame))
        part = frame[self.columns].reset_index(drop=True)
        if self.frame is None or self.keys is None or self.predictions is None:
            all_keys, all_rows, all_pred = keys, part, np.asarray(predictions, dtype=object)
        else:
            all_keys = np.concatenate([self.keys, keys])
            all_rows = pd.concat([self.frame, part], ignore_index=True)
            all_pred = np.concatenate([self.predictions, np.asarray(predictions, dtype=object)])
        if len(all_keys) > self.size:
            keep = np.argpartition(all_keys, self.size - 1)[: self.size]
            all_keys, all_pred = all_keys[keep], all_pred[keep]
            all_rows = all_rows.iloc[keep].reset_index(drop=True)
        self.keys, self.frame, self.predictions = all_keys, all_rows, all_pred


def score_stream(
    *, model_dir: Path, spec: dict[str, Any], data: Path, out: Path, job_id: int, chunk_rows: int,
    reference: dict[str, Any] | None, drift_sample: int,
) -> dict[str, Any]:
    """Score every file under ``data`` into ``out``; returns the summary written for the job."""
    import pyarrow as pa

    from modelops.runtime.scoring import ModelError, load_model

    started = time.monotonic()
    files = data_files(data)
    placement = placement_from_environment()
    ray_scorer: ChunkScorer | None = None
    if placement is None:
        model = load_model(model_dir, spec)
        print(f"model loaded ({model.format}); scoring {len(files)} file(s) in chunks of {chunk_rows:,} rows",
              flush=True)
        score = _local_scoring(model, job_id, chunk_rows)
    else:
        ray_scorer = _ray_scorer(placement, model_dir, spec, job_id, chunk_rows)
        print(f"scoring {len(files)} file(s) in chunks of {chunk_rows:,} rows as Ray tasks on the cluster at "
              f"{ray_scorer.describe()}", flush=True)
        score = ray_scorer.scored
    types: dict[str, pa.DataType] = {}
    try:
        for _attempt in range(1000):
            try:
                result = _score_once(score, files, data, out, job_id, chunk_rows, types, reference, drift_sample,
                                     ray_scorer)
            except _Widen as widen:
                current = types.get(widen.column, pa.null())
                nxt = wider(current) if widen.column in types else pa.float64()
                if nxt is None:
                    raise ModelError(f"column {widen.column!r} cannot be read with one type") from None
                types[widen.column] = nxt
                print(f"column {widen.column!r} holds values of a wider type further down: "
                      f"reading again with it as {nxt}", flush=True)
                continue
            result["elapsed_seconds"] = round(time.monotonic() - started, 3)
            return result
    finally:
        if ray_scorer is not None:  # before the error line, so nothing of Ray's follows it
            ray_scorer.close()
    raise ModelError("the data's column types could not be settled")


def _local_scoring(model: Any, job_id: int, chunk_rows: int) -> Scoring:
    def score(chunks: Iterable[tuple[pa.Table, Path]]) -> Iterator[ScoredChunk]:
        from modelops.runtime.scoring import predict_in_chunks

        for table, rel in chunks:
            frame = table.to_pandas()
            prediction = predict_in_chunks(model, frame, chunk_rows=chunk_rows)
            yield ScoredChunk(rel=rel, table=table, scored=scored_table(table, prediction, job_id),
                              values=prediction.values, frame=frame)

    return score


def _ray_scorer(placement: RayPlacement, model_dir: Path, spec: dict[str, Any], job_id: int,
                chunk_rows: int) -> ChunkScorer:
    from modelops.runtime.scoring import ModelError

    if placement.workdir_mode != "shared":
        # Its arguments are the server's paths and its predictions file must come back to the
        # server: neither holds when only a copy of the job's folder travels to the node.
        raise ModelError(
            f"batch prediction on Ray needs the shared working-folder mode (MODELOPS_RAY_WORKDIR_MODE="
            f"shared); in {placement.workdir_mode!r} mode its predictions would stay on the Ray node"
        )
    scorer = ChunkScorer(placement=placement, model_dir=model_dir, spec=spec, job_id=job_id,
                         chunk_rows=chunk_rows)
    scorer.connect()
    return scorer


def _score_once(
    score: Scoring, files: list[Path], root: Path, out: Path, job_id: int, chunk_rows: int,
    types: dict[str, pa.DataType], reference: dict[str, Any] | None, drift_sample: int,
    ray_scorer: ChunkScorer | None,
) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from modelops.runtime.drift import compute_drift
    from modelops.runtime.scoring import ModelError

    features = list((reference or {}).get("features") or {})
    sample: DriftSample | None = None
    writer: pq.ParquetWriter | None = None
    part = out.with_name(f".{out.name}.part")
    rows, last_report = 0, time.monotonic()
    columns: list[str] = []
    try:
        for chunk in score(_chunks(files, root, chunk_rows, types)):
            table, rel, scored = chunk.table, chunk.rel, chunk.scored
            if writer is None:
                writer = pq.ParquetWriter(part, scored.schema, use_dictionary=text_columns(scored.schema))
                columns = scored.column_names
            try:
                scored = scored.cast(writer.schema)
            except Exception as exc:
                raise ModelError(f"the predictions for {rel} changed type from the first chunk: {exc}") from exc
            writer.write_table(scored)
            if reference is not None:
                frame = chunk.frame if chunk.frame is not None else table.to_pandas()
                if sample is None:
                    sample = DriftSample([f for f in features if f in frame.columns], drift_sample)
                sample.add(frame, chunk.values)
            rows += len(table)
            if time.monotonic() - last_report >= PROGRESS_SECONDS:
                print(f"scored {rows:,} rows", flush=True)
                last_report = time.monotonic()
        if writer is None:
            raise ModelError("the dataset holds no rows to score")
        writer.close()
        writer = None
        os.replace(part, out)
    finally:
        if writer is not None:
            writer.close()
        part.unlink(missing_ok=True)
    print(f"scored {rows:,} rows in all; predictions written", flush=True)
    if ray_scorer is not None:
        print(ray_scorer.report(), flush=True)
    drift = None
    if reference is not None and sample is not None and sample.frame is not None:
        drift = compute_drift(reference, sample.frame, predictions=sample.predictions)
        drift["sample_rows"] = int(len(sample.frame))
        worst = drift.get("max_psi")
        print(f"drift against the reference statistics: max PSI "
              f"{'n/a' if worst is None else f'{worst:.4f}'} on {len(sample.frame):,} sampled rows; "
              f"drifted features: {', '.join(drift['drifted_features']) or 'none'}", flush=True)
    elif reference is None:
        print("no reference statistics for this version: drift not measured "
              "(compute statistics for it to get drift figures)", flush=True)
    return {"rows": rows, "files": len(files), "columns": columns, "drift": drift}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelops.runtime.batch_predict")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--summary", type=Path, required=True)
    parser.add_argument("--job-id", type=int, required=True)
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--reference", type=Path, default=None)
    parser.add_argument("--drift-sample", type=int, default=DEFAULT_DRIFT_SAMPLE)
    args = parser.parse_args(argv)
    # A package's main.py is imported with its own folder as the working directory.
    model_dir, data, out, summary = (p.resolve() for p in (args.model_dir, args.data, args.out, args.summary))
    spec = json.loads(args.spec.read_text(encoding="utf-8"))
    reference = json.loads(args.reference.read_text(encoding="utf-8")) if args.reference else None

    def step() -> None:
        result = score_stream(
            model_dir=model_dir, spec=spec, data=data, out=out, job_id=args.job_id,
            chunk_rows=max(1, args.chunk_rows), reference=reference, drift_sample=args.drift_sample,
        )
        write_json_atomically(summary, result)

    return run_step(step)


if __name__ == "__main__":
    sys.exit(main())
