"""Where tagging results go: a table, CSV, one JSON array or JSON lines, on the terminal or in a file.

A file output is resumable and guarded:

- one run at a time: a second run on the same output stops with an error (an ``flock`` on
  ``<output>.lock``, a file left beside it) instead of interleaving its rows;
- each row is flushed and fsynced as soon as its file is done; a rerun reads back the rows already
  there (each file keeps exactly one row) and first cuts a last row a killed run left unfinished;
- CSV keeps one short row per file: the timeline, merged into runs of one genre, goes to
  ``<output stem>.timeline.csv`` beside it (one row per run), so no cell grows with the audio;
- JSON is always one valid array: rows go to a journal ``<output>.journal`` (JSON lines) as they
  come, and are folded into the array, rewritten atomically, when the run ends (after a hard kill,
  when the next run ends);
- JSON lines: one object per line.

File names are written whatever their bytes: a CSV file holds the name's own bytes (written and
read with ``surrogateescape``), JSON escapes the bytes that are not UTF-8 as ``\\udcXX``, and the
terminal shows them as ``\\xXX``.

This module is light (no numpy, no torch): results are read through their attributes.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain
from pathlib import Path

from genrekit.durations import clock
from genrekit.errors import GenrekitError

FORMATS = ("table", "csv", "json", "jsonl")
CSV_FIELDS = ["path", "genre", "probability", "top", "duration_s", "segments", "no_music", "confident", "error"]
LEGACY_CSV_FIELDS = {"timeline"}  # a cell of older outputs, left empty when they are resumed
TIMELINE_FIELDS = ["path", "start_s", "end_s", "genre"]
_TEXT = {"encoding": "utf-8", "errors": "surrogateescape", "newline": ""}


def timeline_path(output: Path) -> Path:
    """The timeline file beside a CSV output: ``tags.csv`` -> ``tags.timeline.csv``."""
    return output.with_name(f"{output.stem}.timeline.csv")


def merged_runs(timeline: list, duration_s: float) -> list[tuple[float, float, str]]:
    """``(start_s, end_s, genre)`` of each run of consecutive windows of one genre.

    The runs cover the audio without overlapping: as windows overlap, each moment belongs to the
    window whose centre is nearest, so a run ends halfway between its last window's centre and the
    next run's first.
    """
    runs: list[list] = []  # [first centre, last centre, genre]
    for s in timeline:
        centre = (s.start_s + s.end_s) / 2
        if runs and runs[-1][2] == s.label:
            runs[-1][1] = centre
        else:
            runs.append([centre, centre, s.label])
    bounds = [0.0, *((a[1] + b[0]) / 2 for a, b in zip(runs, runs[1:])), duration_s]
    return [(bounds[i], bounds[i + 1], run[2]) for i, run in enumerate(runs)]


def prediction_row(path: str, result, top_k: int = 3) -> dict:
    """One flat CSV row for a file's result or error, probabilities rounded for display."""
    if isinstance(result, Exception):
        return {**dict.fromkeys(CSV_FIELDS, ""), "path": path, "error": str(result)}
    return {
        "path": path,
        "genre": result.genre or "",
        "probability": round(result.top[0][1], 4) if result.genre else "",
        "top": ";".join(f"{g}:{p:.4f}" for g, p in result.top[:top_k]),
        "duration_s": round(result.duration_s, 3),
        "segments": len(result.timeline),
        "no_music": result.no_music or "",
        "confident": "yes" if result.confident else "no",
        "error": "",
    }


def _json_line(path: str, result, top_k: int) -> str:
    """One line of JSON (ASCII: bytes of a name that are not UTF-8 are escaped, as ``\\udcXX``)."""
    d = {"path": path, "error": str(result)} if isinstance(result, Exception) else result.to_dict()
    if "top" in d:
        d["top"] = d["top"][:top_k]
    return json.dumps(d)


def _csv_line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(values)
    return buf.getvalue()


def _table_text(path: str, result, *, top_k: int, timeline: bool, windows: bool) -> str:
    if isinstance(result, Exception):
        return f"{path}\n  error: {result}\n"
    if not result.music_detected:
        return f"{path}  ({result.duration_s:.1f} s)\n  no music detected: {result.no_music}\n"
    tops = "  ".join(f"{g} {p:.0%}" for g, p in result.top[:top_k])
    unsure = "" if result.confident else "  (not confident)"
    text = f"{path}  ({result.duration_s:.1f} s)\n  {tops}{unsure}\n"
    if windows:
        for s in result.timeline:
            text += f"    {s.start_s:7.1f}-{s.end_s:7.1f} s  {s.label:<10} {s.probabilities[s.label]:.0%}\n"
    elif timeline:
        for start, end, genre in merged_runs(result.timeline, result.duration_s):
            text += f"    {clock(start)}–{clock(end)}  {genre}\n"
    return text


class _Terminal:
    """Rows printed as they come (the JSON array closed at the end); nothing to resume."""

    def __init__(self, fmt: str, *, top_k: int, timeline: bool, windows: bool):
        self.fmt, self.top_k, self.timeline, self.windows = fmt, top_k, timeline, windows
        self.done: set[str] = set()
        self.first = True
        self._print(_csv_line(CSV_FIELDS) if fmt == "csv" else "[" if fmt == "json" else "")

    def _print(self, text: str) -> None:
        # a name that is not UTF-8 would not print: its bytes are shown as \xNN
        sys.stdout.write(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
        sys.stdout.flush()

    def write(self, path: str, result) -> None:
        if self.fmt == "csv":
            row = prediction_row(path, result, self.top_k)
            self._print(_csv_line([row[k] for k in CSV_FIELDS]))
        elif self.fmt == "json":
            self._print(("\n" if self.first else ",\n") + _json_line(path, result, self.top_k))
        elif self.fmt == "jsonl":
            self._print(_json_line(path, result, self.top_k) + "\n")
        else:
            self._print(_table_text(path, result, top_k=self.top_k, timeline=self.timeline, windows=self.windows))
        self.first = False

    def close(self) -> None:
        if self.fmt == "json":
            self._print("\n]\n")


def _append(path: Path) -> io.TextIOWrapper:
    return open(path, "a", **_TEXT)


def _flush(*streams) -> None:
    for s in streams:
        s.flush()
        os.fsync(s.fileno())


def _whole_csv(path: Path, column: str | None = None) -> tuple[list[str] | None, list]:
    """The header and records (or one ``column`` of them) of a CSV file written row by row; a last
    record left unfinished by a kill is cut off the file.

    Raises
    ------
    GenrekitError
        the file is damaged before its end
    """
    if not path.exists():
        return None, []
    csv.field_size_limit(2**31 - 1)  # a timeline cell written by older versions passes the 128 kB default
    size, read, whole, ends_line = path.stat().st_size, 0, 0, True
    header, records = None, []

    def lines() -> Iterator[str]:
        nonlocal read, ends_line
        with open(path, "rb") as f:
            for raw in f:
                read += len(raw)
                ends_line = raw.endswith(b"\n")
                yield raw.decode("utf-8", "surrogateescape")

    try:
        for record in csv.reader(lines(), strict=True):
            if not ends_line:
                break  # cut by a kill: redone
            if header is None:
                header = record
                index = header.index(column) if column in header else None
            elif len(record) == len(header):
                records.append(record if column is None else record[index] if index is not None else None)
            whole = read
    except csv.Error as exc:
        if read < size:
            raise GenrekitError(f"'{path}' is damaged before its end ({exc}); give another --output") from None
        # a record cut by a kill inside a quoted name: redone
    if whole < size:
        os.truncate(path, whole)
    return header, records


def _rewrite(path: Path, header: list[str], records: list[list[str]]) -> None:
    """Replace a CSV file atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", **_TEXT) as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(records)
        _flush(f)
    os.replace(tmp, path)


class _CsvFile:
    """One row per file in the output; the runs of its timeline in the timeline file beside it."""

    def __init__(self, path: Path, *, top_k: int):
        self.top_k = top_k
        header, paths = _whole_csv(path, "path")
        if header is not None and ("path" not in header or set(header) - set(CSV_FIELDS) - LEGACY_CSV_FIELDS):
            raise GenrekitError(
                f"'{path}' is not a genrekit CSV output (its columns are {', '.join(header)}); give another --output"
            )
        self.fields = header or CSV_FIELDS  # an older output keeps its own columns
        self.done = set(paths)
        runs_path = timeline_path(path)
        runs_header, runs = _whole_csv(runs_path)
        if runs_header not in (None, TIMELINE_FIELDS):
            raise GenrekitError(f"'{runs_path}' is not a genrekit timeline; move it away, or give another --output")
        if any(r[0] not in self.done for r in runs):  # a kill between a file's runs and its row: redone
            _rewrite(runs_path, TIMELINE_FIELDS, [r for r in runs if r[0] in self.done])
        self.stream, self.runs = _append(path), _append(runs_path)
        if header is None:
            csv.writer(self.stream).writerow(CSV_FIELDS)
        if runs_header is None:
            csv.writer(self.runs).writerow(TIMELINE_FIELDS)
        _flush(self.stream, self.runs)

    def write(self, path: str, result) -> None:
        if not isinstance(result, Exception) and result.music_detected:
            runs = merged_runs(result.timeline, result.duration_s)
            csv.writer(self.runs).writerows([path, round(a, 3), round(b, 3), g] for a, b, g in runs)
            _flush(self.runs)
        row = prediction_row(path, result, self.top_k)
        csv.writer(self.stream).writerow([row.get(k, "") for k in self.fields])
        _flush(self.stream)

    def close(self) -> None:
        self.stream.close()
        self.runs.close()


def _whole_lines(path: Path) -> Iterator[str]:
    """The lines of a file written line by line; once they are all read, a last line left
    unfinished by a kill is cut off the file."""
    if not path.exists():
        return
    whole = 0
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            whole += len(raw)
            yield raw.decode("utf-8", "surrogateescape").removesuffix("\n")
    if whole < path.stat().st_size:
        os.truncate(path, whole)


def _path_of(line: str) -> str | None:
    try:
        return json.loads(line)["path"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


class _JsonLinesFile:
    """One JSON object per line."""

    def __init__(self, path: Path, *, top_k: int):
        self.top_k = top_k
        self.done = {p for p in map(_path_of, _whole_lines(path)) if p is not None}  # a line not a row is redone
        self.stream = _append(path)

    def write(self, path: str, result) -> None:
        self.stream.write(_json_line(path, result, self.top_k) + "\n")
        _flush(self.stream)

    def close(self) -> None:
        self.stream.close()


class _JsonArrayFile:
    """One JSON array, one object per line; new rows wait in a journal until the run ends."""

    def __init__(self, path: Path, *, top_k: int):
        self.path, self.journal_path = path, path.with_name(path.name + ".journal")
        self.journal = _JsonLinesFile(self.journal_path, top_k=top_k)
        self.done = set(map(_path_of, self._rows())) | self.journal.done

    def _rows(self) -> Iterator[str]:
        """The object lines of the array (none when the file does not exist yet)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, encoding="ascii", errors="replace") as f:
            if f.readline() == "[\n":
                for line in f:
                    if line.removesuffix("\n") == "]":
                        if next(f, "") == "":  # nothing after the closing bracket
                            return
                        break
                    row = line.removesuffix("\n").removesuffix(",")
                    if _path_of(row) is None:
                        break
                    yield row
        raise GenrekitError(
            f"'{self.path}' is not a JSON array written by genrekit (one object per line); give another --output"
        )

    def write(self, path: str, result) -> None:
        self.journal.write(path, result)

    def close(self) -> None:
        self.journal.close()
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="ascii") as f:
            f.write("[")
            new = (line for line in _whole_lines(self.journal_path) if _path_of(line) is not None)
            for i, row in enumerate(chain(self._rows(), new)):
                f.write(("\n" if i == 0 else ",\n") + row)
            f.write("\n]\n")
            _flush(f)
        os.replace(tmp, self.path)
        self.journal_path.unlink()


@contextmanager
def output_lock(path: Path | None) -> Iterator[None]:
    """Hold ``<path>.lock`` for this run (nothing for ``None``, or where ``flock`` does not exist).

    Raises
    ------
    GenrekitError
        another run holds it, or ``path`` is a folder
    """
    if path is None:
        yield
        return
    if path.is_dir():
        raise GenrekitError(f"the output '{path}' is a folder; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: runs are not guarded
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()
            raise GenrekitError(
                f"'{path}' is being written by another genrekit run{f' (process {holder})' if holder else ''}; "
                "wait for it to end, or give another --output"
            ) from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield  # closing the file releases the lock


@contextmanager
def open_output(fmt: str, path: Path | None, *, top_k: int = 3, timeline: bool = False, windows: bool = False):
    """A writer of rows in ``fmt`` to ``path`` (``None``: the terminal), with the paths it already holds.

    The writer has ``done`` (the paths already written, as a set of str) and ``write(path, result)``
    with ``result`` a :class:`~genrekit.predictor.Prediction` or the error of that file.

    Raises
    ------
    GenrekitError
        ``fmt`` is unknown, or the file at ``path`` is not a genrekit output of that format
    """
    if fmt not in FORMATS or (path is not None and fmt == "table"):
        raise GenrekitError(f"unknown output format '{fmt}': give {', '.join(FORMATS[1 if path else 0 :])}")
    if path is None:
        writer = _Terminal(fmt, top_k=top_k, timeline=timeline, windows=windows)
    else:
        writer = {"csv": _CsvFile, "json": _JsonArrayFile, "jsonl": _JsonLinesFile}[fmt](path, top_k=top_k)
    try:
        yield writer
    finally:
        writer.close()
