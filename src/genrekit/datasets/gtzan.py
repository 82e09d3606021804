"""GTZAN (Tzanetakis & Cook 2002): 10 genres x 100 clips of 30 s.

Layouts recognised under a root folder:

- Kaggle audio: ``genres_original/<genre>/<genre>.NNNNN.wav`` (any audio extension)
- Kaggle images: ``images_original/<genre>/<genre>NNNNN.png`` (432x288 magma mel-spectrograms)
- original: ``genres/<genre>/<genre>.NNNNN.au``

Clip ids are ``<genre>.NNNNN`` in every layout, so audio, images and split lists line up.
"""

from __future__ import annotations

import re
from pathlib import Path

from genrekit.audio import is_audio_path
from genrekit.datasets import Track

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
AUDIO_DIRS = ("genres_original", "genres")
IMAGE_DIR = "images_original"
_IMAGE_NAME = re.compile(r"^([a-z]+?)(\d{5})\.png$")
_AUDIO_NAME = re.compile(r"^([a-z]+)\.(\d{5})$")


def is_gtzan(root: Path) -> bool:
    """True if ``root`` holds one of the GTZAN layouts."""
    return any((root / d).is_dir() for d in (*AUDIO_DIRS, IMAGE_DIR))


def audio_tracks(root: Path) -> list[Track]:
    """Audio clips of the first audio layout found under ``root``."""
    for d in AUDIO_DIRS:
        base = root / d
        if base.is_dir():
            return [
                Track(f.stem if _AUDIO_NAME.match(f.stem) else f"{g.name}/{f.stem}", g.name, f, "audio")
                for g in sorted(p for p in base.iterdir() if p.is_dir())
                for f in sorted(g.iterdir())
                if f.is_file() and is_audio_path(f)
            ]
    return []


def image_tracks(root: Path) -> list[Track]:
    """Kaggle spectrogram images under ``root/images_original`` (or ``root`` itself)."""
    base = root / IMAGE_DIR if (root / IMAGE_DIR).is_dir() else root
    found = []
    for g in sorted(p for p in base.iterdir() if p.is_dir()):
        for f in sorted(g.glob("*.png")):
            m = _IMAGE_NAME.match(f.name)
            found.append(Track(f"{m[1]}.{m[2]}" if m else f"{g.name}/{f.stem}", g.name, f, "image"))
    return found


def tracks(root: Path, *, input_kind: str = "auto") -> list[Track]:
    """Tracks of the requested kind (``auto``: audio if any, else images)."""
    if input_kind == "images":
        return image_tracks(root)
    found = audio_tracks(root)
    if input_kind == "auto" and not found and (root / IMAGE_DIR).is_dir():
        return image_tracks(root)
    return found
