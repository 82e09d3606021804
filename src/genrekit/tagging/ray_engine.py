"""Tagging at scale on Ray Data: list → decode, features and batched inference in an actor pool → write.

The same pipeline as the local engine (:mod:`genrekit.tagging.local`), spread over a Ray cluster (a local one by default):

- inputs are folders, audio files, or manifests (``.txt``: one path per line, relative to the
  manifest's folder); they are listed by :func:`genrekit.tagging.scan.list_items`, so a broken link,
  a pipe or a path of a manifest that does not exist gets an error row;
- each actor of the pool loads the model once, through :meth:`genrekit.Predictor.load` as the local
  engine does (on onnxruntime when the model's ONNX export is current, else torch), on one core,
  and tags the paths of its batches one by one with :func:`genrekit.tagging.core.tag_file`, as the
  local engine does: any failure of one file becomes that file's error row, never the batch's; the
  rows are :func:`genrekit.tagging.rows.parquet_row`, the CSV row's fields typed;
- the driver writes each batch it receives as one Parquet partition ``part-<run>-<n>.parquet``
  (written under a temporary name, then renamed: a partition is whole or absent), and when the run
  ends, ``tags.csv``, all partitions in one CSV file (replaced atomically);
- a rerun skips the paths already in a partition; one run at a time writes a folder
  (``tags.csv.lock``); the key of a file is injective (:func:`genrekit.tagging.rows.row_key`), whatever bytes its name holds;
- a local cluster's processes are ended when the run ends, and by a watcher
  (:class:`genrekit.reaper.Reaper`) when the driver is killed.

Every node reads the audio files and the model at the paths the driver gives (a shared file
system, or the same layout on every machine) and has genrekit installed; the results come back
to the driver, which alone writes the output folder. Ray is imported only when a run starts.

Network: Ray picks the machine's address for a local run too (it turns ``127.0.0.1`` into the
address of the default route), and a starting head probes cloud metadata servers whatever its
usage-stats setting; a run that must stay on loopback runs in a network namespace with only ``lo``
(docs/scale.md), as the tests and the benchmark do.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from genrekit.errors import GenrekitError
from genrekit.outputs import output_lock
from genrekit.precision import DEFAULT_PRECISION
from genrekit.reaper import Reaper
from genrekit.schema import DEFAULT_STYLE_THRESHOLD
from genrekit.tagging.core import DEFAULT_FILE_TIMEOUT, DEFAULT_MAX_DURATION, LibrarySummary, Limits, tag_file
from genrekit.tagging.playlists import check_folder, entry, output_rows, playlists_line, write_playlists
from genrekit.tagging.rows import parquet_row, parquet_schema, row_key, utf8
from genrekit.tagging.scan import Ignored, LibraryItem, list_items
from genrekit.workers import default_workers

CSV_NAME = "tags.csv"
OBJECT_STORE_BYTES = 200 * 2**20  # a local cluster: batches of paths and rows are small


class _Tagger:
    """One actor of the pool: the model loaded once, then batches of ``{"path", "problem"}``."""

    def __init__(
        self,
        model: str | None,
        top_k: int,
        max_duration: float | None,
        timeout_s: float | None,
        styles: bool,
        style_threshold: float,
        patches: int | None = None,
        precision: str = DEFAULT_PRECISION,
    ):
        from genrekit.workers import load_in_worker

        # one core per actor: the pool, not the runtime, spreads the work (an actor is a process of its own)
        self.predictor = load_in_worker(
            model, precision=precision
        )  # the ONNX export when current, as predict and serve
        if self.predictor.runtime == "torch":
            import torch

            torch.set_num_threads(1)
        self.top_k = top_k
        self.limits = Limits(max_duration=max_duration, timeout_s=timeout_s, patches=patches)
        self.styles, self.style_threshold = styles, style_threshold
        if styles:
            from genrekit.tagging.styles import check_styles

            check_styles(self.predictor)  # the actor does not start: one message, not one per file

    def one(self, path: str, problem: str | None) -> dict:
        item = LibraryItem(Path(path), problem or None)
        result = tag_file(self.predictor, item, limits=self.limits, styles=self.styles)
        return parquet_row(path, result, self.top_k, self.style_threshold)

    def __call__(self, batch: dict):
        import pyarrow as pa

        rows = [self.one(os.fsdecode(p), pr) for p, pr in zip(batch["path"], batch["problem"])]
        return pa.Table.from_pylist(rows, schema=parquet_schema())


def done_paths(output_dir: Path) -> set[str]:
    """The ``path`` cells of the partitions already written in ``output_dir``."""
    import pyarrow.parquet as pq

    parts = sorted(output_dir.glob("part-*.parquet"))
    return {p for f in parts for p in pq.read_table(f, columns=["path"])["path"].to_pylist()}


def _write_atomic(table, path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(table, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def export_csv(output_dir: Path) -> Path:
    """Write ``tags.csv``: every partition's rows in one CSV file, sorted by path."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    parts = [pq.read_table(f, schema=parquet_schema()) for f in sorted(output_dir.glob("part-*.parquet"))]
    table = pa.concat_tables(parts) if parts else parquet_schema().empty_table()
    table = table.sort_by("path")
    _write_atomic(table, output_dir / CSV_NAME, lambda t, p: pcsv.write_csv(t, p))
    return output_dir / CSV_NAME


def _model_for_actors(model: str | os.PathLike | None) -> str | None:
    """What the actors load: a bundled model by its name (each node has its own copy of genrekit), a
    checkpoint file by its absolute path (actors do not start in our folder).

    Raises
    ------
    GenrekitError
        the model does not exist here: the actors would fail to load it
    """
    from genrekit.checkpoint import resolve_model_path

    resolve_model_path(model)
    if model is not None and os.path.exists(model):
        return os.path.abspath(model)
    return None if model is None else os.fsdecode(model)


def _last_line(text: str) -> str:
    """The last line of a traceback, without the class path of a genrekit error."""
    line = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), text)
    return line.removeprefix("genrekit.errors.GenrekitError: ")


def _start_ray(address: str | None, workers: int | None) -> int:
    """Start or join the cluster; the actors to run: ``workers``, or one per core (of this machine
    for a local cluster, of the whole cluster given)."""
    import logging

    import ray

    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    else:  # a new private cluster on this machine ("local": never one found in RAY_ADDRESS or /tmp/ray)
        workers = workers or default_workers()
        ray.init(
            address="local",
            num_cpus=workers,
            object_store_memory=OBJECT_STORE_BYTES,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts files
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return workers


def run_ray(
    inputs: list[str | os.PathLike],
    *,
    output_dir: str | os.PathLike,
    model: str | os.PathLike | None = None,
    address: str | None = None,
    workers: int | None = None,
    batch_size: int = 32,
    top_k: int = 3,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    file_timeout: float | None = DEFAULT_FILE_TIMEOUT,
    progress: bool = True,
    playlists: str | os.PathLike | None = None,
    styles: bool = False,
    style_threshold: float = DEFAULT_STYLE_THRESHOLD,
    patches: int | None = None,
    precision: str = DEFAULT_PRECISION,
) -> LibrarySummary:
    """Tag every input on Ray and write Parquet partitions and ``tags.csv`` in ``output_dir`` (see the module doc).

    Parameters
    ----------
    inputs : audio files, folders (searched recursively) and manifests (``.txt``, one path per line)
    output_dir : folder of the partitions and ``tags.csv``; a rerun skips the files already there
    model : checkpoint path (the same on every node) or bundled model name (``None``: the default model)
    address : a Ray cluster (``ray://host:10001``, ``host:6379`` or ``auto``); ``None`` starts a local one
    workers : actors of the pool, one core and one model on one onnxruntime thread each (``None``:
        one per core of the local cluster, or of the cluster at ``address``)
    batch_size : files per batch, and per Parquet partition
    top_k : genres written per file
    max_duration, file_timeout : seconds; a longer file, or one taking longer, gets an error row (``None``: no limit)
    progress : show a progress bar on stderr
    styles, style_threshold : also the musicnn MSD tags at least this probable (bundled musicnn models)
    patches : analyse this many windows spread over each song, more while its top genre is not
        settled (``None``: every window; see :mod:`genrekit.sampling`)
    precision : the backbone's, ``"fp32"`` or ``"int8"`` (see :meth:`genrekit.Predictor.load`)
    playlists : a folder: write one M3U8 per genre there from ``tags.csv`` (see :mod:`genrekit.tagging.playlists`)

    Returns
    -------
    LibrarySummary

    Raises
    ------
    GenrekitError
        ray is not installed, an input or the model does not exist, the actors cannot load the model,
        or another run writes ``output_dir``
    """
    from tqdm.auto import tqdm

    try:
        import ray
    except ImportError:
        raise GenrekitError('--engine ray needs Ray: pip install "genrekit[scale]"') from None
    out = Path(os.fsdecode(output_dir))
    lists = check_folder(playlists)
    ignored = Ignored()
    if out.exists() and not out.is_dir():
        raise GenrekitError(f"with --engine ray, --output is a folder; '{out}' is a file")
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out / CSV_NAME):
        import pyarrow.parquet as pq

        for stale in out.glob(".part-*.tmp"):  # a partition a killed run did not finish: redone
            stale.unlink()
        items = list_items(inputs, ignored=ignored)
        model = _model_for_actors(model)
        done = done_paths(out)
        todo = [i for i in items if row_key(i.path) not in done]
        summary = LibrarySummary(skipped=len(items) - len(todo))
        if todo:
            # a local cluster's processes are ended even if this driver is killed (SIGKILL included)
            reaper = Reaper() if address is None else None
            workers = _start_ray(address, workers)
            if reaper is not None:
                reaper.watch_children()
            try:
                # paths as bytes: any file name gets through
                rows = [{"path": os.fsencode(i.path), "problem": utf8(i.problem or "")} for i in todo]
                ds: ray.data.Dataset = ray.data.from_items(rows)
                ds = ds.map_batches(
                    _Tagger,
                    fn_constructor_args=(
                        model,
                        top_k,
                        max_duration,
                        file_timeout,
                        styles,
                        style_threshold,
                        patches,
                        precision,
                    ),
                    batch_size=batch_size,
                    batch_format="numpy",
                    compute=ray.data.ActorPoolStrategy(size=workers),
                    num_cpus=1,
                )
                run = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"  # never the name of an earlier part
                bar = tqdm(total=len(todo), unit="file", desc="predict", disable=not progress, file=sys.stderr)
                table: Any  # a pyarrow Table (pyarrow has no type information)
                for n, table in enumerate(ds.iter_batches(batch_size=None, batch_format="pyarrow")):
                    _write_atomic(table, out / f"part-{run}-{n:06d}.parquet", pq.write_table)
                    for path, error in zip(table["path"].to_pylist(), table["error"].to_pylist()):
                        summary.count(path, GenrekitError(error) if error else None)
                    bar.update(table.num_rows)
                    if n == 0 and reaper is not None:  # the actors' workers have started too
                        reaper.watch_children()
                bar.close()
            except ray.exceptions.RayActorError as exc:
                if not getattr(exc, "actor_init_failed", False):
                    raise
                raise GenrekitError(f"the actors could not load the model: {_last_line(str(exc))}") from None
            finally:
                ray.shutdown()
                if reaper is not None:
                    reaper.close()
        csv_path = export_csv(out)
        counts = write_playlists(lists, map(entry, output_rows(csv_path, "csv"))) if lists is not None else None
    if ignored.line():
        print(ignored.line(), file=sys.stderr)
    print(
        f"done {summary.done}, skipped {summary.skipped} (already in {out}), failed {summary.failed}; "
        f"all rows in {csv_path}",
        file=sys.stderr,
    )
    if counts is not None and lists is not None:
        print(playlists_line(lists, counts), file=sys.stderr)
    return summary
