"""Issue 17: the musicnn MSD tags as a prior for the GTZAN genres they name (``outside_variants.py``).

The MSD tagger learnt its 50 tags from last.fm on real music that is not GTZAN. Seven GTZAN
genres have tags that name them; the mapping :data:`GENRE_TAGS` was written down from the tag
names alone, before any figure was looked at, and is never tuned. Classical, disco and reggae have
no tag and get no prior.

Per window, the prior score of genre ``g`` is the log-odds of its strongest tag, either as it is
or centred (less its median over the windows the head was trained on, so that a window as
``rock``-tagged as a typical GTZAN window gets no push). It is added to the head's
log-probabilities with one weight ``w`` (a priori, or fitted with a per-genre bias on the GTZAN
out-of-fold windows: :func:`fit_weight`). Added to every genre, it takes probability from the
genres it cannot name; "among the genres it names" it only moves probability among the seven (the
head's total for them, and classical/disco/reggae, kept): the form
:class:`genrekit.models.heads.EmbeddingHead` applies with ``prior_rows`` (:func:`prior_rows`).
"""

from __future__ import annotations

import numpy as np

from genrekit.features.musicnn import EMBEDDING_SIZES
from genrekit.features.musicnn_tags import MSD_TAGS
from genrekit.models.heads import PRIOR_FLOOR

GENRE_TAGS = {
    "blues": ("blues",),
    "country": ("country",),
    "hiphop": ("Hip-Hop",),
    "jazz": ("jazz",),
    "metal": ("metal", "heavy metal"),
    "pop": ("pop", "indie pop"),
    "rock": ("rock", "classic rock", "hard rock", "alternative rock", "indie rock", "Progressive rock"),
}


def prior_rows(*, labels: list[str], offset: int = EMBEDDING_SIZES["penultimate"]) -> list[list[int]]:
    """Per genre of ``labels``, the ``penultimate+tags`` embedding rows of its tags (empty: no tag names it):
    :class:`genrekit.models.heads.EmbeddingHead`'s ``prior_rows``; the MSD tags start at row ``offset``
    (musicnn's 200 penultimate values; 256 for the VGG tagger)."""
    return [[offset + MSD_TAGS.index(t) for t in GENRE_TAGS.get(g, ())] for g in labels]


def raw_scores(
    *, window_means: list[np.ndarray], labels: list[str], offset: int = EMBEDDING_SIZES["penultimate"]
) -> list[np.ndarray]:
    """Per track ``(n_windows, n_classes)``: each named genre's strongest-tag log-odds (0 for the others).

    Parameters
    ----------
    window_means : per track, the mean ``penultimate+tags`` embedding of each window ``(n_windows, 250)``
    labels : the genres, in the head's order
    offset : the row of the first MSD tag in the embedding
    """
    out = []
    for m in window_means:
        s = np.zeros((len(m), len(labels)))
        for k, rows in enumerate(prior_rows(labels=labels, offset=offset)):
            if rows:
                p = np.clip(m[:, rows].max(axis=1).astype(np.float64), PRIOR_FLOOR, 1 - PRIOR_FLOOR)
                s[:, k] = np.log(p / (1 - p))
        out.append(s)
    return out


def named(*, labels: list[str]) -> np.ndarray:
    """The mask of the genres :data:`GENRE_TAGS` names, in the order of ``labels``."""
    return np.array([g in GENRE_TAGS for g in labels])


def centre(*, scores: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """``(n_classes,)``: the median score of the named genres over these (training) windows, 0 for the others."""
    c = np.median(np.concatenate(scores), axis=0)
    return np.where(named(labels=labels), c, 0.0)


def with_prior(
    *,
    window_log_probs: np.ndarray,
    scores: np.ndarray,
    weight: float,
    bias: np.ndarray | None = None,
    among: np.ndarray | None = None,
) -> np.ndarray:
    """The head's window log-probabilities plus ``weight`` times the centred prior ``scores`` (and ``bias``).

    With ``among`` (a mask of the genres the tags name) the prior only moves probability among those
    genres: their total, and every other genre's probability, stay the head's."""
    z = window_log_probs + weight * scores + (0.0 if bias is None else bias)
    if among is None:
        return z - _logsumexp(z)
    out = window_log_probs.copy()
    out[:, among] = z[:, among] - _logsumexp(z[:, among]) + _logsumexp(window_log_probs[:, among])
    return out


def _logsumexp(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    return m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def fit_weight(
    *, window_log_probs: list[np.ndarray], scores: list[np.ndarray], y: np.ndarray
) -> tuple[float, np.ndarray]:
    """The weight and per-genre bias that minimise the windows' cross-entropy (each window labelled with
    its clip's genre), fitted on held-out GTZAN windows (L-BFGS; the bias's mean is fixed at 0).

    Parameters
    ----------
    window_log_probs : per track, the head's held-out window log-probabilities
    scores : per track, the windows' centred prior scores (``raw_scores`` less ``centre``)
    y : the tracks' genres
    """
    import torch

    lp = torch.tensor(np.concatenate(window_log_probs))
    s = torch.tensor(np.concatenate(scores))
    yy = torch.tensor(np.concatenate([[k] * len(w) for k, w in zip(y, window_log_probs)]))
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(lp.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        out = torch.nn.functional.cross_entropy(lp + w * s + (b - b.mean()), yy)
        out.backward()
        return out

    opt.step(loss)
    return float(w.detach()), (b - b.mean()).detach().numpy()
