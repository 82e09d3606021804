"""Metrics at segment and track level; a track's prediction is the mean of its windows' probabilities."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from genrekit.inference import Classifier


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""
    idx = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=idx, average="macro", zero_division=0)),
        "per_class": {
            labels[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i in idx
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=idx).tolist(),
    }


def evaluate_tracks(classifier: Classifier, features: list[np.ndarray], y: np.ndarray) -> dict:
    """Segment-level and track-level metrics of ``classifier`` on labelled feature matrices.

    Returns the two metric dicts and ``track_probabilities`` (n_tracks, n_classes).
    """
    windows = classifier.analyse_tracks(features)
    track_probs = np.stack([w.mean(axis=0) for w in windows]) if windows else np.zeros((0, len(classifier.labels)))
    seg_true = np.concatenate([np.full(len(w), t) for w, t in zip(windows, y)]) if windows else np.zeros(0, int)
    seg_pred = np.concatenate([w.argmax(axis=1) for w in windows]) if windows else np.zeros(0, int)
    return {
        "segment": classification_metrics(seg_true, seg_pred, classifier.labels),
        "track": classification_metrics(np.asarray(y), track_probs.argmax(axis=1), classifier.labels),
        "track_probabilities": track_probs,
    }
