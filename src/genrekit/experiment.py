"""Experiments: data → split → fit → evaluate → report. The CLI and the benchmarks run these.

One run: :func:`prepare` the data, :func:`protocol_folds` (or :func:`genrekit.splits.make_split`),
:func:`fit`, :func:`evaluate`, or all of it with :func:`train_and_report`; :func:`select_tracks`
picks what ``genrekit evaluate`` measures. Several runs, summarised as mean ± sd in the one ``compare.json``
schema: :mod:`genrekit.comparison`.
"""

from __future__ import annotations

import csv
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genrekit import __version__
from genrekit.checkpoint import Checkpoint
from genrekit.datasets import DatasetError, Track, load_dataset
from genrekit.datasets.cache import load_features
from genrekit.errors import GenrekitError
from genrekit.evaluate import evaluate_tracks
from genrekit.features import DEFAULT_KIND, FeatureConfig, make_feature_config
from genrekit.inference import Classifier
from genrekit.models import DEFAULT_MODEL, build_model
from genrekit.plots import confusion_png, curves_png
from genrekit.splits import Fold, clip_id, make_split
from genrekit.train import TrainConfig, TrainResult, seeded, train


@dataclass
class Data:
    """Features of a dataset's readable tracks, with integer labels."""

    path: Path
    tracks: list[Track]
    features: list[np.ndarray]
    y: np.ndarray
    labels: list[str]
    feature_config: FeatureConfig
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.tracks]

    @property
    def track_labels(self) -> list[str]:
        return [self.labels[i] for i in self.y]


def prepare(
    path: str | os.PathLike,
    *,
    input_kind: str = "auto",
    feature_config: FeatureConfig | None = None,
    labels: list[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Data:
    """Load a dataset and its features.

    Without ``feature_config``, image datasets get ``kaggle-image`` features and audio the
    default kind. ``labels`` fixes the class order (e.g. a checkpoint's); tracks of other labels
    are left out.

    Raises
    ------
    DatasetError
        no readable track, or images for features that are computed from audio
    """
    tracks = load_dataset(path, input_kind=input_kind)
    images = tracks[0].kind == "image"
    config = feature_config or make_feature_config("kaggle-image" if images else DEFAULT_KIND)
    if images and not config.reads_images:
        raise DatasetError(
            f"the tracks under '{path}' are spectrogram images, but these {config.kind} features are computed "
            "from audio; use --input audio, or a model trained on kaggle-image features"
        )
    fs = load_features(tracks, config, cache_dir=cache_dir, progress=progress)
    if not fs.tracks:
        raise DatasetError(f"none of the {len(tracks)} tracks under '{path}' could be read")
    names = labels or sorted({t.label for t in fs.tracks})
    keep = [i for i, t in enumerate(fs.tracks) if t.label in names]
    if not keep:
        raise DatasetError(f"no track under '{path}' has one of the labels {names}")
    return Data(
        Path(path),
        [fs.tracks[i] for i in keep],
        [fs.features[i] for i in keep],
        np.array([names.index(fs.tracks[i].label) for i in keep]),
        names,
        config,
        fs.failed,
    )


def fit(
    data: Data,
    fold: Fold,
    *,
    model: str = DEFAULT_MODEL,
    model_params: dict | None = None,
    config: TrainConfig | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    metadata: dict | None = None,
) -> tuple[Checkpoint, TrainResult]:
    """Build the registered ``model``, train it on ``fold.train`` (early stopping on ``fold.val``)
    and wrap the result as a checkpoint that records the ids of every side."""
    config = config or TrainConfig()
    params = dict(model_params or {})
    f = data.feature_config
    with seeded(config.seed):  # the initial weights follow the seed too
        net = build_model(model, n_classes=len(data.labels), input_shape=(f.n_bins, f.segment_frames), **params)
    result = train(
        net,
        data.features,
        data.y,
        f,
        train_idx=fold.train,
        val_idx=fold.val,
        config=config,
        device=device,
        progress=progress,
        desc=f"{model} {fold.name} seed {config.seed}",
    )
    ids = data.ids
    split: dict[str, np.ndarray] = {
        "train": fold.train,
        "val": fold.val,
        "test": fold.test,
    }
    ckpt = Checkpoint(
        model_name=model,
        model_params=params,
        labels=data.labels,
        feature_config=f,
        state_dict={k: v.cpu() for k, v in result.model.state_dict().items()},
        split={k: [ids[i] for i in v] for k, v in split.items()},
        metadata={
            "genrekit_version": __version__,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "train_config": config.to_dict(),
            "fold": fold.name,
            "data": str(data.path),
            "input_kind": data.tracks[0].kind,
            "n_train_tracks": len(fold.train),
            "n_val_tracks": len(fold.val),
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "train_seconds": round(result.seconds, 1),
            "history": result.history,
            **(metadata or {}),
        },
    )
    return ckpt, result


def evaluate(ckpt: Checkpoint, data: Data, idx: np.ndarray, *, allow_seen: bool = False) -> dict:
    """Segment- and track-level report of a checkpoint on tracks ``idx`` of ``data``.

    Raises
    ------
    GenrekitError
        some of the tracks were in the checkpoint's training or validation side (unless
        ``allow_seen``, which warns instead), or the data's features are not the model's
    """
    if data.feature_config.matrix_key() != ckpt.feature_config.matrix_key():
        raise GenrekitError(
            f"the data's features ({data.feature_config.kind}) are not the ones this model was trained on "
            f"({ckpt.feature_config.kind}); prepare the data with the checkpoint's feature config"
        )
    seen = sorted(ckpt.seen_ids.intersection(data.ids[i] for i in idx))
    if seen:
        listing = ", ".join(seen[:5]) + (" ..." if len(seen) > 5 else "")
        message = f"{len(seen)} of the {len(idx)} tracks evaluated were used to train this model ({listing})"
        if not allow_seen:
            raise GenrekitError(
                message + "; evaluate on tracks it was not trained on (--subset test, --split-file or other data), "
                "or pass --allow-seen to measure anyway"
            )
        warnings.warn(message + ": the figures below are NOT an evaluation of unseen data", stacklevel=2)
    classifier = Classifier(ckpt.build(), data.feature_config, data.labels)
    rep = evaluate_tracks(classifier, [data.features[i] for i in idx], data.y[idx])
    probs = rep.pop("track_probabilities")
    rep["tracks"] = [
        {
            "id": data.tracks[i].id,
            "true": data.labels[data.y[i]],
            "predicted": data.labels[int(p.argmax())],
            "confidence": round(float(p.max()), 4),
        }
        for i, p in zip(idx, probs)
    ]
    rep["model"] = ckpt.model_name
    rep["labels"] = data.labels
    rep["seen_tracks_evaluated"] = len(seen)
    rep["skipped_unreadable"] = data.failed
    return rep


def write_report(
    report: dict, out_dir: str | os.PathLike, *, history: list[dict] | None = None, title: str = ""
) -> Path:
    """Write ``report.json``, per-genre and confusion CSVs, confusion and curve PNGs into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    labels = report["labels"]
    for level in ("track", "segment"):
        m = report[level]
        with open(out / f"confusion_{level}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["true\\predicted", *labels])
            w.writerows([[labels[i], *row] for i, row in enumerate(m["confusion"])])
        confusion_png(
            m["confusion"],
            labels,
            out / f"confusion_{level}.png",
            title=f"{title} {level} level: acc {m['accuracy']:.3f}, balanced {m['balanced_accuracy']:.3f}".strip(),
        )
    with open(out / "per_genre.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["genre", "precision", "recall", "f1", "support"])
        for g, v in report["track"]["per_class"].items():
            w.writerow([g, f"{v['precision']:.4f}", f"{v['recall']:.4f}", f"{v['f1']:.4f}", v["support"]])
    if history:
        curves_png(history, out / "curves.png", title=title)
    return out


def protocol_folds(
    data: Data,
    protocol: str,
    *,
    seed: int = 0,
    seeds: int = 1,
    folds: int = 5,
    test_size: float = 0.2,
    val_fraction: float = 0.1,
    splits_dir: str | os.PathLike | None = None,
) -> tuple[list[Fold], list[str]]:
    """The folds of a :func:`~genrekit.splits.make_split` protocol (``random``: one split per seed
    ``seed`` … ``seed + seeds - 1``), and notes on listed clips that the data lacks.

    ``splits_dir`` defaults to ``<data>/splits`` where that folder exists.
    """
    if splits_dir is None and (data.path / "splits").is_dir():
        splits_dir = data.path / "splits"
    out, notes = [], []
    for s in range(seed, seed + (seeds if protocol == "random" else 1)):
        split = make_split(
            protocol,
            ids=data.ids,
            labels=data.track_labels,
            seed=s,
            folds=folds,
            test_size=test_size,
            val_fraction=val_fraction,
            splits_dir=splits_dir,
        )
        out.extend(split.folds)
        for part, missing in split.notes.get("missing_ids", {}).items():
            if missing:
                notes.append(
                    f"{len(missing)} clip(s) of the {part} list are not in the data: {', '.join(missing[:5])}"
                    + (" ..." if len(missing) > 5 else "")
                )
    return out, notes


@dataclass
class Trained:
    """What :func:`train_and_report` made: the saved checkpoint, its training and its test report
    (``None`` without test tracks), and where each went."""

    checkpoint: Checkpoint
    result: TrainResult
    report: dict | None
    model_path: Path
    report_dir: Path | None
    curves_path: Path


def train_and_report(
    data: Data,
    fold: Fold,
    out_dir: str | os.PathLike,
    *,
    model: str = DEFAULT_MODEL,
    model_params: dict | None = None,
    config: TrainConfig | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    metadata: dict | None = None,
) -> Trained:
    """:func:`fit` on ``fold``, :func:`evaluate` on its test tracks (recorded in the checkpoint's
    ``accuracy``), save ``model.pt`` and the report folder ``report/`` in ``out_dir``; without
    test tracks, the training curves as ``curves.png`` instead."""
    ckpt, result = fit(
        data,
        fold,
        model=model,
        model_params=model_params,
        config=config,
        device=device,
        progress=progress,
        metadata=metadata,
    )
    out = Path(out_dir)
    report = evaluate(ckpt, data, fold.test) if len(fold.test) else None
    if report is not None:
        ckpt.metadata["accuracy"] = {
            "track_accuracy": report["track"]["accuracy"],
            "track_balanced_accuracy": report["track"]["balanced_accuracy"],
            "n_test_tracks": len(fold.test),
        }
    path = ckpt.save(out / "model.pt")
    if report is None:
        curves_png(result.history, out / "curves.png", title=model)
        return Trained(ckpt, result, None, path, None, out / "curves.png")
    report_dir = write_report(report, out / "report", history=result.history, title=model)
    return Trained(ckpt, result, report, path, report_dir, report_dir / "curves.png")


def select_tracks(
    data: Data,
    ckpt: Checkpoint,
    *,
    subset: str = "test",
    split_file: str | os.PathLike | None = None,
    checkpoint_name: str = "the model",
) -> tuple[np.ndarray, list[str]]:
    """Indices of the tracks of ``data`` to evaluate ``ckpt`` on, and notes on what was not found.

    ``split_file`` (clips listed one a line) wins over ``subset``: ``test`` (the tracks the
    checkpoint held out) or ``all``. Warns when the checkpoint records no training tracks;
    ``checkpoint_name`` (e.g. its path) is named in the errors.

    Raises
    ------
    GenrekitError
        ``test`` of a checkpoint trained on all its data, or a choice that matches no track
    """
    notes = []
    if split_file:
        listed = {clip_id(line) for line in Path(split_file).read_text().splitlines() if line.strip()}
        idx = np.array([i for i, t in enumerate(data.ids) if t in listed], dtype=int)
        if len(listed) > len(idx):
            notes.append(f"{len(listed) - len(idx)} clip(s) of {split_file} are not in the data")
    elif subset == "test":
        wanted = set(ckpt.split.get("test", []))
        if not wanted:
            raise GenrekitError(
                f"{checkpoint_name} records no held-out test tracks (it was trained on all its data); "
                "evaluate it on other data with --subset all, or give --split-file"
            )
        idx = np.array([i for i, t in enumerate(data.ids) if t in wanted], dtype=int)
    else:
        idx = np.arange(len(data.ids))
    if not len(idx):
        raise GenrekitError("no track to evaluate: the chosen subset matches no track of the data")
    if not ckpt.split.get("train"):
        warnings.warn(
            "this checkpoint does not record its training tracks, so overlap with them cannot be checked", stacklevel=2
        )
    return idx, notes
