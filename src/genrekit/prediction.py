"""The result of a prediction: a song's genre probabilities and its timeline of windows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Segment:
    """One window of the timeline."""

    start_s: float
    end_s: float
    probabilities: dict[str, float]

    @property
    def label(self) -> str:
        """The most probable genre of this window."""
        return max(self.probabilities, key=lambda genre: self.probabilities[genre])


@dataclass
class Prediction:
    """The genres of one input: ``probabilities`` (summing to 1) and a timeline of windows.

    ``no_music`` names why there is nothing to classify (silence, noise, too short, not audio);
    then :attr:`genre` is ``None`` whatever the probabilities say. ``confident`` tells whether the
    top genre is probable enough to be taken at its word. ``truncated`` tells that the file ended
    clearly before the ``declared_s`` seconds its header says: ``duration_s`` is what it holds.
    ``sampled`` is (windows analysed, windows of the song) when only some were (see :attr:`analysed`).
    ``tags`` holds the file's ``artist``, ``album`` and ``title`` when they were read (``""`` when
    the file has none); ``styles`` the musicnn MSD tags' probabilities when they were asked for.
    """

    path: str
    duration_s: float
    probabilities: dict[str, float]
    timeline: list[Segment]
    model: str
    seconds: float = 0.0
    no_music: str | None = None
    confident: bool = True
    truncated: bool = False
    declared_s: float | None = None
    sampled: tuple[int, int] | None = None
    tags: dict[str, str] | None = None
    styles: dict[str, float] | None = None

    @property
    def analysed(self) -> str:
        """Which windows the probabilities are the mean of: ``"8 of 60 windows"`` when the song was
        sampled (``timeline`` then holds only those), else ``"all 60 windows"``."""
        if self.sampled is not None:
            return f"{self.sampled[0]} of {self.sampled[1]} windows"
        n = len(self.timeline)
        return f"all {n} windows" if n != 1 else "1 window"

    @property
    def top(self) -> list[tuple[str, float]]:
        """Every genre with its probability, most probable first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])

    @property
    def music_detected(self) -> bool:
        return self.no_music is None

    @property
    def genre(self) -> str | None:
        """The most probable genre, or ``None`` when no music was detected."""
        return self.top[0][0] if self.music_detected else None

    def to_dict(self, *, top_k: int = 3, windows: bool = True) -> dict[str, Any]:
        """The JSON object of this prediction (:func:`genrekit.schema.prediction_json`)."""
        from genrekit.schema import prediction_json

        return prediction_json(self, top_k=top_k, windows=windows)
