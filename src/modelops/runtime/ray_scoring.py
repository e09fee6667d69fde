"""A batch prediction's chunks scored as Ray tasks, when its job runs on a Ray cluster.

Runs inside the job's process (the driver) and in the cluster's worker processes (the tasks),
never in the server. The Ray executor tells a job that it runs on Ray; the local executor sets
none of these:

- ``MODELOPS_RAY_WORKDIR``: the executor's working-folder mode, ``shared`` or ``upload``;
- ``MODELOPS_RAY_CLUSTER``: the cluster's address for ``ray.init(address=…)`` (the GCS
  ``host:port`` Ray gives the Ray job's entrypoint as ``RAY_ADDRESS``);
- ``RAY_JOB_CONFIG_JSON_ENV_VAR``: Ray's configuration of the submitted Ray job, so that the
  driver's ``ray.init`` joins that Ray job: its tasks get the job's ``runtime_env`` (the
  allow-listed variables; in upload mode the working folder and requirements too) and are
  stopped with it.

The driver (``ChunkScorer.scored``) reads the chunks as the local path does and passes each one
(an Arrow table, through Ray's object store) to ``score_chunk`` as a task. At most ``window``
tasks are in flight, so the driver holds a bounded number of chunks whatever the input's size,
and results are taken back strictly in submission order, so the predictions file lists the
rows in input order. A worker process loads the model once, with the same code as the local
path (``runtime.scoring.load_model``, from the model folder's path: the shared mode makes it
visible on every node) and keeps it for every later chunk it scores.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from modelops.runtime.scoring import LoadedModel

WORKDIR_VARIABLE = "MODELOPS_RAY_WORKDIR"
CLUSTER_VARIABLE = "MODELOPS_RAY_CLUSTER"
JOB_CONFIG_VARIABLE = "RAY_JOB_CONFIG_JSON_ENV_VAR"
# Job variable ← the variable of the Ray job's entrypoint it is copied from (by the entry
# script, when set). The last one is the node's own: a cluster on loopback only sets it to 0,
# without which a driver would look for 127.0.0.1's cluster at the machine's network address.
FROM_RAY = {
    CLUSTER_VARIABLE: "RAY_ADDRESS", JOB_CONFIG_VARIABLE: JOB_CONFIG_VARIABLE,
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
}
MAX_IN_FLIGHT = 16
SLOW_CHUNK_SECONDS = 30.0

# The model each worker process has loaded, by (model folder, spec): loaded on a worker's first
# chunk, reused for the rest.
_loaded: dict[tuple[str, str], LoadedModel] = {}


@dataclass(frozen=True)
class RayPlacement:
    """Where the job runs: the cluster's address and the executor's working-folder mode."""

    address: str
    workdir_mode: str


def placement_from_environment(environ: Mapping[str, str] | None = None) -> RayPlacement | None:
    """The job's Ray placement, or None when it runs on the local executor."""
    environ = os.environ if environ is None else environ
    mode = environ.get(WORKDIR_VARIABLE)
    if not mode:
        return None
    return RayPlacement(address=environ.get(CLUSTER_VARIABLE, ""), workdir_mode=mode)


@dataclass
class ScoredChunk:
    """One chunk back from scoring: its file, the input rows, the output table, the predicted
    values and (when it was at hand) the input as a frame."""

    rel: Path
    table: pa.Table
    scored: pa.Table
    values: np.ndarray
    frame: pd.DataFrame | None = None


def _model(model_dir: str, spec: Mapping[str, Any]) -> LoadedModel:
    from modelops.runtime.scoring import load_model

    key = (model_dir, json.dumps(spec, sort_keys=True, default=str))
    model = _loaded.get(key)
    if model is None:
        model = _loaded[key] = load_model(Path(model_dir), spec)
    return model


def score_chunk(
    table: pa.Table, model_dir: str, spec: dict[str, Any], job_id: int, chunk_rows: int,
) -> tuple[pa.Table, np.ndarray, str, int]:
    """The Ray task: score one chunk as the local path does. Returns the output table, the
    predicted values, and the node and process that scored it."""
    import ray

    from modelops.runtime.batch_predict import scored_table
    from modelops.runtime.scoring import predict_in_chunks

    model = _model(model_dir, spec)
    prediction = predict_in_chunks(model, table.to_pandas(), chunk_rows=chunk_rows)
    node = ray.get_runtime_context().get_node_id()
    return scored_table(table, prediction, job_id), prediction.values, node, os.getpid()


@dataclass
class ChunkScorer:
    """The driver's side: connected to the cluster, scores chunks as tasks in input order."""

    placement: RayPlacement
    model_dir: Path
    spec: dict[str, Any]
    job_id: int
    chunk_rows: int
    window: int = 2
    nodes: int = 0
    cpus: float = 0.0
    chunks: int = 0
    workers: set[tuple[str, int]] = field(default_factory=set)
    _remote: Any = None

    def connect(self) -> None:
        """Join the Ray job this process runs in; a ModelError says why it cannot."""
        from modelops.runtime.scoring import ModelError

        if not self.placement.address:
            raise ModelError(f"the job runs on Ray but was not given the cluster's address "
                             f"({CLUSTER_VARIABLE} is empty)")
        try:
            import ray
        except ImportError as exc:
            raise ModelError(f"the job runs on Ray but cannot import ray: {exc}") from exc
        # Every failed chunk is the same failure: the first one is reported, not the rest.
        os.environ["RAY_IGNORE_UNHANDLED_ERRORS"] = "1"
        # What a task prints reaches this log as "(score_chunk pid=…) text", without colour codes.
        os.environ["RAY_COLOR_PREFIX"] = "0"
        runtime_env: dict[str, Any] = {}
        if self.placement.workdir_mode == "shared":
            # The job's interpreter (a package's own environment when it has requirements) is
            # at the same path on every node in this mode: the tasks run with it too.
            runtime_env["py_executable"] = sys.executable
        try:
            ray.init(address=self.placement.address, runtime_env=runtime_env or None,
                     logging_level=logging.WARNING, log_to_driver=True)
        except Exception as exc:
            raise ModelError(f"cannot join the Ray cluster at {self.placement.address}: "
                             f"{type(exc).__name__}: {exc}") from exc
        self.nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        self.cpus = float(ray.cluster_resources().get("CPU", 1.0))
        # Twice the CPUs keeps every worker busy while the driver reads and writes; the cap
        # bounds the chunks held at once on a large cluster.
        self.window = max(2, min(MAX_IN_FLIGHT, 2 * int(self.cpus)))
        self._remote = ray.remote(num_cpus=1)(score_chunk)

    def close(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()

    def scored(self, chunks: Iterable[tuple[pa.Table, Path]]) -> Iterator[ScoredChunk]:
        """Each chunk's result, in the order the chunks came, with at most ``window`` of them
        being scored at once."""
        self.chunks, self.workers = 0, set()  # a pass read again with wider types counts afresh
        pending: deque[tuple[Any, pa.Table, Path]] = deque()
        for table, rel in chunks:
            if len(pending) >= self.window:
                yield self._take(*pending.popleft())
            # A large argument travels through the object store, not inline with the call.
            ref = self._remote.remote(table, str(self.model_dir), self.spec, self.job_id, self.chunk_rows)
            pending.append((ref, table, rel))
        while pending:
            yield self._take(*pending.popleft())

    def _take(self, ref: Any, table: pa.Table, rel: Path) -> ScoredChunk:
        import ray
        from ray.exceptions import RayTaskError

        from modelops.domain.errors import InvalidInput
        from modelops.runtime.scoring import ModelError

        while not ray.wait([ref], timeout=SLOW_CHUNK_SECONDS)[0]:
            # A slow model, or no CPU free for the task (e.g. every one reserved by jobs).
            free = ray.available_resources().get("CPU", 0.0)
            print(f"chunk {self.chunks + 1} ({rel}) is still being scored as a Ray task "
                  f"({free:g} of {self.cpus:g} CPU(s) free on the cluster)", flush=True)
        try:
            scored, values, node, pid = ray.get(ref)
        except RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, ModelError | InvalidInput):  # the model's own failure, as locally
                raise ModelError(str(cause)) from None
            raise
        self.chunks += 1
        self.workers.add((node, pid))
        return ScoredChunk(rel=rel, table=table, scored=scored, values=values)

    def describe(self) -> str:
        return (f"{self.placement.address} ({self.nodes} node(s), {self.cpus:g} CPU(s)): "
                f"up to {self.window} chunks in flight; the driver is pid {os.getpid()}")

    def report(self) -> str:
        nodes = {node for node, _ in self.workers}
        pids = sorted(pid for _, pid in self.workers)
        return (f"ran {self.chunks} chunk(s) as Ray tasks on {len(nodes)} node(s) in "
                f"{len(pids)} worker process(es) (pids {', '.join(map(str, pids))}; "
                f"the driver is pid {os.getpid()})")
