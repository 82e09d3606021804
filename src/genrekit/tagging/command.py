"""The ``genrekit tag`` command: its options (:func:`add_arguments`) and its run (:func:`run`).

Light until a run starts, so that the command line can take its options from here.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

from genrekit.errors import GenrekitError
from genrekit.schema import DEFAULT_STYLE_THRESHOLD
from genrekit.tagging.core import DEFAULT_PATCHES
from genrekit.tagging.decide import DEFAULT_MIN_CONFIDENCE, MODES
from genrekit.tagging.predict_command import add_precision_option, positive_int, probability

OUTPUT_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl"}
ROW_FIELDS = ("path", "artist", "album", "title", "genre_now", "genre_new", "probability", "action", "reason", "styles")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``genrekit tag`` options."""
    p.add_argument("inputs", nargs="*", metavar="PATH", help="audio files and/or folders (searched recursively)")
    p.add_argument(
        "--write",
        action="store_true",
        help="write the genres into the files (without it, nothing is changed: the run shows what it would do)",
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        default="keep",
        help="keep (default): only files without a genre; replace: set the genre; add: add it to the genres there",
    )
    p.add_argument(
        "--min-confidence",
        type=probability,
        default=DEFAULT_MIN_CONFIDENCE,
        metavar="P",
        help="write only genres at least this probable; the rest are listed as skipped (default: %(default)s)",
    )
    p.add_argument(
        "--per",
        choices=("file", "album"),
        default="file",
        help="album: one genre per album (album tag, else folder), from the mean of its tracks (default: file)",
    )
    p.add_argument(
        "--genre-map",
        metavar="FILE",
        help="genre names to write: 'label = Name' lines or a JSON object (default: Blues, Classical, "
        "Country, Disco, Hip-Hop, Jazz, Metal, Pop, Reggae, Rock)",
    )
    p.add_argument("--model", help="checkpoint file, or a bundled model's name (default: the bundled musicnn-gtzan)")
    p.add_argument(
        "--styles",
        action="store_true",
        help="also list the musicnn backbone's Million Song Dataset tags above --style-threshold",
    )
    p.add_argument("--write-styles", action="store_true", help="with --styles and --write: write them as STYLE")
    p.add_argument(
        "--style-threshold",
        type=probability,
        default=DEFAULT_STYLE_THRESHOLD,
        metavar="P",
        help="a style's least probability (default: %(default)s)",
    )
    p.add_argument("--undo", metavar="JOURNAL", help="put back the values a journal changed (give no PATH)")
    p.add_argument(
        "--journal",
        metavar="FILE",
        help="record the changes here (default: a new tag-<time>.jsonl in $GENREKIT_CACHE/journals, "
        "or ~/.cache/genrekit/journals)",
    )
    p.add_argument(
        "--state",
        metavar="FILE",
        help="past predictions: a rerun predicts only files whose size, time or model changed "
        "(default: tag-state.jsonl in $GENREKIT_CACHE or ~/.cache/genrekit)",
    )
    p.add_argument("--no-state", action="store_true", help="predict every file, remember nothing")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the rows to FILE (.csv, .json or .jsonl)")
    p.add_argument(
        "--playlists",
        metavar="DIR",
        help="write one M3U8 per genre (the genre each file gets) into DIR (paths relative to it; "
        "files below --min-confidence go into unsure.m3u8, files without music or with errors into none)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="files decoded in parallel when predicting in this process (default: %(default)s)",
    )
    p.add_argument(
        "--processes",
        type=positive_int,
        metavar="N",
        help="worker processes predicting, one model on one thread each (default: one per core); 1: in "
        "this process, --workers threads (so are --styles and a job of two files or fewer)",
    )
    p.add_argument(
        "--patches",
        type=int,
        default=DEFAULT_PATCHES,
        metavar="K",
        help="analyse K windows spread over each song, decoding only them, then 3K, 9K... while its top "
        "genre is not settled (default: %(default)s)",
    )
    p.add_argument("--full", action="store_true", help="analyse every window of every song")
    add_precision_option(p)


def _write_rows(rows: list[dict], path: Path) -> None:
    fmt = OUTPUT_FORMATS[path.suffix.lower()]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        if fmt == "csv":
            w = csv.DictWriter(f, fieldnames=ROW_FIELDS)
            w.writeheader()
            w.writerows(rows)
        elif fmt == "json":
            json.dump(rows, f, indent=1, ensure_ascii=False)
        else:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    os.replace(tmp, path)


def _check_output(output: str | None) -> Path | None:
    if output is None:
        return None
    out = Path(output)
    if out.suffix.lower() not in OUTPUT_FORMATS:
        raise GenrekitError(f"-o '{out}': give a file ending in {', '.join(OUTPUT_FORMATS)}")
    if not out.parent.is_dir():
        raise GenrekitError(f"-o '{out}': the folder '{out.parent}' does not exist; create it first")
    return out


def run(a: argparse.Namespace) -> int:
    """Run parsed ``genrekit tag`` options; the exit status: 1 when a file failed, else 0.

    Raises
    ------
    GenrekitError
        the options do not fit together, or the run cannot start (see :func:`genrekit.tagging.run_tag`)
    """
    from genrekit.datasets.cache import default_cache_dir
    from genrekit.tagging.decide import GenreMap, Rules
    from genrekit.tagging.engine import default_journal, print_row, run_tag
    from genrekit.tagging.playlists import check_folder
    from genrekit.tagging.safe import Journal, undo_journal

    out = _check_output(a.output)
    lists = check_folder(a.playlists)
    journal = Path(a.journal) if a.journal else default_journal(folder=default_cache_dir() / "journals")
    if a.undo:
        if a.inputs:
            raise GenrekitError("--undo puts a journal's old values back: give no PATH with it")
        with Journal(journal) as log:
            result = undo_journal(a.undo, journal=log)
        for error in result.errors.values():
            print(f"error: {error}", file=sys.stderr)
        print(
            f"restored {len(result.restored)} file(s), failed {len(result.errors)}; the undo's own changes: {journal}",
            file=sys.stderr,
        )
        return 1 if result.errors else 0
    if not a.inputs:
        raise GenrekitError("give audio files or folders to tag (or --undo JOURNAL)")
    if a.write_styles and not a.write:
        raise GenrekitError("--write-styles writes with --write: give both")
    rules = Rules(
        mode=a.mode, min_confidence=a.min_confidence, genre_map=GenreMap.load(a.genre_map), write_styles=a.write_styles
    )
    state = None if a.no_state else (Path(a.state) if a.state else default_cache_dir() / "tag-state.jsonl")
    summary = run_tag(
        a.inputs,
        model=a.model,
        rules=rules,
        write=a.write,
        per=a.per,
        journal=journal if a.write else None,
        state=state,
        styles=a.styles,
        style_threshold=a.style_threshold,
        workers=a.workers,
        on_row=print_row,
        patches=None if a.full else a.patches,
        processes=a.processes,
        precision=a.precision,
    )
    if out is not None:
        _write_rows([r.to_dict() for r in summary.rows], out)
    if summary.ignored.line():
        print(summary.ignored.line(), file=sys.stderr)
    s = summary
    what = f"written {s.written}" if a.write else f"would write {s.would_write} (give --write to write them)"
    print(
        f"{what}, unchanged {s.unchanged}, skipped {s.skipped}, failed {s.failed}; "
        f"predicted {s.predicted}, reused {s.reused} unchanged file(s)"
        + (f"; changes recorded in {journal} (undo: genrekit tag --undo {journal})" if a.write and s.written else "")
        + (f"; rows in {out}" if out else ""),
        file=sys.stderr,
    )
    if lists is not None:
        from genrekit.tagging.playlists import playlists_line, write_playlists

        counts = write_playlists(lists, (_entry(r, rules.min_confidence) for r in summary.rows))
        print(playlists_line(lists, counts), file=sys.stderr)
    return 1 if s.failed else 0


def _entry(row, min_confidence: float):
    """The playlist entry of a row: the genre the file gets, ``unsure`` below ``min_confidence``."""
    from genrekit.tagging.playlists import Entry

    if row.action == "error" or not row.genre_new or row.probability is None:
        return None
    genre = row.genre_new if row.probability >= min_confidence else None
    return Entry(row.path, genre, None, row.artist, row.title)
