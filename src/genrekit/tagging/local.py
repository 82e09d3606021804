"""The local engine: scan the inputs, tag each in worker processes (one per core, one model on
one thread each: :mod:`genrekit.workers`), or in this process (:func:`~genrekit.tagging.core.tag_file`
in a thread pool: with ``processes=1``, with styles, and for a job of two files or fewer), write one
row per file as each is done.

A batch never dies on one input (see :mod:`genrekit.tagging.core`). Rows are keyed by the
resolved path (see :mod:`genrekit.tagging.scan`). With an output file the run is resumable and
locked (see :mod:`genrekit.outputs`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genrekit.errors import GenrekitError
from genrekit.outputs import open_output, output_format, output_lock
from genrekit.precision import DEFAULT_PRECISION
from genrekit.schema import DEFAULT_STYLE_THRESHOLD, TimelineConfig
from genrekit.tagging.core import DEFAULT_FILE_TIMEOUT, DEFAULT_MAX_DURATION, LibrarySummary, Limits, tag_file
from genrekit.tagging.playlists import Entry, check_folder, entry, output_rows, playlists_line, write_playlists
from genrekit.tagging.rows import file_row
from genrekit.tagging.scan import Ignored, LibraryItem, scan_inputs
from genrekit.workers import pool_size

if TYPE_CHECKING:
    from genrekit.console import AudioProgress
    from genrekit.predictor import Prediction, Predictor


def _results(
    predictor: Predictor,
    items: list[LibraryItem],
    *,
    workers: int,
    limits: Limits,
    progress: AudioProgress,
    styles: bool,
) -> Iterator[tuple[LibraryItem, Prediction | GenrekitError]]:
    """Each item with its prediction or error, ``workers`` at a time, in order."""

    def one(item: LibraryItem) -> tuple[LibraryItem, Prediction | GenrekitError]:
        return item, tag_file(predictor, item, limits=limits, on_decoded=progress.decoded, styles=styles)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        yield from pool.map(one, items)


def _process_results(
    model: str | os.PathLike | None, items: list[LibraryItem], *, processes: int, limits: Limits, precision: str
) -> Iterator[tuple[LibraryItem, Prediction | GenrekitError]]:
    """The same as :func:`_results`, in ``processes`` processes with one model on one thread each
    (:mod:`genrekit.workers`); artist, album and title are read here, from the tags."""
    from genrekit.tagging.containers import read_names
    from genrekit.workers import predict_files

    readable = [i for i in items if i.problem is None]
    results = predict_files(
        (i.path for i in readable),
        model=model,
        precision=precision,
        workers=processes,
        max_duration=limits.max_duration,
        timeout_s=limits.timeout_s,
        patches=limits.patches,
    )
    for item in items:
        if item.problem is not None:
            yield item, GenrekitError(item.problem)
            continue
        _, result = next(results)
        if not isinstance(result, Exception):
            result.tags = read_names(item.path)
        yield item, result


def run_library(
    inputs: list[str | bytes | os.PathLike],
    *,
    model: str | os.PathLike | None = None,
    top_k: int = 3,
    fmt: str | None = None,
    output: str | os.PathLike | None = None,
    workers: int = 2,
    timeline: bool = False,
    windows: bool = False,
    timeline_config: TimelineConfig | None = None,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    file_timeout: float | None = DEFAULT_FILE_TIMEOUT,
    retry_failed: bool = True,
    progress: bool | None = None,
    playlists: str | os.PathLike | None = None,
    styles: bool = False,
    style_threshold: float = DEFAULT_STYLE_THRESHOLD,
    patches: int | None = None,
    processes: int | None = None,
    precision: str = DEFAULT_PRECISION,
) -> LibrarySummary:
    """Predict every input and write one row per file (see the module doc).

    Parameters
    ----------
    inputs : audio files and folders (searched recursively)
    model : checkpoint path or bundled model name (``None``: the default model)
    top_k : genres written per file
    fmt : ``table``, ``csv``, ``json`` (one array) or ``jsonl`` (one object per line); ``None``: from
        the extension of ``output``, or a table on the terminal
    output : file to write, resumable; ``None`` prints to the terminal
    workers : files decoded in parallel when tagging in this process (threads)
    timeline : the table shows the timeline's runs of one genre
    windows : every raw window (the table's lines; JSON's ``windows``)
    timeline_config : how the runs are read from the windows (smoothing, minimum run)
    max_duration : seconds; a longer file gets an error row (``None``: no limit)
    file_timeout : seconds; a file taking longer to decode and predict gets an error row (``None``: no limit)
    retry_failed : a rerun tries again the files whose rows hold an error
    progress : a progress bar on stderr (``None``: when stderr is a terminal)
    playlists : a folder: write one M3U8 per genre there at the end (see :mod:`genrekit.tagging.playlists`)
    styles : also the musicnn MSD tags (the bundled musicnn models only; see :mod:`genrekit.tagging.styles`)
    style_threshold : the styles listed are at least this probable
    patches : analyse this many windows spread over each song, decoding only them, more while its
        top genre is not settled (``None``: every window; see :mod:`genrekit.sampling`)
    processes : worker processes, one model on one onnxruntime thread each (``None``: one per core;
        progress then moves file by file); 1: tag in this process, ``workers`` threads at a time (so
        is a job of two files or fewer, and a run with ``styles``)
    precision : the backbone's, ``"fp32"`` or ``"int8"`` (see :meth:`genrekit.Predictor.load`)

    Raises
    ------
    GenrekitError
        the model cannot be loaded, an input does not exist, the output cannot be written, or
        another run writes it
    """
    from genrekit.console import AudioProgress
    from genrekit.predictor import Predictor

    given = Path(os.fsdecode(output)) if output else None
    fmt = output_format(given, fmt)
    if top_k < 1:
        raise GenrekitError(f"top_k must be at least 1, not {top_k}")
    limits = Limits(max_duration=max_duration, timeout_s=file_timeout, patches=patches)
    lists = check_folder(playlists)
    entries: list[Entry | None] = []  # a run without an output file: its playlists come from its rows
    with output_lock(given) as out:
        predictor = Predictor.load(model, precision=precision)
        if styles:
            from genrekit.tagging.styles import check_styles

            check_styles(predictor)  # before the first file: the model has them or the run stops
        ignored = Ignored()
        items = scan_inputs(inputs, images=predictor.feature_config.reads_images, ignored=ignored)
        opts: dict[str, Any] = {
            "top_k": top_k,
            "show_timeline": timeline,
            "windows": windows,
            "timeline": timeline_config,
            "style_threshold": style_threshold,
        }
        with open_output(fmt, out, retry_failed=retry_failed, **opts) as writer:
            todo = [i for i in items if str(i.path) not in writer.done]
            summary = LibrarySummary(skipped=len(items) - len(todo), retried=len(writer.failed))
            bar = AudioProgress([i.path for i in todo if i.problem is None], enabled=progress)
            try:
                n = pool_size(processes, files=bar.n_files)  # the readable files to tag
                in_processes = n > 1 and not styles  # styles are computed in this process's pass
                if in_processes:
                    results = _process_results(model, todo, processes=n, limits=limits, precision=precision)
                else:
                    results = _results(predictor, todo, workers=workers, limits=limits, progress=bar, styles=styles)
                for item, result in results:
                    bar.write(writer.write, str(item.path), result)
                    summary.count(str(item.path), result)
                    if lists is not None and out is None:
                        entries.append(entry(file_row(str(item.path), result)))
                    if not isinstance(result, Exception):
                        covered = 0.0 if in_processes else result.duration_s  # processes report no on_decoded
                        bar.file_done((result.declared_s or result.duration_s) - covered)
            finally:
                bar.close()
        if lists is not None:
            rows = map(entry, output_rows(out, fmt)) if out is not None else entries
            counts = write_playlists(lists, rows)
    if ignored.line():
        print(ignored.line(), file=sys.stderr)
    print(summary.line(out), file=sys.stderr)
    if lists is not None:
        print(playlists_line(lists, counts), file=sys.stderr)
    return summary
