"""Tagging many files: collect inputs, predict in parallel, write rows as they come.

With an output file the run is resumable: each row is flushed and fsynced as soon as its file is
done (a killed run loses nothing already reported), and a rerun skips the files already there (errors included: each file gets exactly one row).
A file that cannot be decoded gets a row with an ``error`` and the run goes on.
"""
from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tqdm.auto import tqdm

from genrekit.audio import GenrekitError, is_audio_path
from genrekit.predictor import Prediction, Predictor

CSV_FIELDS = [
    "path", "genre", "probability", "top", "duration_s", "segments", "timeline", "no_music", "confident", "error"
]  # fmt: skip


@dataclass
class LibrarySummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def _is_input(path: Path, images: bool) -> bool:
    if path.suffix.lower() == ".png":  # album covers are not spectrograms: only the Kaggle geometry counts
        from genrekit.kaggle_image import is_kaggle_image

        return images and is_kaggle_image(path)
    return is_audio_path(path)


def collect_inputs(inputs: list[str | os.PathLike], *, images: bool = False) -> list[Path]:
    """Audio files named directly or found recursively in the folders given (sorted, no duplicates).

    With ``images``, folders also yield the PNGs that have the Kaggle spectrogram geometry.

    Raises
    ------
    GenrekitError
        an input does not exist, or the folders hold no audio file
    """
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and _is_input(p, images) and not p.name.startswith("."))
            if not found:
                raise GenrekitError(f"no audio file found in folder '{item}' (searched recursively)")
            files += found
        elif item.exists():
            files.append(item)
        else:
            raise GenrekitError(f"'{item}' does not exist; give audio files or folders")
    seen: set[Path] = set()
    return [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))]


def prediction_row(path: str, result: Prediction | GenrekitError, top_k: int = 3) -> dict:
    """One flat output row (CSV) for a file's result or error, probabilities rounded for display."""
    if isinstance(result, Exception):
        return {"path": path, "genre": "", "probability": "", "top": "", "duration_s": "", "segments": "",
                "timeline": "", "no_music": "", "confident": "", "error": str(result)}  # fmt: skip
    return {
        "path": path,
        "genre": result.genre or "",
        "probability": round(result.top[0][1], 4) if result.genre else "",
        "top": ";".join(f"{g}:{p:.4f}" for g, p in result.top[:top_k]),
        "duration_s": round(result.duration_s, 3),
        "segments": len(result.timeline),
        "timeline": ";".join(f"{s.start_s:.3g}-{s.end_s:.3g}:{s.label}" for s in result.timeline),
        "no_music": result.no_music or "",
        "confident": "yes" if result.confident else "no",
        "error": "",
    }


def _drop_partial_last_line(output: Path) -> None:
    """Cut a last line left unfinished by a killed run, so it is redone rather than glued to."""
    if not output.exists() or output.stat().st_size == 0:
        return
    with open(output, "rb+") as f:
        data = f.read()
        if not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def _done_paths(output: Path, fmt: str) -> set[str]:
    if not output.exists() or output.stat().st_size == 0:
        return set()
    with open(output, newline="") as f:
        if fmt == "csv":
            return {row["path"] for row in csv.DictReader(f) if row.get("path")}
        done = set()
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill is redone
            done.add(row["path"])
        return done


class _Writer:
    """Appends rows to a file (CSV or JSON lines) or prints them, flushing each one."""

    def __init__(self, fmt: str, output: Path | None, timeline: bool, top_k: int):
        self.fmt, self.output, self.timeline, self.top_k = fmt, output, timeline, top_k
        self.stream: TextIO = sys.stdout
        if output is not None:
            fresh = not output.exists() or output.stat().st_size == 0
            output.parent.mkdir(parents=True, exist_ok=True)
            self.stream = open(output, "a", newline="")
            if fmt == "csv" and fresh:
                csv.writer(self.stream).writerow(CSV_FIELDS)
        elif fmt == "csv":
            csv.writer(self.stream).writerow(CSV_FIELDS)

    def write(self, path: str, result: Prediction | GenrekitError) -> None:
        if self.fmt == "csv":
            row = prediction_row(path, result, self.top_k)
            csv.writer(self.stream).writerow([row[k] for k in CSV_FIELDS])
        elif self.fmt == "json":
            d = {"path": path, "error": str(result)} if isinstance(result, Exception) else result.to_dict()
            if "top" in d:
                d["top"] = d["top"][: self.top_k]
            self.stream.write(json.dumps(d) + "\n")
        else:
            self.stream.write(_table_text(path, result, self.timeline, self.top_k))
        self.stream.flush()
        if self.output is not None:
            os.fsync(self.stream.fileno())

    def close(self) -> None:
        if self.output is not None:
            self.stream.close()


def _table_text(path: str, result: Prediction | GenrekitError, timeline: bool, top_k: int) -> str:
    if isinstance(result, Exception):
        return f"{path}\n  error: {result}\n"
    if not result.music_detected:
        return f"{path}  ({result.duration_s:.1f} s)\n  no music detected: {result.no_music}\n"
    tops = "  ".join(f"{g} {p:.0%}" for g, p in result.top[:top_k])
    unsure = "" if result.confident else "  (not confident)"
    text = f"{path}  ({result.duration_s:.1f} s)\n  {tops}{unsure}\n"
    if timeline:
        text += "".join(
            f"    {s.start_s:7.1f}-{s.end_s:7.1f} s  {s.label:<10} {s.probabilities[s.label]:.0%}\n" for s in result.timeline
        )
    return text


def run_library(
    inputs: list[str | os.PathLike],
    *,
    model: str | os.PathLike | None = None,
    top_k: int = 3,
    fmt: str = "table",
    output: str | os.PathLike | None = None,
    workers: int = 2,
    timeline: bool = False,
    progress: bool = True,
) -> LibrarySummary:
    """Predict every audio file in ``inputs`` and write one row per file (see module doc)."""
    predictor = Predictor.load(model)
    files = collect_inputs(inputs, images=predictor.feature_config.reads_images)
    out = Path(output) if output else None
    if out is not None and fmt == "table":
        fmt = "csv"  # a file output must be machine-readable to be resumable
    if out is not None:
        _drop_partial_last_line(out)
    done = _done_paths(out, fmt) if out is not None else set()
    todo = [f for f in files if str(f) not in done]
    summary = LibrarySummary(skipped=len(files) - len(todo))
    writer = _Writer(fmt, out, timeline, top_k)
    try:
        bar = tqdm(total=len(todo), unit="file", desc="predict", disable=not progress or len(todo) < 2, file=sys.stderr)
        for path, result in predictor.predict_files(todo, workers=workers):
            writer.write(path, result)
            if isinstance(result, Exception):
                summary.failed += 1
                summary.errors[path] = str(result)
            else:
                summary.done += 1
            bar.update()
        bar.close()
    finally:
        writer.close()
    print(
        f"done {summary.done}, skipped {summary.skipped} (already in {out}), failed {summary.failed}"
        if out is not None
        else f"done {summary.done}, failed {summary.failed}",
        file=sys.stderr,
    )
    return summary
