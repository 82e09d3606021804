"""Track-level splits: every window of a clip stays on the side of its clip.

All functions return index arrays into the list of tracks, never into windows.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from genrekit.audio import is_audio_path
from genrekit.datasets import DatasetError

_GTZAN_ID = re.compile(r"^[a-z]+\.\d{5}$")


def random_split(labels: list[str], *, test_size: float | int = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random (train, test) split of tracks."""
    idx = np.arange(len(labels))
    train, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=labels)
    return np.sort(train), np.sort(test)


def kfold(labels: list[str], *, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (train, test) splits of tracks."""
    counts = np.unique(labels, return_counts=True)[1]
    if counts.min() < k:
        raise DatasetError(f"{k}-fold cross-validation needs at least {k} tracks per class; the smallest has {counts.min()}")
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in skf.split(np.zeros(len(labels)), labels)]


@dataclass
class ListSplit:
    """A split read from list files; ``missing`` names listed clips absent from the data."""

    parts: dict[str, np.ndarray]
    missing: dict[str, list[str]] = field(default_factory=dict)
    unlisted: list[str] = field(default_factory=list)


def clip_id(line: str) -> str:
    """Track id of a split-list line: ``blues/blues.00012.wav`` → ``blues.00012`` (GTZAN names),
    ``bass/bass_00.wav`` → ``bass/bass_00`` (ids of ``<label>/<file>`` datasets)."""
    path = line.strip().replace("\\", "/")
    stem = path.rsplit(".", 1)[0] if is_audio_path(path) or path.endswith(".png") else path
    name = stem.split("/")[-1]
    return name if _GTZAN_ID.match(name) else stem


def list_split(track_ids: list[str], split_dir: str | os.PathLike, *, parts=("train", "valid", "test")) -> ListSplit:
    """Split tracks by the list files ``<part>_filtered.txt`` (or ``<part>.txt``) in ``split_dir``.

    Used for the fault-filtered, artist-conscious GTZAN split of Kereliuk, Sturm & Larsen (2015).
    Clips listed but absent from ``track_ids`` are reported in ``missing``, not fatal.
    """
    split_dir = Path(split_dir)
    position = {t: i for i, t in enumerate(track_ids)}
    result = ListSplit(parts={})
    listed = set()
    for part in parts:
        path = next((p for p in (split_dir / f"{part}_filtered.txt", split_dir / f"{part}.txt") if p.exists()), None)
        if path is None:
            raise DatasetError(f"split list for '{part}' not found in '{split_dir}' (expected {part}_filtered.txt)")
        ids = [clip_id(line) for line in path.read_text().splitlines() if line.strip()]
        listed.update(ids)
        result.parts[part] = np.array(sorted(position[i] for i in ids if i in position), dtype=np.int64)
        result.missing[part] = [i for i in ids if i not in position]
    result.unlisted = [t for t in track_ids if t not in listed]
    return result
