"""One file tagged, whichever engine runs it: :func:`tag_file` (the per-file guard) and the run's
:class:`LibrarySummary`.

Both engines, the local one (:mod:`genrekit.tagging.local`) and Ray's
(:mod:`genrekit.tagging.ray_engine`), call :func:`tag_file` for every item, so that a problem
item, a file that cannot be decoded and an unexpected exception all become the same error
result, and a batch never dies on one input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from genrekit.errors import GenrekitError

if TYPE_CHECKING:
    from genrekit.predictor import Prediction, Predictor
    from genrekit.tagging.scan import LibraryItem

DEFAULT_MAX_DURATION = 2 * 3600.0
# library tagging analyses this many windows spread over each song, more in stages while its top genre is not
# settled (genrekit.sampling; benchmarks/results/tagging_speed.md: of the first stages whose top genre agrees with
# the full analysis on >= 97 % of the joined songs, the one of least CPU per song)
DEFAULT_PATCHES = 4
DEFAULT_FILE_TIMEOUT = 600.0


@dataclass(frozen=True)
class Limits:
    """``max_duration``: seconds, a longer file is an error; ``timeout_s``: seconds, a file taking
    longer to decode and predict is an error (``None``: no limit); ``patches``: analyse this many
    windows spread over each song, decoding only them (``None``: every window; see
    :meth:`genrekit.Predictor.predict_file`)."""

    max_duration: float | None = DEFAULT_MAX_DURATION
    timeout_s: float | None = DEFAULT_FILE_TIMEOUT
    patches: int | None = None


@dataclass
class LibrarySummary:
    """What a run did: files ``done``, ``failed`` (with their ``errors``), ``skipped`` (already in the
    output) and ``retried`` (failed in an earlier run, tried again)."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    def count(self, path: str, result) -> None:
        """Count one file's result (a prediction, or an exception)."""
        if isinstance(result, Exception):
            self.failed += 1
            self.errors[path] = str(result)
        else:
            self.done += 1

    def line(self, output: Path | None) -> str:
        """One line for the terminal."""
        text = f"done {self.done}"
        if self.skipped:
            text += f", skipped {self.skipped} (already in '{output}')"
        text += f", failed {self.failed}" + (
            f" ({self.retried} of the files that had failed retried)" if self.retried else ""
        )
        return text + (f"; results in '{output}'" if output is not None and not self.skipped else "")


def tag_file(
    predictor: Predictor,
    item: LibraryItem,
    *,
    limits: Limits,
    on_decoded: Callable[[float], None] | None = None,
    styles: bool = False,
) -> Prediction | GenrekitError:
    """The prediction of one item, with its artist, album and title read from its tags
    (:attr:`Prediction.tags`), or the error that says why there is none (never raised).

    Parameters
    ----------
    predictor : the loaded model
    item : the file, with its ``problem`` when the scan found one
    limits : the duration and time limits of one file
    on_decoded : called with the seconds of audio as they are decoded (progress)
    styles : also the musicnn MSD tags (:attr:`Prediction.styles`), in the same pass
    """
    from genrekit.tagging.containers import read_names

    if item.problem is not None:
        return GenrekitError(item.problem)
    try:
        prediction = predictor.predict_file(
            item.path,
            on_decoded=on_decoded,
            max_duration=limits.max_duration,
            timeout_s=limits.timeout_s,
            styles=styles,
            patches=limits.patches,
        )
        prediction.tags = read_names(item.path)
        return prediction
    except GenrekitError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - one file must never end the batch
        reason = f"{type(exc).__name__}: {exc}"
        return GenrekitError(f"'{item.path}' could not be tagged ({reason}); please report this bug")
