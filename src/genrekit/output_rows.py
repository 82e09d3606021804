"""One file's result as people and programs read it: a flat CSV row, one strict JSON line, or the
lines of the terminal's table; and the writer of rows to the terminal.

Every form is made from the one prediction object of :mod:`genrekit.schema`. Light (no numpy).
"""
from __future__ import annotations

import csv
import io
import json
from typing import TextIO

from genrekit.durations import clock
from genrekit.schema import TimelineConfig, prediction_json

CSV_FIELDS = ["path", "genre", "probability", "confident", "label", "top", "no_music", "duration_s", "truncated",
              "error"]  # fmt: skip


def prediction_row(path: str, result, top_k: int = 3) -> dict:
    """One flat CSV row for a file's result or error (probabilities to 4 decimals)."""
    if isinstance(result, Exception):
        return {**dict.fromkeys(CSV_FIELDS, ""), "path": path, "error": str(result)}
    d = prediction_json(result, top_k=top_k)
    return {
        "path": path,
        "genre": d["genre"] or "",
        "probability": "" if d["probability"] is None else round(d["probability"], 4),
        "confident": "yes" if d["confident"] else "no",
        "label": d["label"],
        "top": ";".join(f"{t['genre']}:{t['probability']:.4f}" for t in d["top"]),
        "no_music": d["no_music"] or "",
        "duration_s": d["duration_s"],
        "truncated": "yes" if d["truncated"] else "no",
        "error": "",
    }


def json_line(path: str, result, *, top_k: int, windows: bool, timeline: TimelineConfig | None) -> str:
    """One line of JSON (ASCII: bytes of a name that are not UTF-8 are escaped, as ``\\udcXX``)."""
    if isinstance(result, Exception):
        return json.dumps({"path": path, "error": str(result)})
    d = {**prediction_json(result, top_k=top_k, windows=windows, timeline=timeline), "path": path, "error": None}
    try:
        return json.dumps(d, allow_nan=False)
    except ValueError:  # a NaN: never written
        return json.dumps({"path": path, "error": f"'{path}' gave values that are not numbers; please report this bug"})


def csv_line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(values)
    return buf.getvalue()


def table_text(path: str, result, *, top_k: int, timeline: TimelineConfig | None = None, windows: bool = False,
               show_timeline: bool = False) -> str:  # fmt: skip
    """The lines the terminal shows for one file."""
    if isinstance(result, Exception):
        return f"{path}\n  error: {result}\n"
    d = prediction_json(result, top_k=top_k, windows=windows, timeline=timeline)
    text = f"{path}  ({clock(d['duration_s'])})\n"
    if d["truncated"]:
        declared = clock(d["declared_duration_s"])
        text += f"  truncated: the file ends at {clock(d['duration_s'])} although its header says {declared}\n"
    if d["no_music"]:
        return text + f"  no music detected: {d['no_music']}\n"
    tops = "  ".join(f"{t['genre']} {t['probability']:.0%}" for t in d["top"])
    text += f"  {tops}{'' if d['confident'] else '  (unsure)'}\n"
    if windows:
        for w in d["windows"]:
            text += f"    {clock(w['start_s'])}–{clock(w['end_s'])}  {w['genre']:<10} {w['probabilities'][w['genre']]:.0%}\n"
    elif show_timeline:
        text += "".join(f"    {clock(r['start_s'])}–{clock(r['end_s'])}  {r['genre']}\n" for r in d["timeline"])
    return text


class Terminal:
    """Rows printed as they come (the JSON array closed at the end); nothing to resume."""

    def __init__(self, fmt: str, stream: TextIO, *, top_k: int, show_timeline: bool, windows: bool,
                 timeline: TimelineConfig | None):  # fmt: skip
        self.fmt, self.stream, self.top_k, self.windows = fmt, stream, top_k, windows
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
        opts = {"top_k": self.top_k, "windows": self.windows, "timeline": self.timeline}
        if self.fmt == "csv":
            row = prediction_row(path, result, self.top_k)
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
