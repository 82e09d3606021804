"""Experiments: data → split → fit → evaluate → report. Used by the CLI and the benchmarks."""
from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from genrekit import __version__
from genrekit.checkpoint import Checkpoint
from genrekit.datasets import DatasetError, Track, load_dataset
from genrekit.datasets.cache import load_features
from genrekit.evaluate import evaluate_tracks
from genrekit.features import FeatureConfig
from genrekit.plots import confusion_png, curves_png
from genrekit.splits import random_split
from genrekit.train import TrainConfig, TrainResult, train


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


def prepare(
    path: str | os.PathLike,
    *,
    input_kind: str = "auto",
    feature_config: FeatureConfig | None = None,
    labels: list[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Data:
    """Load a dataset and its features. Images imply ``kind="kaggle-image"`` features.

    ``labels`` fixes the class order (e.g. a checkpoint's); tracks of other labels are left out.
    """
    tracks = load_dataset(path, input_kind=input_kind)
    config = feature_config or FeatureConfig()
    if tracks[0].kind == "image" and config.kind != "kaggle-image":
        config = replace(config, kind="kaggle-image")
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


def carve_validation(train_idx: np.ndarray, y: np.ndarray, *, fraction: float = 0.1, seed: int = 0):
    """Split a training side into (fit, validation), stratified, at track level."""
    if fraction <= 0:
        return train_idx, None
    labels = list(y[train_idx])
    n_classes, n = len(set(labels)), len(labels)
    n_val = max(int(round(fraction * n)), n_classes)
    if n_val >= n - n_classes:  # too few tracks to stratify both sides
        rng = np.random.default_rng(seed)
        order = rng.permutation(n)
        n_val = max(1, int(round(fraction * n)))
        return np.sort(train_idx[order[n_val:]]), np.sort(train_idx[order[:n_val]])
    fit, val = random_split(labels, test_size=n_val, seed=seed)
    return train_idx[fit], train_idx[val]


def fit(
    data: Data,
    train_idx: np.ndarray,
    val_idx: np.ndarray | None,
    config: TrainConfig,
    *,
    progress: bool = True,
    metadata: dict | None = None,
) -> tuple[Checkpoint, TrainResult]:
    """Train on ``train_idx`` (early stopping on ``val_idx``) and wrap the result as a checkpoint."""
    result = train(
        data.features, data.y, data.labels, data.feature_config,
        train_idx=train_idx, val_idx=val_idx, config=config, progress=progress,
    )  # fmt: skip
    ckpt = Checkpoint(
        model_name=config.model,
        model_params=config.model_params,
        labels=data.labels,
        feature_config=data.feature_config,
        state_dict=result.model.state_dict(),
        metadata={
            "genrekit_version": __version__,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "train_config": config.to_dict(),
            "data": str(data.path),
            "input_kind": data.tracks[0].kind,
            "n_train_tracks": int(len(train_idx)),
            "n_val_tracks": int(0 if val_idx is None else len(val_idx)),
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "train_seconds": round(result.seconds, 1),
            "history": result.history,
            **(metadata or {}),
        },
    )
    return ckpt, result


def evaluate(ckpt: Checkpoint, data: Data, idx: np.ndarray) -> dict:
    """Segment- and track-level report of a checkpoint on tracks ``idx`` of ``data``."""
    model = ckpt.build()
    rep = evaluate_tracks(model, [data.features[i] for i in idx], data.y[idx], data.labels, data.feature_config)
    probs = rep.pop("track_probabilities")
    rep["tracks"] = [
        {"id": data.tracks[i].id, "true": data.labels[data.y[i]], "predicted": data.labels[int(p.argmax())],
         "confidence": round(float(p.max()), 4)}
        for i, p in zip(idx, probs)
    ]  # fmt: skip
    rep["model"] = ckpt.model_name
    rep["labels"] = data.labels
    rep["skipped_unreadable"] = data.failed
    return rep


def write_report(report: dict, out_dir: str | os.PathLike, *, history: list[dict] | None = None, title: str = "") -> Path:
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
            m["confusion"], labels, out / f"confusion_{level}.png",
            title=f"{title} {level} level: acc {m['accuracy']:.3f}, balanced {m['balanced_accuracy']:.3f}".strip(),
        )  # fmt: skip
    with open(out / "per_genre.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["genre", "precision", "recall", "f1", "support"])
        for g, v in report["track"]["per_class"].items():
            w.writerow([g, f"{v['precision']:.4f}", f"{v['recall']:.4f}", f"{v['f1']:.4f}", v["support"]])
    if history:
        curves_png(history, out / "curves.png", title=title)
    return out


@dataclass
class Fold:
    """One train/test split of a protocol (validation is carved from the training side)."""

    name: str
    train: np.ndarray
    val: np.ndarray | None
    test: np.ndarray


def protocol_folds(
    data: Data, protocol: str, *, seeds: int = 5, folds: int = 5, test_size: float = 0.2,
    splits_dir: str | os.PathLike | None = None, val_fraction: float = 0.1,
) -> tuple[list[Fold], dict]:
    """The splits of an evaluation protocol, at track level.

    ``random``: stratified ``1 - test_size`` / ``test_size`` split, one per seed.
    ``kfold``: stratified k-fold. ``filtered``: the list files in ``splits_dir``
    (train/valid/test). Returns the folds and notes (e.g. listed clips missing from the data).
    """  # fmt: skip
    from genrekit.splits import kfold, list_split

    labels = [data.labels[i] for i in data.y]
    notes: dict = {}
    if protocol == "random":
        out = []
        for s in range(seeds):
            tr, te = random_split(labels, test_size=test_size, seed=s)
            fit_idx, val = carve_validation(tr, data.y, fraction=val_fraction, seed=s)
            out.append(Fold(f"seed{s}", fit_idx, val, te))
        return out, notes
    if protocol == "kfold":
        out = []
        for k, (tr, te) in enumerate(kfold(labels, k=folds, seed=0)):
            fit_idx, val = carve_validation(tr, data.y, fraction=val_fraction, seed=k)
            out.append(Fold(f"fold{k}", fit_idx, val, te))
        return out, notes
    if protocol == "filtered":
        if splits_dir is None:
            raise DatasetError("the filtered protocol needs --splits-dir (the folder of *_filtered.txt lists)")
        split = list_split(data.ids, splits_dir)
        notes["missing_from_data"] = {k: len(v) for k, v in split.missing.items()}
        notes["missing_ids"] = split.missing
        notes["not_in_any_list"] = len(split.unlisted)
        if not all(len(split.parts[p]) for p in ("train", "test")):
            raise DatasetError(f"the split lists in '{splits_dir}' match no train or test track of '{data.path}'")
        return [Fold("filtered", split.parts["train"], split.parts["valid"], split.parts["test"])], notes
    raise DatasetError(f"unknown protocol '{protocol}'; use random, kfold or filtered")


def run_protocol(
    data: Data, folds: list[Fold], config: TrainConfig, *, progress: bool = True, out_dir: str | os.PathLike | None = None
) -> dict:
    """Train and evaluate ``config`` on every fold; mean ± sd of the track-level metrics."""
    rows = []
    for fold in folds:
        cfg = replace(config, seed=config.seed + len(rows))
        ckpt, result = fit(data, fold.train, fold.val, cfg, progress=progress)
        rep = evaluate(ckpt, data, fold.test)
        if out_dir is not None:
            write_report(rep, Path(out_dir) / config.model / fold.name, history=result.history, title=f"{config.model} {fold.name}")
        rows.append({
            "fold": fold.name,
            "accuracy": rep["track"]["accuracy"],
            "balanced_accuracy": rep["track"]["balanced_accuracy"],
            "macro_f1": rep["track"]["macro_f1"],
            "segment_accuracy": rep["segment"]["accuracy"],
            "per_class_recall": {g: v["recall"] for g, v in rep["track"]["per_class"].items()},
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "train_seconds": round(result.seconds, 1),
            "n_test": int(len(fold.test)),
        })  # fmt: skip
    summary = {"model": config.model, "folds": rows}
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
