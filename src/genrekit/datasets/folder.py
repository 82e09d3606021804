"""Any folder of ``<label>/<audio files>``: the label is the name of the sub-folder."""

from __future__ import annotations

from pathlib import Path

from genrekit.audio import is_audio_path
from genrekit.datasets import Track


def tracks(root: Path) -> list[Track]:
    """Audio files one level below ``root``, labelled by their folder (hidden entries skipped)."""
    found = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(label_dir.rglob("*")):
            if f.is_file() and is_audio_path(f) and not f.name.startswith("."):
                rel = f.relative_to(label_dir).with_suffix("")
                found.append(Track(f"{label_dir.name}/{rel.as_posix()}", label_dir.name, f, "audio"))
    return found
