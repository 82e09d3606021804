"""What to write into one file: the genre names users see, and the rules of ``genrekit tag``.

- nothing below ``min_confidence``, and nothing for a file with no music;
- ``keep`` (default) writes only files without a genre, ``replace`` sets the genre, ``add`` adds
  it to the genres there (every supported format holds several values);
- a genre genrekit wrote itself (it matches the ``GENREKIT_GENRE`` field) is genrekit's to
  change: ``keep`` updates it, ``add`` replaces it rather than piling up one genre per run;
- beside the genre go genrekit's own fields: the genre it wrote, the probability, the model's
  name and its SHA-256.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from genrekit.errors import GenrekitError

MODES = ("keep", "replace", "add")
DEFAULT_MIN_CONFIDENCE = 0.5
# the GTZAN labels as tag values (ID3v1's spellings, which players and beets know)
DEFAULT_GENRE_NAMES = {
    "blues": "Blues",
    "classical": "Classical",
    "country": "Country",
    "disco": "Disco",
    "hiphop": "Hip-Hop",
    "jazz": "Jazz",
    "metal": "Metal",
    "pop": "Pop",
    "reggae": "Reggae",
    "rock": "Rock",
}


@dataclass(frozen=True)
class GenreMap:
    """Model label -> genre name written into files; a label not in ``names`` is written as it is."""

    names: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_GENRE_NAMES))

    def __call__(self, label: str) -> str:
        return self.names.get(label, label)

    @classmethod
    def load(cls, path: str | os.PathLike | None) -> GenreMap:
        """The default names, changed by a file: a JSON object ``{"hiphop": "Hip Hop"}``, or lines
        ``hiphop = Hip Hop`` (``#`` starts a comment). ``None``: the default names.

        Raises
        ------
        GenrekitError
            the file cannot be read, or a line or value is not a label and a name
        """
        if path is None:
            return cls()
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise GenrekitError(f"cannot read the genre map '{path}' ({exc.strerror})") from None
        if path.suffix.lower() == ".json":
            try:
                given = json.loads(text)
            except json.JSONDecodeError as exc:
                raise GenrekitError(f"the genre map '{path}' is not JSON ({exc})") from None
            if not isinstance(given, dict) or not all(isinstance(v, str) and v.strip() for v in given.values()):
                raise GenrekitError(f"the genre map '{path}' must be an object of label: name (names not empty)")
        else:
            given = {}
            for n, line in enumerate(text.splitlines(), start=1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                label, sep, name = (s.strip() for s in line.partition("="))
                if not sep or not label or not name:
                    raise GenrekitError(f"line {n} of the genre map '{path}' is not 'label = Genre name'")
                given[label] = name
        return cls({**DEFAULT_GENRE_NAMES, **{k.strip(): v.strip() for k, v in given.items()}})


@dataclass(frozen=True)
class Rules:
    """How ``genrekit tag`` decides: see the module doc."""

    mode: str = "keep"
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    genre_map: GenreMap = field(default_factory=GenreMap)
    write_styles: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise GenrekitError(f"unknown --mode '{self.mode}'; choose one of: {', '.join(MODES)}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise GenrekitError(f"--min-confidence {self.min_confidence} is not a probability: give 0..1")


@dataclass
class Decision:
    """``action``: ``write`` (with ``changes``), ``skip`` (with ``reason``) or ``unchanged``."""

    action: str
    genre: str | None = None  # the genre name it gets (or would get)
    reason: str = ""
    changes: dict[str, list[str] | None] = field(default_factory=dict)


def decide(
    *,
    current: dict[str, list[str]],
    label: str | None,
    probability: float,
    no_music: str | None,
    rules: Rules,
    model: str,
    model_sha256: str,
    styles: list[str] | None = None,
) -> Decision:
    """What the rules write into a file whose tags are ``current`` (logical fields, see
    :mod:`genrekit.tagging.containers`), given its (or its album's) prediction."""
    if no_music is not None or label is None:
        return Decision("skip", reason=f"no music detected ({no_music})")
    name = rules.genre_map(label)
    if probability < rules.min_confidence:
        return Decision(
            "skip", name, f"probability {probability:.2f} is below --min-confidence {rules.min_confidence:g}"
        )
    genres = current.get("genre", [])
    ours = set(current.get("genrekit_genre", []))
    theirs = [g for g in genres if g not in ours]  # the genres someone else set
    if rules.mode == "keep" and theirs:
        return Decision("skip", name, "has a genre already, kept (--mode replace or add changes it)")
    if rules.mode == "add":
        new = theirs if name in theirs else [*theirs, name]
    else:
        new = [name]
    changes: dict[str, list[str] | None] = {
        "genre": new,
        "genrekit_genre": [name],
        "genrekit_probability": [f"{probability:.4f}"],
        "genrekit_model": [model],
        "genrekit_model_sha256": [model_sha256],
    }
    if rules.write_styles and styles is not None:
        changes["style"] = styles or None
    if all((current.get(f) or None) == (v or None) for f, v in changes.items()):
        return Decision("unchanged", name, "already tagged so")
    return Decision("write", name, changes=changes)
