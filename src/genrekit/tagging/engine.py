"""``genrekit tag``: predict, show per file the genre it has and the one it would get, and write it.

Per file: read its tags (an unsupported container or broken tags is an error row), reuse the
last prediction when the file and the model are unchanged (:mod:`genrekit.tagging.state`),
else predict; apply the rules (:mod:`genrekit.tagging.decide`), and with ``write`` change the
file safely, journalled (:mod:`genrekit.tagging.safe`). A batch never stops at one file.
With ``per="album"`` each album (the album tag with its album artist when present, else the
folder) gets the genre of the mean of its tracks' probabilities.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from genrekit.errors import GenrekitError
from genrekit.precision import DEFAULT_PRECISION, check_precision
from genrekit.schema import DEFAULT_STYLE_THRESHOLD
from genrekit.tagging.decide import Decision, Rules, decide
from genrekit.tagging.safe import Journal, write_tags
from genrekit.tagging.scan import Ignored, scan_inputs
from genrekit.tagging.state import Record, State
from genrekit.tagging.tracks import Track, predict_record, predicted_tracks

if TYPE_CHECKING:
    from genrekit.predictor import Predictor

__all__ = [
    "PER",
    "STYLES_WRITTEN",
    "TagRow",
    "TagSummary",
    "album_key",
    "album_probabilities",
    "default_journal",
    "model_identity",
    "predict_record",
    "print_row",
    "run_tag",
    "styles_of",
]

PER = ("file", "album")
STYLES_WRITTEN = 5  # at most this many styles go into a file's STYLE field


@dataclass
class TagRow:
    """One file's line of the report."""

    path: str
    artist: str = ""
    album: str = ""
    title: str = ""
    genre_now: str = ""
    genre_new: str = ""
    probability: float | None = None
    action: str = ""  # written, would write, unchanged, skipped, error
    reason: str = ""
    styles: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class TagSummary:
    written: int = 0
    would_write: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    predicted: int = 0
    reused: int = 0
    rows: list[TagRow] = field(default_factory=list)
    ignored: Ignored = field(default_factory=Ignored)

    def count(self, row: TagRow) -> None:
        attr = {
            "written": "written",
            "would write": "would_write",
            "unchanged": "unchanged",
            "skipped": "skipped",
            "error": "failed",
        }[row.action]
        setattr(self, attr, getattr(self, attr) + 1)
        self.rows.append(row)


def model_identity(model: str | os.PathLike | None, *, precision: str = DEFAULT_PRECISION) -> tuple[str, str]:
    """The name results give the model (as :meth:`Predictor.load` names it) and its file's SHA-256,
    both marked with a precision other than fp32 (the state keeps its predictions apart)."""
    from genrekit.checkpoint import resolve_model_path
    from genrekit.runtime import file_sha256

    path = resolve_model_path(model)
    name, sha = (Path(model).name if model is not None else path.name), file_sha256(path)
    return (name, sha) if precision == DEFAULT_PRECISION else (f"{name} ({precision})", f"{sha}+{precision}")


def styles_of(record: Record, threshold: float) -> list[str]:
    """The names of the record's most probable styles from ``threshold`` on (at most :data:`STYLES_WRITTEN`)."""
    tags = sorted((record.styles or {}).items(), key=lambda kv: -kv[1])
    return [t for t, p in tags if p >= threshold][:STYLES_WRITTEN]


def album_key(track: Track) -> tuple[str, ...]:
    """The album tag (with the album artist, else the artist) when present, else the folder."""
    album = track.current.get("album")
    if album:
        who = track.current.get("albumartist") or track.current.get("artist") or [""]
        return ("tag", who[0], album[0])
    return ("folder", str(track.path.parent))


def album_probabilities(records: list[Record]) -> tuple[dict[str, float] | None, str | None]:
    """The mean of the tracks' probabilities over the tracks with music (``None``, why: when none has)."""
    music = [r.probabilities for r in records if r.no_music is None]
    if not music:
        return None, "no track of the album has music"
    return {g: sum(p[g] for p in music) / len(music) for g in music[0]}, None


def _first(values: list[str] | None) -> str:
    return "; ".join(values or [])


def run_tag(
    inputs: list[str | os.PathLike],
    *,
    model: str | os.PathLike | None = None,
    rules: Rules | None = None,
    write: bool = False,
    per: str = "file",
    journal: str | os.PathLike | None = None,
    state: str | os.PathLike | None = None,
    styles: bool = False,
    style_threshold: float = DEFAULT_STYLE_THRESHOLD,
    workers: int = 2,
    on_row: Callable[[TagRow], None] | None = None,
    patches: int | None = None,
    processes: int | None = None,
    precision: str = DEFAULT_PRECISION,
) -> TagSummary:
    """Tag files and folders (see the module doc).

    Parameters
    ----------
    inputs : audio files and folders (searched recursively)
    model : checkpoint path or bundled model name (``None``: the default model)
    rules : mode, minimum confidence, genre names, whether styles are written
    write : change the files; without it nothing is written and rows say ``would write``
    per : ``file`` or ``album``
    journal : where the changes are recorded (needed with ``write``)
    state : the file of past predictions (``None``: predict every file)
    styles : also compute the musicnn MSD tags (the bundled musicnn models only)
    style_threshold : a style is listed (and written) from this probability on
    workers : files decoded in parallel when predicting in this process (threads)
    on_row : called with each row as soon as it is decided (e.g. to print it)
    patches : analyse this many windows spread over each song, more while its top genre is not
        settled (``None``: every window; see :mod:`genrekit.sampling`)
    processes : worker processes predicting, one model on one onnxruntime thread each (``None``: one
        per core); 1: predict in this process, ``workers`` threads at a time (so are a run with
        ``styles`` and a job of two files or fewer to predict)
    precision : the backbone's, ``"fp32"`` or ``"int8"`` (see :meth:`genrekit.Predictor.load`)

    Raises
    ------
    GenrekitError
        the model or an input cannot be found, an option is wrong, or the journal or state cannot be written
    """
    rules = rules or Rules()
    if per not in PER:
        raise GenrekitError(f"unknown --per '{per}'; choose one of: {', '.join(PER)}")
    if write and journal is None:
        raise GenrekitError("writing tags needs a journal: give one (genrekit tag --journal FILE)")
    if rules.write_styles and not styles:
        raise GenrekitError("--write-styles needs --styles")
    check_precision(precision)
    name, sha = model_identity(model, precision=precision)
    predictors: list[Predictor] = []

    def load() -> Predictor:  # only when some file needs predicting; threads share one
        if not predictors:
            from genrekit.predictor import Predictor

            p = Predictor.load(model, precision=precision)
            if styles:
                from genrekit.tagging.styles import check_styles

                check_styles(p)
            predictors.append(p)
        return predictors[0]

    summary = TagSummary()
    items = scan_inputs(inputs, ignored=summary.ignored)
    memory = State(state)
    log = Journal(journal) if write and journal is not None else None
    try:
        if styles and not predictors:
            load()  # fail before the first file when the model has no styles
        tracks = predicted_tracks(
            items,
            state=memory,
            load=_locked(load),
            sha=sha,
            workers=workers,
            styles=styles,
            patches=patches,
            model=model,
            processes=processes,
            precision=precision,
        )
        rows = _by_album(list(tracks)) if per == "album" else ((t, p, t.record) for t, p in tracks)
        for track, predicted, record in rows:
            if predicted and track.record is not None:
                memory.put(track.path, track.record)
            row = _apply(
                track,
                record,
                rules=rules,
                write=write,
                journal=log,
                model=name,
                sha=sha,
                state=memory,
                style_threshold=style_threshold,
            )
            summary.predicted += predicted
            summary.reused += track.record is not None and not predicted
            summary.count(row)
            if on_row is not None:
                on_row(row)
    finally:
        memory.close()
        if log is not None:
            log.close()
            if log.created and not log.changes:  # nothing was written: no journal to keep
                log.path.unlink(missing_ok=True)
    return summary


def _locked(load: Callable[[], Predictor]) -> Callable[[], Predictor]:
    import threading

    lock = threading.Lock()

    def locked() -> Predictor:
        with lock:
            return load()

    return locked


def _by_album(tracks: list[tuple[Track, bool]]) -> Iterator[tuple[Track, bool, Record | None]]:
    """Each track with its album's record in place of its own (the albums in order of first track)."""
    albums: dict[tuple, list[tuple[Track, bool]]] = {}
    for t in tracks:
        albums.setdefault(album_key(t[0]), []).append(t)
    for members in albums.values():
        records = [t.record for t, _ in members if t.record is not None]
        probs, why = album_probabilities(records)
        album = None
        if records:
            r0 = records[0]
            album = Record(0, 0, r0.model_sha256, probs or r0.probabilities, why)
            styles = [r.styles for r in records if r.styles is not None]
            if len(styles) == len(records):
                album.styles = {k: sum(s[k] for s in styles) / len(records) for k in styles[0]}
        for track, predicted in members:
            yield track, predicted, album


def _apply(
    track: Track,
    record: Record | None,
    *,
    rules: Rules,
    write: bool,
    journal: Journal | None,
    model: str,
    sha: str,
    state: State,
    style_threshold: float,
) -> TagRow:
    c = track.current
    row = TagRow(
        str(track.path), _first(c.get("artist")), _first(c.get("album")), _first(c.get("title")), _first(c.get("genre"))
    )
    if track.error is not None or record is None:
        row.action, row.reason = "error", track.error or "no prediction"
        return row
    label = record.label
    probability = record.probabilities[label] if label is not None else None
    style_list = styles_of(record, style_threshold) if record.styles is not None else None
    row.probability = probability
    row.styles = "; ".join(style_list or [])
    d: Decision = decide(
        current=c,
        label=label,
        probability=probability or 0.0,
        no_music=record.no_music,
        rules=rules,
        model=model,
        model_sha256=sha,
        styles=style_list,
    )
    row.genre_new, row.reason = d.genre or "", d.reason
    if d.action == "skip":
        row.action = "skipped"
    elif d.action == "unchanged":
        row.action = "unchanged"
    elif not write:
        row.action = "would write"
    else:
        try:
            write_tags(track.path, d.changes, journal=journal)
            state.refresh(track.path)
            row.action = "written"
        except GenrekitError as exc:
            row.action, row.reason = "error", str(exc)
    return row


def default_journal(*, folder: Path) -> Path:
    """A new journal's name in ``folder``: ``tag-<date>-<time>.jsonl``."""
    return folder / f"tag-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.jsonl"


def print_row(row: TagRow, *, file=None) -> None:
    """One file, as the terminal shows it: what it is, the genre it has, the one it gets, and why."""
    who = " – ".join(x for x in (row.artist, row.title) if x)
    now = row.genre_now or "(no genre)"
    new = f"{row.genre_new} {row.probability:.0%}" if row.genre_new and row.probability is not None else "-"
    reason = f" ({row.reason})" if row.reason else ""
    styles = f"\n    styles: {row.styles}" if row.styles else ""
    print(
        f"{row.path}{f'  [{who}]' if who else ''}\n    {now} -> {new}: {row.action}{reason}{styles}",
        file=file or sys.stdout,
    )
