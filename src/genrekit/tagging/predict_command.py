"""The ``genrekit predict`` command: its options (:func:`add_arguments`) and its run with the
chosen engine (:func:`run_from_args`: :func:`genrekit.tagging.local.run_library` or
:func:`genrekit.tagging.ray_engine.run_ray`).

Light until a run starts, so that the command line can take its options from here.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from genrekit.durations import clock, parse_duration
from genrekit.errors import GenrekitError
from genrekit.outputs import FORMATS
from genrekit.precision import DEFAULT_PRECISION, PRECISIONS
from genrekit.schema import DEFAULT_STYLE_THRESHOLD, TimelineConfig
from genrekit.tagging.core import DEFAULT_FILE_TIMEOUT, DEFAULT_MAX_DURATION, DEFAULT_PATCHES

if TYPE_CHECKING:
    from genrekit.tagging.core import LibrarySummary


def add_precision_option(p: argparse.ArgumentParser) -> None:
    """``--precision``, the backbone's (``predict`` and ``tag``)."""
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULT_PRECISION,
        help="the backbone's: int8 runs the bundled model's quantised copy, with less CPU; its agreement "
        "with fp32 is measured in benchmarks/results/int8.md (default: %(default)s)",
    )


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability: give 0..1")
    return value


def _duration(text: str) -> float | None:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``genrekit predict`` options."""
    t = TimelineConfig()
    p.add_argument("inputs", nargs="+", help="audio files and/or folders (searched recursively)")
    p.add_argument("--model", help="checkpoint file, or a bundled model's name (default: the bundled musicnn-gtzan)")
    p.add_argument("--top-k", type=positive_int, default=3, help="genres shown per file")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="table, csv, json (one array) or jsonl (one object per line) "
        "(default: from the --output extension .csv/.json/.jsonl; a table on the terminal)",
    )
    p.add_argument(
        "--output",
        "-o",
        help="write results to this file, in an existing folder; a rerun skips the files "
        "already in it (csv: the timeline goes to <name>.timeline.csv beside it)",
    )
    p.add_argument("--timeline", action="store_true", help="table: show the timeline, as runs of one genre")
    p.add_argument("--windows", action="store_true", help="table: every raw window; json/jsonl: add 'windows'")
    p.add_argument(
        "--patches",
        type=positive_int,
        default=DEFAULT_PATCHES,
        metavar="K",
        help="folders and manifests: analyse K windows spread over each song, decoding only them, then "
        "3K, 9K... while its top genre is not settled; files named one by one, --timeline and --windows "
        "analyse every window",
    )
    p.add_argument("--full", action="store_true", help="analyse every window of every song")
    add_precision_option(p)
    p.add_argument(
        "--processes",
        type=positive_int,
        metavar="N",
        help="local engine: worker processes, one model on one thread each (default: one per core; the "
        "bar then moves file by file); 1: in this process, --workers threads (so are --styles and a "
        "job of two files or fewer)",
    )
    p.add_argument(
        "--smooth",
        type=positive_int,
        default=t.smooth_windows,
        metavar="N",
        help="the timeline averages each window with its neighbours over N windows",
    )
    p.add_argument(
        "--min-run",
        type=float,
        default=t.min_run_s,
        metavar="SECONDS",
        help="a run of one genre shorter than this joins a neighbouring run (0: keep every run)",
    )
    p.add_argument(
        "--max-duration",
        type=_duration,
        default=clock(DEFAULT_MAX_DURATION),
        metavar="DURATION",
        help="a longer file gets an error row: seconds, h:mm:ss, or none",
    )
    p.add_argument(
        "--file-timeout",
        type=_duration,
        default=f"{DEFAULT_FILE_TIMEOUT:g}",
        metavar="DURATION",
        help="a file taking longer to decode and predict gets an error row: seconds or none",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        help="files decoded in parallel in this process (default: 2); ray: actors, one core each "
        "(default: one per core of a local cluster, every core of a given one)",
    )
    p.add_argument(
        "--retry-failed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a rerun tries again the files that failed before",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: only when stderr is a terminal)",
    )
    p.add_argument(
        "--decoder-log",
        metavar="FILE",
        help="keep what the audio decoders print in FILE (default: kept off the terminal and counted)",
    )
    p.add_argument(
        "--styles",
        action="store_true",
        help="also the musicnn backbone's Million Song Dataset tags (electronic, dance, folk, 80s...) "
        "above --style-threshold, in every output (bundled musicnn models; see genrekit models)",
    )
    p.add_argument(
        "--style-threshold",
        type=probability,
        default=DEFAULT_STYLE_THRESHOLD,
        metavar="P",
        help="a style is listed from this probability on",
    )
    p.add_argument(
        "--playlists",
        metavar="DIR",
        help="write one M3U8 per genre into DIR at the end (paths relative to it; files the model is "
        "unsure of go into unsure.m3u8, files without music or with errors into none)",
    )
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="ray: run on Ray Data (pip install 'genrekit[scale]'); --output is then a folder of Parquet "
        "partitions and tags.csv, and inputs may be manifests (.txt, one path per line)",
    )
    p.add_argument(
        "--address", help="ray: the cluster to run on (host:port, ray://host:10001 or auto; default: a local one)"
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=32, help="ray: files per batch, and per Parquet partition"
    )
    p.epilog = "Exit status: 0 when every file was tagged, 1 when some file failed (its row says why), 2 on an error."


def run_from_args(a: argparse.Namespace) -> LibrarySummary:
    """Run parsed ``genrekit predict`` options with their engine.

    Raises
    ------
    GenrekitError
        an option does not fit the engine, or the run fails (see :func:`genrekit.tagging.local.run_library`)
    """
    if a.engine == "local":
        if a.address:
            raise GenrekitError("--address is for --engine ray")
        from genrekit.console import decoder_messages_kept_off
        from genrekit.tagging.local import run_library

        with decoder_messages_kept_off(Path(a.decoder_log) if a.decoder_log else None):
            return run_library(a.inputs, **settings_from_args(a))
    if not a.output:
        raise GenrekitError("--engine ray writes a folder: give it with --output")
    if a.format not in (None, "csv") or a.timeline or a.windows:
        raise GenrekitError(
            "--engine ray writes Parquet partitions and tags.csv: leave out --format, --timeline, --windows"
        )
    from genrekit.tagging.ray_engine import run_ray

    return run_ray(
        a.inputs,
        output_dir=a.output,
        model=a.model,
        address=a.address,
        workers=a.workers,
        batch_size=a.batch_size,
        top_k=a.top_k,
        max_duration=a.max_duration,
        file_timeout=a.file_timeout,
        progress=a.progress is not False,
        playlists=a.playlists,
        styles=a.styles,
        style_threshold=a.style_threshold,
        patches=library_patches(a),
        precision=a.precision,
    )


def settings_from_args(a: argparse.Namespace) -> dict:
    """The :func:`genrekit.tagging.local.run_library` keyword arguments of parsed ``genrekit predict`` options."""
    return {
        "model": a.model,
        "top_k": a.top_k,
        "fmt": a.format,
        "output": a.output,
        "timeline": a.timeline,
        "windows": a.windows,
        "max_duration": a.max_duration,
        "timeline_config": TimelineConfig(smooth_windows=a.smooth, min_run_s=a.min_run),
        "file_timeout": a.file_timeout,
        "retry_failed": a.retry_failed,
        "progress": a.progress,
        "playlists": a.playlists,
        "styles": a.styles,
        "style_threshold": a.style_threshold,
        "patches": library_patches(a),
        "processes": a.processes,
        "precision": a.precision,
        **({"workers": a.workers} if a.workers else {}),
    }


def library_patches(a: argparse.Namespace) -> int | None:
    """The windows to analyse per song: ``--patches`` for a library (a folder or a manifest among the
    inputs), ``None`` (every window) with ``--full``, ``--timeline``, ``--windows`` or files named one by one."""
    if a.full or a.timeline or a.windows:
        return None
    library = any(os.path.isdir(os.fsdecode(i)) or os.fsdecode(i).lower().endswith(".txt") for i in a.inputs)
    return a.patches if library else None
