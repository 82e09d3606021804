"""The files of a ``genrekit tag`` run with their tags and predictions, in order: the files already
predicted for this model come from the state (:mod:`genrekit.tagging.state`), the others are predicted
in worker processes (:mod:`genrekit.workers`) or, for a small job or with styles, in this process's threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from genrekit.errors import GenrekitError
from genrekit.precision import DEFAULT_PRECISION
from genrekit.tagging.containers import open_tags
from genrekit.tagging.state import Record, State, file_key
from genrekit.workers import pool_size

if TYPE_CHECKING:
    from genrekit.predictor import Predictor

__all__ = ["Track", "predict_record", "predicted_tracks"]


@dataclass
class Track:
    """One file of the run: its tags, its prediction (or why it has none)."""

    path: Path
    current: dict[str, list[str]] = field(default_factory=dict)
    record: Record | None = None
    error: str | None = None
    key: tuple[int, int] | None = None  # size and mtime before predicting


def predict_record(predictor: Predictor, path: Path, sha: str, styles: bool, patches: int | None = None) -> Record:
    """The prediction of one file as a :class:`Record` (with its style probabilities when ``styles``),
    by :func:`~genrekit.tagging.core.tag_file` as ``genrekit predict`` makes it (the same limits).

    Raises
    ------
    GenrekitError
        the file cannot be predicted (the error :func:`~genrekit.tagging.core.tag_file` gives)
    """
    from genrekit.tagging.core import Limits, tag_file
    from genrekit.tagging.scan import LibraryItem

    size, mtime = file_key(path)
    p = tag_file(predictor, LibraryItem(path), limits=Limits(patches=patches), styles=styles)
    if isinstance(p, Exception):
        raise p
    return Record(size, mtime, sha, p.probabilities, p.no_music, p.styles if styles else None)


def predicted_tracks(
    items,
    *,
    state: State,
    load: Callable[[], Predictor],
    sha: str,
    workers: int,
    styles: bool,
    patches: int | None = None,
    model: str | os.PathLike | None = None,
    processes: int | None = None,
    precision: str = DEFAULT_PRECISION,
) -> Iterator[tuple[Track, bool]]:
    """Each input with its tags and prediction (or error), in order, and whether it was predicted now:
    in worker processes (:mod:`genrekit.workers`) unless :func:`~genrekit.workers.pool_size` says
    this process, or styles are asked for (they are computed in this process's pass)."""

    def read(item) -> Track:
        track = Track(item.path)
        if item.problem is not None:
            track.error = item.problem
            return track
        try:
            track.current = open_tags(item.path).read()
            track.record = state.get(item.path, sha, styles=styles)
            track.key = file_key(item.path)
        except GenrekitError as exc:
            track.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one file must never end the batch
            track.error = f"'{item.path}' could not be tagged ({type(exc).__name__}: {exc}); please report this bug"
        return track

    def predicted(track: Track) -> tuple[Track, bool]:
        if track.error is not None or track.record is not None:
            return track, False
        try:
            track.record = predict_record(load(), track.path, sha, styles, patches)
            return track, True
        except GenrekitError as exc:
            track.error = str(exc)
        return track, False

    tracks = [read(item) for item in items]  # tags and state only: quick
    todo = [t for t in tracks if t.error is None and t.record is None]
    n = 1 if styles else pool_size(processes, files=len(todo))
    if n > 1:
        yield from _pool_tracks(tracks, todo, model=model, processes=n, sha=sha, patches=patches, precision=precision)
        return
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        yield from pool.map(predicted, tracks)


def _pool_tracks(
    tracks: list[Track],
    todo: list[Track],
    *,
    model,
    processes: int,
    sha: str,
    patches: int | None,
    precision: str,
) -> Iterator[tuple[Track, bool]]:
    """``tracks`` in order, those of ``todo`` predicted by ``processes`` worker processes."""
    from genrekit.tagging.core import Limits
    from genrekit.workers import predict_files

    limits = Limits(patches=patches)
    results = predict_files(
        [t.path for t in todo],
        model=model,
        precision=precision,
        workers=processes,
        patches=patches,
        max_duration=limits.max_duration,
        timeout_s=limits.timeout_s,
    )
    waiting = {id(t) for t in todo}
    for track in tracks:
        if id(track) not in waiting:
            yield track, False
            continue
        _, p = next(results)
        if isinstance(p, Exception):
            track.error = str(p)
            yield track, False
        else:
            assert track.key is not None  # read() keeps the key of every track left to predict
            track.record = Record(*track.key, sha, p.probabilities, p.no_music, None)
            yield track, True
