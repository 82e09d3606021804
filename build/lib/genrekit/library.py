"""Tagging many files: collect inputs, predict in parallel, write one row per file as each is done.

A batch never dies on one input: a file that cannot be decoded, is longer than ``max_duration``
or takes longer than ``file_timeout`` gets a row with an ``error``, and so does anything in a
folder that is not a regular file (a broken or looping symbolic link, a named pipe, a device...),
found without opening it. Rows are keyed by the resolved path, whatever the spelling of the
folder (relative, absolute, through a symbolic link). With an output file the run is resumable
and locked (see :mod:`genrekit.outputs`).

This module is light until a run starts, so that the command line can take its options from it.
"""
from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from genrekit.durations import clock, parse_duration
from genrekit.errors import GenrekitError
from genrekit.outputs import CSV_FIELDS, FORMATS, open_output, output_format, output_lock  # noqa: F401 - CSV_FIELDS: the API
from genrekit.schema import TimelineConfig

if TYPE_CHECKING:
    from genrekit.console import AudioProgress
    from genrekit.predictor import Prediction, Predictor

DEFAULT_MAX_DURATION = 2 * 3600.0
DEFAULT_FILE_TIMEOUT = 600.0

_SPECIAL = {stat.S_IFIFO: "named pipe", stat.S_IFSOCK: "socket", stat.S_IFCHR: "character device",
            stat.S_IFBLK: "block device"}  # fmt: skip


@dataclass
class LibrarySummary:
    """What a run did: files ``done``, ``failed`` (with their ``errors``), ``skipped`` (already in the
    output) and ``retried`` (failed in an earlier run, tried again)."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    def line(self, output: Path | None) -> str:
        """One line for the terminal."""
        text = f"done {self.done}"
        if self.skipped:
            text += f", skipped {self.skipped} (already in '{output}')"
        text += f", failed {self.failed}" + (f" ({self.retried} of the files that had failed retried)" if self.retried else "")
        return text + (f"; results in '{output}'" if output is not None and not self.skipped else "")


@dataclass(frozen=True)
class LibraryItem:
    """One input: ``path`` resolved (what its row is keyed by), and ``problem``, why it cannot be
    read when that is known without opening it (a broken link, a pipe...)."""

    path: Path
    problem: str | None = None



def _is_input(path: Path, images: bool) -> bool:
    from genrekit.audio import is_audio_path

    if path.suffix.lower() == ".png":  # album covers are not spectrograms: only the Kaggle geometry counts
        if not images:
            return False
        from genrekit.features.kaggle_image import is_kaggle_image  # light: reads the PNG header only

        return is_kaggle_image(path)
    return is_audio_path(path)


def _look(path: Path) -> tuple[LibraryItem, bool]:
    """What ``path`` leads to, seen without opening it, and whether it is a folder."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        key = Path(os.path.realpath(path.parent)) / path.name  # the link itself, not where it leads
        if exc.errno == errno.ELOOP:
            return LibraryItem(key, f"'{key}' is a symbolic link loop; fix or remove the link"), False
        if exc.errno == errno.ENOENT and os.path.islink(path):
            problem = f"'{key}' is a broken symbolic link (to '{os.readlink(path)}'); fix or remove the link"
            return LibraryItem(key, problem), False
        return LibraryItem(key, f"cannot read '{key}' ({exc.strerror})"), False
    key = Path(os.path.realpath(path))
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return LibraryItem(key), stat.S_ISDIR(mode)
    kind = _SPECIAL.get(stat.S_IFMT(mode), "special file")
    return LibraryItem(key, f"'{key}' is not a regular file ({kind}); only audio files can be tagged"), False


def _folder_items(folder: Path, images: bool) -> list[LibraryItem]:
    """The audio files in ``folder`` and below, sorted by path, and whatever there is not a regular file."""
    found: list[tuple[Path, LibraryItem]] = []
    searched: set[Path] = set()

    def search(d: Path, real: Path) -> None:
        if real in searched:  # a link back to a folder already searched
            return
        searched.add(real)
        try:
            entries = sorted(e.name for e in os.scandir(d))
        except OSError as exc:
            problem = f"cannot list the folder '{real}' ({exc.strerror}); check its permissions"
            found.append((d, LibraryItem(real, problem)))
            return
        for name in entries:
            if name.startswith("."):
                continue
            item, is_folder = _look(d / name)
            if is_folder:
                search(d / name, item.path)
            elif item.problem or _is_input(d / name, images):
                found.append((d / name, item))

    search(folder, Path(os.path.realpath(folder)))
    return [item for _, item in sorted(found, key=lambda f: f[0])]


def scan_inputs(inputs: list[str | bytes | os.PathLike], *, images: bool = False) -> list[LibraryItem]:
    """Each file named, and each audio file or thing that is not a regular file found recursively in
    the folders named (sorted, each resolved path once).

    With ``images``, folders also yield the PNGs that have the Kaggle spectrogram geometry.

    Raises
    ------
    GenrekitError
        an input does not exist, or a folder holds nothing to tag
    """
    items: list[LibraryItem] = []
    for given in inputs:
        path = Path(os.fsdecode(given))
        if not os.path.lexists(path):
            raise GenrekitError(f"'{path}' does not exist; give audio files or folders")
        item, is_folder = _look(path)
        if is_folder:
            found = _folder_items(path, images)
            if not found:
                raise GenrekitError(f"no audio file found in folder '{path}' (searched recursively)")
            items += found
        else:
            items.append(item)
    seen: set[Path] = set()
    return [i for i in items if not (i.path in seen or seen.add(i.path))]


def collect_inputs(inputs: list[str | bytes | os.PathLike], *, images: bool = False) -> list[Path]:
    """The resolved paths of the readable files of :func:`scan_inputs`."""
    return [i.path for i in scan_inputs(inputs, images=images) if i.problem is None]


def _results(
    predictor: Predictor, items: list[LibraryItem], *, workers: int, max_duration: float | None,
    timeout_s: float | None, progress: AudioProgress,
) -> Iterator[tuple[LibraryItem, Prediction | GenrekitError]]:  # fmt: skip
    """Each item with its prediction or error, ``workers`` at a time, in order."""

    def one(item: LibraryItem) -> tuple[LibraryItem, Prediction | GenrekitError]:
        if item.problem is not None:
            return item, GenrekitError(item.problem)
        try:
            limits = {"max_duration": max_duration, "timeout_s": timeout_s}
            return item, predictor.predict_file(item.path, on_decoded=progress.decoded, **limits)
        except GenrekitError as exc:
            return item, exc
        except Exception as exc:  # noqa: BLE001 - one file must never end the batch
            reason = f"{type(exc).__name__}: {exc}"
            return item, GenrekitError(f"'{item.path}' could not be tagged ({reason}); please report this bug")

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        yield from pool.map(one, items)


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
    workers : files decoded in parallel
    timeline : the table shows the timeline's runs of one genre
    windows : every raw window (the table's lines; JSON's ``windows``)
    timeline_config : how the runs are read from the windows (smoothing, minimum run)
    max_duration : seconds; a longer file gets an error row (``None``: no limit)
    file_timeout : seconds; a file taking longer to decode and predict gets an error row (``None``: no limit)
    retry_failed : a rerun tries again the files whose rows hold an error
    progress : a progress bar on stderr (``None``: when stderr is a terminal)

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
    with output_lock(given) as out:
        predictor = Predictor.load(model)
        items = scan_inputs(inputs, images=predictor.feature_config.reads_images)
        opts = {"top_k": top_k, "show_timeline": timeline, "windows": windows, "timeline": timeline_config}
        with open_output(fmt, out, retry_failed=retry_failed, **opts) as writer:
            todo = [i for i in items if str(i.path) not in writer.done]
            summary = LibrarySummary(skipped=len(items) - len(todo), retried=len(writer.failed))
            bar = AudioProgress([i.path for i in todo if i.problem is None], enabled=progress)
            try:
                results = _results(predictor, todo, workers=workers, max_duration=max_duration,
                                   timeout_s=file_timeout, progress=bar)  # fmt: skip
                for item, result in results:
                    bar.write(writer.write, str(item.path), result)
                    if isinstance(result, Exception):
                        summary.failed += 1
                        summary.errors[str(item.path)] = str(result)
                    else:
                        summary.done += 1
                        declared = result.declared_s or 0.0
                        bar.file_done(declared - result.duration_s)
            finally:
                bar.close()
    print(summary.line(out), file=sys.stderr)
    return summary


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
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
    p.add_argument("--format", choices=FORMATS, help="table, csv, json (one array) or jsonl (one object per line) "
                   "(default: from the --output extension .csv/.json/.jsonl; a table on the terminal)")  # fmt: skip
    p.add_argument("--output", "-o", help="write results to this file, in an existing folder; a rerun skips the files "
                   "already in it (csv: the timeline goes to <name>.timeline.csv beside it)")  # fmt: skip
    p.add_argument("--timeline", action="store_true", help="table: show the timeline, as runs of one genre")
    p.add_argument("--windows", action="store_true", help="table: every raw window; json/jsonl: add 'windows'")
    p.add_argument("--smooth", type=positive_int, default=t.smooth_windows, metavar="N",
                   help="the timeline averages each window with its neighbours over N windows")  # fmt: skip
    p.add_argument("--min-run", type=float, default=t.min_run_s, metavar="SECONDS",
                   help="a run of one genre shorter than this joins a neighbouring run (0: keep every run)")  # fmt: skip
    p.add_argument("--max-duration", type=_duration, default=clock(DEFAULT_MAX_DURATION), metavar="DURATION",
                   help="a longer file gets an error row: seconds, h:mm:ss, or none")  # fmt: skip
    p.add_argument("--file-timeout", type=_duration, default=f"{DEFAULT_FILE_TIMEOUT:g}", metavar="DURATION",
                   help="a file taking longer to decode and predict gets an error row: seconds or none")  # fmt: skip
    p.add_argument("--workers", type=positive_int, default=2,
                   help="files decoded in parallel (ray: actors, one core each)")  # fmt: skip
    p.add_argument("--retry-failed", action=argparse.BooleanOptionalAction, default=True,
                   help="a rerun tries again the files that failed before")  # fmt: skip
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar on stderr (default: only when stderr is a terminal)")  # fmt: skip
    p.add_argument("--decoder-log", metavar="FILE",
                   help="keep what the audio decoders print in FILE (default: kept off the terminal and counted)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="ray: run on Ray Data (pip install 'genrekit[scale]'); --output is then a folder of Parquet "
                   "partitions and tags.csv, and inputs may be manifests (.txt, one path per line)")  # fmt: skip
    p.add_argument("--address", help="ray: the cluster to run on (host:port, ray://host:10001 or auto; "
                   "default: a local one)")  # fmt: skip
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="ray: files per batch, and per Parquet partition")  # fmt: skip
    p.epilog = "Exit status: 0 when every file was tagged, 1 when some file failed (its row says why), 2 on an error."


def run_from_args(a: argparse.Namespace) -> LibrarySummary:
    """Run parsed ``genrekit predict`` options with their engine.

    Raises
    ------
    GenrekitError
        an option does not fit the engine, or the run fails (see :func:`run_library`)
    """
    if a.engine == "local":
        if a.address:
            raise GenrekitError("--address is for --engine ray")
        from genrekit.console import quiet_decoders

        with quiet_decoders(True, Path(a.decoder_log) if a.decoder_log else None):
            return run_library(a.inputs, **settings_from_args(a))
    if not a.output:
        raise GenrekitError("--engine ray writes a folder: give it with --output")
    if a.format not in (None, "csv") or a.timeline or a.windows:
        raise GenrekitError("--engine ray writes Parquet partitions and tags.csv: "
                            "leave out --format, --timeline, --windows")  # fmt: skip
    from genrekit.scale import run_ray

    return run_ray(a.inputs, output_dir=a.output, model=a.model, address=a.address, workers=a.workers,
                   batch_size=a.batch_size, top_k=a.top_k, max_duration=a.max_duration, file_timeout=a.file_timeout,
                   progress=a.progress is not False)  # fmt: skip


def settings_from_args(a: argparse.Namespace) -> dict:
    """The :func:`run_library` keyword arguments of parsed ``genrekit predict`` options."""
    return {
        "model": a.model, "top_k": a.top_k, "fmt": a.format, "output": a.output, "workers": a.workers,
        "timeline": a.timeline, "windows": a.windows, "max_duration": a.max_duration,
        "timeline_config": TimelineConfig(smooth_windows=a.smooth, min_run_s=a.min_run),
        "file_timeout": a.file_timeout, "retry_failed": a.retry_failed, "progress": a.progress,
    }  # fmt: skip
