"""Datasets: lists of labelled tracks, one module per layout.

A dataset is a list of :class:`Track`; features come from :func:`genrekit.datasets.cache.load_features`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from genrekit.errors import GenrekitError


@dataclass(frozen=True)
class Track:
    """One labelled clip: audio file or Kaggle spectrogram image."""

    id: str
    label: str
    path: Path
    kind: str  # "audio" or "image"


class DatasetError(GenrekitError):
    """A dataset path is wrong or holds nothing usable."""


def load_dataset(path: str | os.PathLike, *, input_kind: str = "auto") -> list[Track]:
    """Find the tracks under ``path``, recognising the layout.

    Parameters
    ----------
    path : a GTZAN root (Kaggle layout with ``genres_original/`` and/or ``images_original/``, or
        the original ``genres/`` layout), or any folder of ``<label>/<audio files>``
    input_kind : ``"audio"``, ``"images"`` or ``"auto"`` (audio when present, else images)

    Raises
    ------
    DatasetError
        the path does not exist or holds no tracks
    """
    from genrekit.datasets import folder, gtzan

    root = Path(path)
    if not root.exists():
        raise DatasetError(f"dataset folder '{root}' does not exist; give the folder that holds the genre folders")
    if not root.is_dir():
        raise DatasetError(f"'{root}' is a file; give the folder that holds the genre folders")
    if input_kind not in ("auto", "audio", "images"):
        raise DatasetError(f"unknown input kind '{input_kind}'; use audio, images or auto")
    if gtzan.is_gtzan(root):
        tracks = gtzan.tracks(root, input_kind=input_kind)
    elif input_kind == "images":
        tracks = gtzan.image_tracks(root)
    else:
        tracks = folder.tracks(root)
    if not tracks:
        raise DatasetError(
            f"no {'' if input_kind == 'auto' else input_kind + ' '}tracks found under '{root}'; expected "
            "<label>/<audio file> folders, or a GTZAN copy (genres_original/, images_original/ or genres/)"
        )
    return tracks
