"""Evaluation at segment and track level.

A track's prediction is the mean of its windows' probabilities.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score
from sklearn.metrics import precision_recall_fscore_support
from torch import nn

from genrekit.features import FeatureConfig, normalize_windows, segment


@dataclass
class TrackProbabilities:
    """Per-track mean probabilities and the per-window ones they came from."""

    track: np.ndarray  # (n_tracks, n_classes)
    windows: list[np.ndarray]  # each (n_windows, n_classes)


@torch.inference_mode()
def predict_tracks(
    model: nn.Module, features: list[np.ndarray], config: FeatureConfig, *, batch_size: int = 256
) -> TrackProbabilities:
    """Class probabilities of every window of every track, and their track means."""
    model.eval()
    windows = [segment(f, config) for f in features]
    counts = [len(w) for w in windows]
    flat = torch.cat(windows) if windows else torch.zeros(0)
    probs = []
    for start in range(0, len(flat), batch_size):
        batch = normalize_windows(flat[start : start + batch_size], config.top_db).unsqueeze(1)
        probs.append(torch.softmax(model(batch), dim=1))
    probs = torch.cat(probs).numpy() if probs else np.zeros((0, 0))
    per_track = np.split(probs, np.cumsum(counts)[:-1]) if counts else []
    return TrackProbabilities(np.stack([p.mean(axis=0) for p in per_track]), per_track)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""
    idx = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=idx, average="macro", zero_division=0)),
        "per_class": {
            labels[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i in idx
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=idx).tolist(),
    }


def evaluate_tracks(
    model: nn.Module, features: list[np.ndarray], y: np.ndarray, labels: list[str], config: FeatureConfig
) -> dict:
    """Segment-level and track-level metrics of ``model`` on labelled tracks."""
    probs = predict_tracks(model, features, config)
    seg_true = np.concatenate([np.full(len(w), t) for w, t in zip(probs.windows, y)])
    seg_pred = np.concatenate([w.argmax(axis=1) for w in probs.windows])
    return {
        "segment": classification_metrics(seg_true, seg_pred, labels),
        "track": classification_metrics(np.asarray(y), probs.track.argmax(axis=1), labels),
        "track_probabilities": probs.track,
    }
