"""Honest probabilities: temperature scaling fitted on held-out predictions, and the rule for ``confident``.

A track's probabilities are the mean of its windows' softmax (:mod:`genrekit.predictor`), so the
temperature divides each window's logits before that mean, as the head applies it
(:class:`genrekit.models.heads.EmbeddingHead`'s ``temperature``). Window log-probabilities stand
for the logits: softmax is unchanged by a constant per window, so ``softmax(log p / T)`` is
``softmax(z / T)``.
"""

from __future__ import annotations

import numpy as np

TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(8.0), 241))
THRESHOLDS = np.round(np.arange(0.30, 0.991, 0.01), 2)


def track_probabilities(*, window_log_probs: list[np.ndarray], temperature: float) -> np.ndarray:
    """``(n_tracks, n_classes)``: each track's mean of its windows' softmax at ``temperature``."""
    out = []
    for w in window_log_probs:
        z = w / temperature
        p = np.exp(z - z.max(axis=1, keepdims=True))
        out.append((p / p.sum(axis=1, keepdims=True)).mean(axis=0))
    return np.stack(out)


def fit_temperature(*, window_log_probs: list[np.ndarray], y: np.ndarray) -> float:
    """The temperature (on a log grid from 0.25 to 8) that minimises the tracks' negative log-likelihood.

    Parameters
    ----------
    window_log_probs : per track, ``(n_windows, n_classes)`` log-probabilities of held-out windows
    y : the tracks' true class indices
    """
    rows = np.arange(len(y))

    def nll(t: float) -> float:
        p = track_probabilities(window_log_probs=window_log_probs, temperature=t)
        return float(-np.log(np.clip(p[rows, y], 1e-12, None)).mean())

    return float(min(TEMPERATURES, key=nll))


def expected_calibration_error(*, confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE: the bin-weighted gap between mean top probability and accuracy, equal-width bins."""
    which = np.clip(np.digitize(confidence, np.linspace(0, 1, bins + 1)[1:-1]), 0, bins - 1)
    return float(
        sum(
            (which == b).mean() * abs(confidence[which == b].mean() - correct[which == b].mean())
            for b in range(bins)
            if (which == b).any()
        )
    )


def confident_threshold(*, confidence: np.ndarray, correct: np.ndarray, precision: float) -> float:
    """The lowest threshold (0.30 … 0.99, step 0.01) at which held-out predictions with a top
    probability at least that high are right at least ``precision`` of the time (0.99 if none is)."""
    for t in THRESHOLDS:
        m = confidence >= t
        if m.any() and correct[m].mean() >= precision:
            return float(t)
    return float(THRESHOLDS[-1])


def fit_ood(*, embeddings: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Genre means ``(n_classes, dim)`` and the precision matrix of their shared covariance.

    The covariance of the embeddings about their genre's mean is shrunk towards a multiple of the
    identity by the Ledoit-Wolf rule (250 dimensions from a few thousand patches need it).

    Parameters
    ----------
    embeddings : ``(n, dim)`` training patches' embeddings
    y : their genre indices
    n_classes : genres (each must have a patch)
    """
    x = np.asarray(embeddings, dtype=np.float64)
    means = np.stack([x[y == k].mean(axis=0) for k in range(n_classes)])
    r = x - means[y]
    r -= r.mean(axis=0)
    n, dim = r.shape
    s = r.T @ r / n
    mu = np.trace(s) / dim
    delta = ((s - mu * np.eye(dim)) ** 2).sum() / dim
    beta = ((np.einsum("ij,ij->i", r, r) ** 2).sum() / n - (s**2).sum()) / (n * dim)
    shrink = min(beta, delta) / delta
    cov = (1 - shrink) * s + shrink * mu * np.eye(dim)
    return means, np.linalg.inv(cov)


def ood_scores(*, embeddings: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Per row of ``embeddings`` ``(n, dim)``: the least squared Mahalanobis distance to a genre's
    mean, divided by ``dim`` (about 1 for the patches of the genres it was fitted on)."""
    x = np.asarray(embeddings, dtype=np.float64)
    d = np.stack([np.einsum("ij,jk,ik->i", x - m, precision, x - m) for m in means], axis=1)
    return d.min(axis=1) / x.shape[1]


def ood_gated(
    *, window_log_probs: np.ndarray, scores: np.ndarray, threshold: float, keep: float, temperature: float = 1.0
) -> np.ndarray:
    """What :class:`genrekit.models.heads.EmbeddingHead` outputs, from its un-gated window
    log-probabilities: at ``temperature``, then each window scoring over ``threshold`` mixed
    with the uniform distribution, ``keep`` of it kept (log-probabilities)."""
    z = window_log_probs / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    k = np.where(scores > threshold, keep, 1.0)[:, None]
    return np.log(k * p + (1 - k) / p.shape[1])
