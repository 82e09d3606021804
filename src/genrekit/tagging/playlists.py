"""Playlists per genre: ``--playlists DIR`` writes one M3U8 file per genre into ``DIR``
(``<genre>.m3u8``), its paths relative to ``DIR``, each file written whole or not at all.

A file whose genre is confident goes into its genre's playlist; a file with music whose genre the
model is unsure of goes into ``unsure.m3u8``; a file without music, and a file that failed, goes
into none. Playlists are made at the end of a run from all its rows, those an earlier run left in
a resumed output included. A playlist genrekit wrote earlier for a genre no file has now is removed;
other files in ``DIR`` are left alone.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from genrekit.errors import GenrekitError

UNSURE = "unsure"
MARK = "# genrekit playlist"  # the second line of ours: a later run replaces or removes only these
_TRUE = (True, "yes", "true", "True")


@dataclass(frozen=True)
class Entry:
    """One file of a playlist: ``genre`` is ``None`` when the model is unsure of it."""

    path: str
    genre: str | None
    duration_s: float | None = None
    artist: str = ""
    title: str = ""


def entry(row: dict) -> Entry | None:
    """The playlist entry of one row (a CSV row, a JSON object, typed or not), ``None`` when the file
    belongs to no playlist (an error, no music)."""
    if row.get("error") or not row.get("genre"):
        return None
    confident = row.get("confident", True) in _TRUE
    try:
        duration = float(row["duration_s"]) if row.get("duration_s") not in (None, "") else None
    except ValueError:
        duration = None
    return Entry(
        str(row["path"]),
        str(row["genre"]) if confident else None,
        duration,
        row.get("artist") or "",
        row.get("title") or "",
    )


def output_rows(path: Path, fmt: str) -> Iterator[dict]:
    """The rows of a finished output file (``csv``, ``json`` or ``jsonl``)."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        if fmt == "csv":
            yield from csv.DictReader(f)
        elif fmt == "json":
            yield from json.load(f)
        else:
            yield from (json.loads(line) for line in f if line.strip())


def check_folder(folder: str | os.PathLike | None) -> Path | None:
    """The playlists' folder, checked before a run starts.

    Raises
    ------
    GenrekitError
        it is not an existing folder
    """
    if folder is None:
        return None
    path = Path(os.fsdecode(folder))
    if not path.is_dir():
        raise GenrekitError(f"--playlists '{path}' is not a folder; create it first")
    return path


def playlist_name(genre: str | None) -> str:
    """The file name of a genre's playlist (characters a file name cannot hold become ``_``)."""
    return re.sub(r'[/\\:*?"<>|\x00-\x1f]+', "_", genre or UNSURE).strip(". ") + ".m3u8"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_playlists(folder: Path, entries: Iterable[Entry | None]) -> dict[str, int]:
    """Write one M3U8 per genre (and ``unsure.m3u8``) in ``folder``; returns file name -> number of files.

    Raises
    ------
    GenrekitError
        a playlist cannot be written
    """
    lists: dict[str, list[Entry]] = {}
    for e in entries:
        if e is not None:
            lists.setdefault(playlist_name(e.genre), []).append(e)
    base = os.path.realpath(folder)
    for name, members in lists.items():
        lines = ["#EXTM3U", MARK]
        for e in sorted(members, key=lambda m: m.path):
            who = " - ".join(x for x in (e.artist, e.title) if x) or Path(e.path).stem
            lines += [
                f"#EXTINF:{round(e.duration_s) if e.duration_s is not None else -1},{who}",
                os.path.relpath(e.path, base),
            ]
        try:
            _write_atomic(folder / name, "\n".join(lines) + "\n")
        except OSError as exc:
            raise GenrekitError(
                f"cannot write the playlist '{folder / name}' ({exc.strerror}); "
                "check the folder's space and permissions"
            ) from None
    for old in folder.glob("*.m3u8"):
        if old.name not in lists and _ours(old):
            old.unlink(missing_ok=True)
    return {name: len(members) for name, members in sorted(lists.items())}


def _ours(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [f.readline().rstrip("\n") for _ in range(2)][1] == MARK
    except OSError:
        return False


def playlists_line(folder: Path, counts: dict[str, int]) -> str:
    """One line for the terminal: which playlists were written where."""
    if not counts:
        return f"no playlist written in '{folder}': no file has music"
    return f"playlists in '{folder}': " + ", ".join(f"{name} ({n})" for name, n in counts.items())
