"""One file's result as people and programs read it. There is one row schema (:data:`ROW_FIELDS`,
:func:`file_row`), which every flat writer formats: a CSV row (:func:`prediction_row`), a typed
Parquet row (:func:`parquet_row`, Ray's partitions); JSON lines are the full object of
:mod:`genrekit.schema`; and the lines of the terminal's table, and the writer of rows to the terminal.

Light (no numpy).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import TextIO

from genrekit.durations import clock
from genrekit.schema import DEFAULT_STYLE_THRESHOLD, NAME_TAGS, TimelineConfig, prediction_json

# the one flat row: (field, type) -- "str", "float" or "bool"
ROW_FIELDS = [
    ("path", "str"),
    ("artist", "str"),
    ("album", "str"),
    ("title", "str"),
    ("genre", "str"),
    ("probability", "float"),
    ("confident", "bool"),
    ("label", "str"),
    ("top", "str"),
    ("styles", "str"),
    ("no_music", "str"),
    ("duration_s", "float"),
    ("truncated", "bool"),
    ("analysed", "str"),
    ("error", "str"),
]
CSV_FIELDS = [name for name, _ in ROW_FIELDS]


def file_row(path: str, result, top_k: int = 3, style_threshold: float = DEFAULT_STYLE_THRESHOLD) -> dict:
    """The flat row of a file's result or error, typed (``None``: no value). ``styles`` is
    ``style:probability`` pairs joined by ``;``, empty when they were not computed."""
    if isinstance(result, Exception):
        return {**dict.fromkeys(CSV_FIELDS), "path": path, "error": str(result)}
    d = prediction_json(result, top_k=top_k, style_threshold=style_threshold)
    return {
        "path": path,
        **{k: d.get(k, "") for k in NAME_TAGS},
        "genre": d["genre"],
        "probability": d["probability"],
        "confident": d["confident"],
        "label": d["label"],
        "top": ";".join(f"{t['genre']}:{t['probability']:.4f}" for t in d["top"]),
        "styles": ";".join(f"{s['style']}:{s['probability']:.4f}" for s in d.get("styles", [])),
        "no_music": d["no_music"],
        "analysed": d.get("analysed"),
        "duration_s": d["duration_s"],
        "truncated": d["truncated"],
        "error": None,
    }


def prediction_row(path: str, result, top_k: int = 3, style_threshold: float = DEFAULT_STYLE_THRESHOLD) -> dict:
    """The row of :func:`file_row` as CSV cells: ``yes``/``no``, probabilities to 4 decimals, ``""`` for none."""
    row = file_row(path, result, top_k, style_threshold)
    failed = row["error"] is not None
    cells = {}
    for name, kind in ROW_FIELDS:
        value = row[name]
        if kind == "bool":
            cells[name] = "" if failed else ("yes" if value else "no")
        elif value is None:
            cells[name] = ""
        elif name == "probability":
            cells[name] = round(value, 4)
        else:
            cells[name] = value
    return cells


def utf8(text: str) -> str:
    """``text`` as valid UTF-8 (Parquet and Arrow hold nothing else): the bytes of a file name that
    are not UTF-8 are written as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def row_key(path: Path | str) -> str:
    """The ``path`` cell of a Parquet row: its name as UTF-8, bytes that are not UTF-8 as ``\\xNN``
    and a backslash doubled, so that two different names never share a key (``caf\\xe9`` the
    text and the byte 0xE9 differ)."""
    return utf8(os.fsdecode(path).replace("\\", "\\\\"))


def parquet_schema():
    """The Arrow schema of :data:`ROW_FIELDS`."""
    import pyarrow as pa

    types = {"str": pa.string(), "float": pa.float64(), "bool": pa.bool_()}
    return pa.schema([(name, types[kind]) for name, kind in ROW_FIELDS])


def parquet_row(path: str, result, top_k: int = 3, style_threshold: float = DEFAULT_STYLE_THRESHOLD) -> dict:
    """The row of :func:`file_row` for Parquet: the path as :func:`row_key`, every text valid UTF-8."""
    row = file_row(path, result, top_k, style_threshold)
    return {k: utf8(v) if isinstance(v, str) else v for k, v in row.items()} | {"path": row_key(path)}


def json_line(
    path: str,
    result,
    *,
    top_k: int,
    windows: bool,
    timeline: TimelineConfig | None,
    style_threshold: float = DEFAULT_STYLE_THRESHOLD,
) -> str:
    """One line of JSON (ASCII: bytes of a name that are not UTF-8 are escaped, as ``\\udcXX``)."""
    if isinstance(result, Exception):
        return json.dumps({"path": path, "error": str(result)})
    d = prediction_json(result, top_k=top_k, windows=windows, timeline=timeline, style_threshold=style_threshold)
    d = {**d, "path": path, "error": None}
    try:
        return json.dumps(d, allow_nan=False)
    except ValueError:  # a NaN: never written
        return json.dumps({"path": path, "error": f"'{path}' gave values that are not numbers; please report this bug"})


def csv_line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(values)
    return buf.getvalue()


def table_text(
    path: str,
    result,
    *,
    top_k: int,
    timeline: TimelineConfig | None = None,
    windows: bool = False,
    show_timeline: bool = False,
    style_threshold: float = DEFAULT_STYLE_THRESHOLD,
) -> str:
    """The lines the terminal shows for one file."""
    if isinstance(result, Exception):
        return f"{path}\n  error: {result}\n"
    d = prediction_json(result, top_k=top_k, windows=windows, timeline=timeline, style_threshold=style_threshold)
    who = " – ".join(x for x in (d.get("artist"), d.get("title")) if x)
    text = f"{path}{f'  [{who}]' if who else ''}  ({clock(d['duration_s'])})\n"
    if d["truncated"]:
        declared = clock(d["declared_duration_s"])
        text += f"  truncated: the file ends at {clock(d['duration_s'])} although its header says {declared}\n"
    if d["no_music"]:
        return text + f"  no music detected: {d['no_music']}\n"
    tops = "  ".join(f"{t['genre']} {t['probability']:.0%}" for t in d["top"])
    text += f"  {tops}{'' if d['confident'] else '  (unsure)'}\n"
    if d.get("styles"):
        text += "  styles: " + ", ".join(f"{s['style']} {s['probability']:.0%}" for s in d["styles"]) + "\n"
    if windows:
        for w in d["windows"]:
            text += f"    {clock(w['start_s'])}–{clock(w['end_s'])}  {w['genre']:<10} {w['probabilities'][w['genre']]:.0%}\n"
    elif show_timeline:
        text += "".join(f"    {clock(r['start_s'])}–{clock(r['end_s'])}  {r['genre']}\n" for r in d["timeline"])
    return text


class Terminal:
    """Rows printed as they come (the JSON array closed at the end); nothing to resume."""

    def __init__(
        self,
        fmt: str,
        stream: TextIO,
        *,
        top_k: int,
        show_timeline: bool,
        windows: bool,
        timeline: TimelineConfig | None,
        style_threshold: float = DEFAULT_STYLE_THRESHOLD,
    ):
        self.fmt, self.stream, self.top_k, self.windows = fmt, stream, top_k, windows
        self.style_threshold = style_threshold
        self.show_timeline, self.timeline = show_timeline, timeline
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.first = True
        self._print(csv_line(CSV_FIELDS) if fmt == "csv" else "[" if fmt == "json" else "")

    def _print(self, text: str) -> None:
        # a name that is not UTF-8 would not print: its bytes are shown as \xNN
        self.stream.write(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
        self.stream.flush()

    def write(self, path: str, result) -> None:
        opts = {
            "top_k": self.top_k,
            "windows": self.windows,
            "timeline": self.timeline,
            "style_threshold": self.style_threshold,
        }
        if self.fmt == "csv":
            row = prediction_row(path, result, self.top_k, self.style_threshold)
            self._print(csv_line([row[k] for k in CSV_FIELDS]))
        elif self.fmt == "json":
            self._print(("\n" if self.first else ",\n") + json_line(path, result, **opts))
        elif self.fmt == "jsonl":
            self._print(json_line(path, result, **opts) + "\n")
        else:
            self._print(table_text(path, result, show_timeline=self.show_timeline, **opts))
        self.first = False

    def close(self) -> None:
        if self.fmt == "json":
            self._print("\n]\n")
