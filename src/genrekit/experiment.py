"""Experiments: data → split → fit → evaluate → report. Used by the CLI and the benchmarks."""

from __future__ import annotations

import csv
import json
import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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
from genrekit.splits import Fold
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
    split: dict[str, np.ndarray | list] = {
        "train": fold.train,
        "val": fold.val if fold.val is not None else [],
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
            "n_val_tracks": int(0 if fold.val is None else len(fold.val)),
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


def run_protocol(
    data: Data,
    folds: list[Fold],
    *,
    model: str = DEFAULT_MODEL,
    model_params: dict | None = None,
    config: TrainConfig | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    out_dir: str | os.PathLike | None = None,
) -> dict:
    """Train and evaluate ``model`` on every fold (seed ``config.seed + i`` for fold i);
    mean ± sd of the track-level metrics."""
    config = config or TrainConfig()
    rows: list[dict[str, Any]] = []
    for fold in folds:
        ckpt, result = fit(
            data,
            fold,
            model=model,
            model_params=model_params,
            config=replace(config, seed=config.seed + len(rows)),
            device=device,
            progress=progress,
        )
        rep = evaluate(ckpt, data, fold.test)
        if out_dir is not None:
            write_report(rep, Path(out_dir) / model / fold.name, history=result.history, title=f"{model} {fold.name}")
        rows.append(
            {
                "fold": fold.name,
                "accuracy": rep["track"]["accuracy"],
                "balanced_accuracy": rep["track"]["balanced_accuracy"],
                "macro_f1": rep["track"]["macro_f1"],
                "segment_accuracy": rep["segment"]["accuracy"],
                "per_class_recall": {g: v["recall"] for g, v in rep["track"]["per_class"].items()},
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "train_seconds": round(result.seconds, 1),
                "n_test": len(fold.test),
                "model_params": ckpt.model_params,
                "n_parameters": sum(int(v.numel()) for v in ckpt.state_dict.values()),
            }
        )
    summary: dict[str, Any] = {"model": model, "model_params": dict(model_params or {}), "folds": rows}
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "segment_accuracy", "train_seconds"):
        vals = np.array([r[key] for r in rows], dtype=float)
        summary[f"{key}_mean"] = float(vals.mean())
        summary[f"{key}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    return summary


def comparison_markdown(results: list[dict], protocol: str) -> str:
    """Markdown table of :func:`run_protocol` results (track level, mean ± sd over folds)."""

    def pm(r, k):
        return f"{r[k + '_mean']:.3f} ± {r[k + '_sd']:.3f}"

    lines = [
        f"Protocol: {protocol}, {len(results[0]['folds'])} split(s); track-level metrics, mean ± sd.",
        "",
        "| model | accuracy | balanced accuracy | macro-F1 | segment accuracy | train s/split |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {pm(r, 'accuracy')} | {pm(r, 'balanced_accuracy')} | {pm(r, 'macro_f1')} "
            f"| {pm(r, 'segment_accuracy')} | {r['train_seconds_mean']:.0f} |"
        )
    return "\n".join(lines) + "\n"
