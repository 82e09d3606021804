"""Track-level splits: every window of a clip stays on the side of its clip.

All functions return index arrays into the list of tracks, never into windows (the one
exception: the seed documents' own segment-level splits, which :mod:`genrekit.seed_protocols`
cuts over windows with the ``shares`` protocol to reproduce their leak).
:func:`make_split` is the one entry point: a protocol and a seed give the folds.
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


def random_split(
    labels: list[str] | np.ndarray, *, test_size: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random (train, test) split of tracks."""
    idx = np.arange(len(labels))
    try:
        train, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=labels)
    except ValueError as exc:  # each side needs a track of every class
        raise DatasetError(
            f"{len(labels)} tracks of {len(set(labels))} classes cannot be split with a test share of {test_size:g} "
            f"({exc}); add tracks, or change the test share"
        ) from None
    return np.sort(train), np.sort(test)


def stratified_shares(
    labels, *, shares: tuple[float, float, float], seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified (train, validation, test) cut of items by three shares, drawn with ``seed``.

    Each class (in sorted order) is permuted and cut: ``round(n * test share)`` items to test,
    ``round(n * validation share)`` to validation, the rest to train. The shares need not sum
    to 1 (they are normalised); a zero share gives an empty side.

    Examples
    --------
    >>> train, val, test = stratified_shares([0] * 10 + [1] * 10, shares=(0.8, 0.1, 0.1), seed=0)
    >>> len(train), len(val), len(test)
    (16, 2, 2)
    """
    labels = np.asarray(labels)
    idx = np.arange(len(labels))
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    total = sum(shares)
    for c in np.unique(labels):
        members = rng.permutation(idx[labels == c])
        n_test = round(len(members) * shares[2] / total)
        n_val = round(len(members) * shares[1] / total)
        parts[2].extend(members[:n_test])
        parts[1].extend(members[n_test : n_test + n_val])
        parts[0].extend(members[n_test + n_val :])
    train, val, test = (np.sort(np.array(p, dtype=np.int64)) for p in parts)
    return train, val, test


def check_tracks_per_class(labels: list[str] | np.ndarray, *, minimum: int, why: str) -> None:
    """Refuse data with a class of fewer than ``minimum`` tracks, naming it (``why``: what needs them).

    Raises
    ------
    DatasetError
        the smallest class has fewer than ``minimum`` tracks
    """
    names, counts = np.unique(labels, return_counts=True)
    if not len(counts):
        raise DatasetError("the data holds no track")
    smallest = int(np.argmin(counts))
    if counts[smallest] < minimum:
        few = [f"'{n}' ({c})" for n, c in zip(names, counts) if c < minimum]
        raise DatasetError(
            f"class '{names[smallest]}' has {counts[smallest]} track(s); {why} needs at least {minimum} tracks per class "
            f"(too few: {', '.join(few[:10])}{' ...' if len(few) > 10 else ''}): add tracks, or use another --split"
        )


def kfold(labels: list[str] | np.ndarray, *, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (train, test) splits of tracks."""
    check_tracks_per_class(labels, minimum=k, why=f"{k}-fold cross-validation")
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


PROTOCOLS = ("random", "kfold", "filtered", "none", "shares")


@dataclass
class Fold:
    """One train/test split (validation is carved from the training side; empty when none is)."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass
class Split:
    """The folds of a protocol, and notes such as listed clips missing from the data."""

    protocol: str
    folds: list[Fold]
    notes: dict = field(default_factory=dict)


def carve_validation(
    train_idx: np.ndarray, y: np.ndarray, *, fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split a training side into (fit, validation), stratified, at track level (no validation: empty)."""
    if fraction <= 0:
        return train_idx, np.zeros(0, dtype=np.int64)
    labels = list(y[train_idx])
    n_classes, n = len(set(labels)), len(labels)
    n_val = max(round(fraction * n), n_classes)
    if n_val >= n - n_classes:  # too few tracks to stratify both sides
        order = np.random.default_rng(seed).permutation(n)
        n_val = max(1, round(fraction * n))
        return np.sort(train_idx[order[n_val:]]), np.sort(train_idx[order[:n_val]])
    fit, val = random_split(labels, test_size=n_val, seed=seed)
    return train_idx[fit], train_idx[val]


def make_split(
    protocol: str,
    *,
    ids: list[str],
    labels: list[str] | np.ndarray,
    seed: int = 0,
    folds: int = 5,
    test_size: float = 0.2,
    val_fraction: float = 0.1,
    splits_dir: str | os.PathLike | None = None,
    shares: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> Split:
    """The track-level folds of an evaluation protocol.

    Parameters
    ----------
    protocol : ``random`` (one stratified ``1 - test_size`` / ``test_size`` split drawn with
        ``seed``), ``kfold`` (``folds`` stratified folds shuffled with ``seed``), ``filtered``
        (the train/valid/test list files in ``splits_dir``), ``none`` (every track trains) or
        ``shares`` (one stratified train/validation/test cut by ``shares``, drawn with ``seed``:
        :func:`stratified_shares`; the seed documents' protocols)
    ids, labels : track ids and labels, in the order of the dataset
    seed : draws the split and the validation share
    val_fraction : share of the training side held out for early stopping (``filtered`` uses its
        own valid list, ``shares`` its middle share)
    shares : train, validation and test shares of the ``shares`` protocol

    Raises
    ------
    DatasetError
        unknown protocol, too few tracks per class, or lists that match no track
    """
    y = np.unique(labels, return_inverse=True)[1]
    held = 1 if val_fraction > 0 else 0  # a validation track per class, to stop early on
    if protocol == "random":
        check_tracks_per_class(
            labels, minimum=2 + held, why="a random split (train" + (", validation" if held else "") + " and test)"
        )
        tr, te = random_split(labels, test_size=test_size, seed=seed)
        fit, val = carve_validation(tr, y, fraction=val_fraction, seed=seed)
        return Split(protocol, [Fold(f"seed{seed}", fit, val, te)])
    if protocol == "kfold":
        out = []
        for k, (tr, te) in enumerate(kfold(labels, k=folds, seed=seed)):
            fit, val = carve_validation(tr, y, fraction=val_fraction, seed=seed + k)
            out.append(Fold(f"fold{k}", fit, val, te))
        return Split(protocol, out)
    if protocol == "filtered":
        if splits_dir is None:
            raise DatasetError("the filtered protocol needs --splits-dir (the folder of *_filtered.txt lists)")
        if not Path(splits_dir).is_dir():
            raise DatasetError(
                f"the fault-filtered split lists were not found at '{splits_dir}'; give the folder of "
                "train/valid/test_filtered.txt (--splits-dir)"
            )
        lists = list_split(ids, splits_dir)
        if not all(len(lists.parts[p]) for p in ("train", "test")):
            raise DatasetError(f"the split lists in '{splits_dir}' match no train or test track of the data")
        notes = {"missing_ids": lists.missing, "not_in_any_list": len(lists.unlisted)}
        return Split(
            protocol, [Fold("filtered", lists.parts["train"], lists.parts["valid"], lists.parts["test"])], notes
        )
    if protocol == "none":
        check_tracks_per_class(labels, minimum=1 + held, why="training" + (" with a validation share" if held else ""))
        fit, val = carve_validation(np.arange(len(ids)), y, fraction=val_fraction, seed=seed)
        return Split(protocol, [Fold("all", fit, val, np.zeros(0, dtype=np.int64))])
    if protocol == "shares":
        fit, val, test = stratified_shares(labels, shares=shares, seed=seed)
        return Split(protocol, [Fold(f"seed{seed}", fit, val, test)])
    raise DatasetError(f"unknown protocol '{protocol}'; use one of: {', '.join(PROTOCOLS)}")
