"""Where tagging results go: a table, CSV, one JSON array or JSON lines, on the terminal or in a file.

Every format carries the one prediction object of :mod:`genrekit.schema` (CSV: its flat fields). A
file output is resumable and guarded:

- the format follows the file's extension (``.csv``, ``.json``, ``.jsonl``/``.ndjson``) unless
  one is given; the folder it goes in must exist;
- one run at a time: a second run on the same output (however its path is spelled: the lock is
  taken on the resolved path) stops with an error; the lock file ``<output>.lock`` is removed
  when the run ends (:mod:`genrekit.output_guard`);
- each row is flushed and fsynced as soon as its file is done; a rerun reads back the rows already
  there (each file keeps exactly one row), retries the files that failed (their old error rows
  are dropped first, unless ``retry_failed`` is off) and cuts a last row a killed run left unfinished;
- CSV keeps one short row per file: the timeline runs go to ``<output stem>.timeline.csv``;
- JSON is always one valid array: rows go to a journal ``<output>.journal`` (JSON lines) as they
  come and are folded into the array, rewritten atomically, when the run ends (after a hard kill,
  when the next run ends). Folding is idempotent: a row of the journal replaces the array's row of
  the same file, so a kill between the fold and the journal's removal duplicates nothing;
- JSON lines: one object per line. JSON is strict: no NaN or infinity can be written.

File names are written whatever their bytes: a CSV file holds the name's own bytes (written and
read with ``surrogateescape``), JSON escapes the bytes that are not UTF-8 as ``\\udcXX``, and the
terminal shows them as ``\\xXX``. This module is light (no numpy, no torch).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from genrekit.errors import GenrekitError
from genrekit.output_guard import output_error, output_lock
from genrekit.schema import DEFAULT_STYLE_THRESHOLD, TimelineConfig, timeline_runs
from genrekit.tagging.rows import CSV_FIELDS, Terminal, csv_line, json_line, prediction_row

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "LEGACY_CSV_FIELDS",
    "TIMELINE_FIELDS",
    "open_output",
    "output_error",
    "output_format",
    "output_lock",
    "timeline_path",
]

FORMATS = ("table", "csv", "json", "jsonl")
EXTENSIONS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
LEGACY_CSV_FIELDS = {"timeline", "segments"}  # cells of older outputs, left empty when they are resumed
TIMELINE_FIELDS = ["path", "start_s", "end_s", "genre"]
_TEXT: dict[str, Any] = {"encoding": "utf-8", "errors": "surrogateescape", "newline": ""}


def output_format(path: Path | None, fmt: str | None) -> str:
    """The format to write: ``fmt`` when given, else the one ``path``'s extension names (terminal: a table).

    Raises
    ------
    GenrekitError
        ``fmt`` is unknown, is ``table`` for a file, or the extension names no format
    """
    if fmt is not None and fmt not in FORMATS:
        raise GenrekitError(f"unknown output format '{fmt}': give {', '.join(FORMATS)}")
    if path is None:
        return fmt or "table"
    if fmt == "table":
        raise GenrekitError("a table is for the terminal: write a file as --format csv, json or jsonl")
    if fmt is None:
        fmt = EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            raise GenrekitError(
                f"cannot tell the format of '{path}' from its extension: name it .csv, .json or "
                ".jsonl, or give --format csv|json|jsonl"
            )
    return fmt


def timeline_path(output: Path) -> Path:
    """The timeline file beside a CSV output: ``tags.csv`` -> ``tags.timeline.csv``."""
    return output.with_name(f"{output.stem}.timeline.csv")


def _append(path: Path) -> io.TextIOWrapper:
    return open(path, "a", **_TEXT)


def _flush(*streams) -> None:
    for s in streams:
        s.flush()
        os.fsync(s.fileno())


def _whole_csv(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    """The header and records of a CSV file written row by row; a last record left unfinished by a
    kill is cut off the file.

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
            elif len(record) == len(header):
                records.append(record)
            whole = read
    except csv.Error as exc:
        if read < size:
            raise GenrekitError(f"'{path}' is damaged before its end ({exc}); give another --output") from None
        # a record cut by a kill inside a quoted name: redone
    if whole < size:
        os.truncate(path, whole)
    return header, records


def _replace(path: Path, lines: Iterator[str]) -> None:
    """Replace a text file atomically with ``lines``."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", **_TEXT) as f:
        f.writelines(lines)
        _flush(f)
    os.replace(tmp, path)


class _CsvFile:
    """One row per file in the output; the runs of its timeline in the timeline file beside it."""

    def __init__(
        self,
        path: Path,
        *,
        top_k: int,
        retry_failed: bool,
        timeline: TimelineConfig | None,
        style_threshold: float = DEFAULT_STYLE_THRESHOLD,
        **_,
    ):
        self.top_k, self.timeline, self.style_threshold = top_k, timeline, style_threshold
        header, records = _whole_csv(path)
        if header is not None and ("path" not in header or set(header) - set(CSV_FIELDS) - LEGACY_CSV_FIELDS):
            raise GenrekitError(
                f"'{path}' is not a genrekit CSV output (its columns are {', '.join(header)}); give another --output"
            )
        self.fields = header or CSV_FIELDS  # an older output keeps its own columns
        at = {k: self.fields.index(k) for k in ("path", "error")}
        failed = {r[at["path"]] for r in records if r[at["error"]]}
        self.failed = failed if retry_failed else set()
        if self.failed:  # their error rows go: they are tried again
            kept = [r for r in records if r[at["path"]] not in self.failed]
            _replace(path, map(csv_line, [self.fields, *kept]))
            records = kept
        self.done = {r[at["path"]] for r in records}
        runs_path = timeline_path(path)
        runs_header, runs = _whole_csv(runs_path)
        if runs_header not in (None, TIMELINE_FIELDS):
            raise GenrekitError(f"'{runs_path}' is not a genrekit timeline; move it away, or give another --output")
        if any(r[0] not in self.done for r in runs):  # a kill between a file's runs and its row: redone
            _replace(runs_path, map(csv_line, [TIMELINE_FIELDS, *(r for r in runs if r[0] in self.done)]))
        self.stream, self.runs = _append(path), _append(runs_path)
        if header is None:
            csv.writer(self.stream).writerow(CSV_FIELDS)
        if runs_header is None:
            csv.writer(self.runs).writerow(TIMELINE_FIELDS)
        _flush(self.stream, self.runs)

    def write(self, path: str, result) -> None:
        if not isinstance(result, Exception) and result.music_detected:
            runs = timeline_runs(result.timeline, result.duration_s, self.timeline)
            csv.writer(self.runs).writerows([path, r["start_s"], r["end_s"], r["genre"]] for r in runs)
            _flush(self.runs)
        row = prediction_row(path, result, self.top_k, self.style_threshold)
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


def _parsed(line: str) -> tuple[str | None, bool]:
    """The path of a row, and whether it is an error row (``None``: the line is not a row)."""
    try:
        d = json.loads(line)
        return d["path"], bool(d.get("error"))
    except (json.JSONDecodeError, KeyError, TypeError):
        return None, False


class _JsonLinesFile:
    """One JSON object per line."""

    def __init__(self, path: Path, *, retry_failed: bool, **opts):
        self.opts = {k: opts[k] for k in ("top_k", "windows", "timeline", "style_threshold") if k in opts}
        rows = [(line, *_parsed(line)) for line in _whole_lines(path)]
        self.failed = {p for _, p, err in rows if p is not None and err} if retry_failed else set()
        if self.failed:
            _replace(path, (line + "\n" for line, p, _ in rows if p is not None and p not in self.failed))
        self.done = {p for _, p, _ in rows if p is not None and p not in self.failed}  # a line not a row is redone
        self.stream = _append(path)

    def write(self, path: str, result) -> None:
        self.stream.write(json_line(path, result, **self.opts) + "\n")
        _flush(self.stream)

    def close(self) -> None:
        self.stream.close()


class _JsonArrayFile:
    """One JSON array, one object per line; new rows wait in a journal until the run ends."""

    def __init__(self, path: Path, *, retry_failed: bool, **opts):
        self.path, self.journal_path = path, path.with_name(path.name + ".journal")
        self.journal = _JsonLinesFile(self.journal_path, retry_failed=False, **opts)
        rows = dict(map(_parsed, self._rows()))
        rows.update(map(_parsed, _whole_lines(self.journal_path)))  # the journal's row of a file wins
        self.failed = {p for p, err in rows.items() if err} if retry_failed else set()
        self.done = set(rows) - self.failed

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
                    if _parsed(row)[0] is None:
                        break
                    yield row
        raise GenrekitError(
            f"'{self.path}' is not a JSON array written by genrekit (one object per line); give another --output"
        )

    def write(self, path: str, result) -> None:
        self.journal.write(path, result)

    def close(self) -> None:
        self.journal.close()
        journal = [(line, _parsed(line)[0]) for line in _whole_lines(self.journal_path)]
        last = {p: i for i, (_, p) in enumerate(journal) if p is not None}
        array = (row for row in self._rows() if _parsed(row)[0] not in last)
        newer = (line for i, (line, p) in enumerate(journal) if p is not None and last[p] == i)

        def lines() -> Iterator[str]:
            yield "["
            for i, row in enumerate((*array, *newer)):
                yield ("\n" if i == 0 else ",\n") + row
            yield "\n]\n"

        _replace(self.path, lines())
        self.journal_path.unlink()


@contextmanager
def open_output(
    fmt: str,
    path: Path | None,
    *,
    top_k: int = 3,
    show_timeline: bool = False,
    windows: bool = False,
    timeline: TimelineConfig | None = None,
    retry_failed: bool = True,
    terminal: TextIO | None = None,
    style_threshold: float = DEFAULT_STYLE_THRESHOLD,
):
    """A writer of rows in ``fmt`` to ``path`` (``None``: the ``terminal`` stream, default stdout).

    The writer has ``done`` (the paths already written, as a set of str), ``failed`` (those whose
    error rows were dropped to be tried again) and ``write(path, result)`` with ``result`` a
    :class:`~genrekit.predictor.Prediction` or the error of that file.

    Raises
    ------
    GenrekitError
        ``fmt`` is unknown, the file at ``path`` is not a genrekit output of that format, or it
        cannot be written
    """
    import sys

    fmt = output_format(path, fmt)
    opts: dict[str, Any] = {
        "top_k": top_k,
        "windows": windows,
        "timeline": timeline,
        "style_threshold": style_threshold,
    }
    try:
        if path is None:
            writer = Terminal(fmt, terminal or sys.stdout, show_timeline=show_timeline, **opts)
        else:
            kind = {"csv": _CsvFile, "json": _JsonArrayFile, "jsonl": _JsonLinesFile}[fmt]
            writer = kind(path, retry_failed=retry_failed, **opts)
    except OSError as exc:
        raise output_error(exc, path or Path("<terminal>")) from None
    try:
        try:
            yield writer
        finally:  # an interrupted run keeps (and folds) what it wrote
            writer.close()
    except OSError as exc:
        raise output_error(exc, path or Path("<terminal>")) from None
