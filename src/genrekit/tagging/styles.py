"""Styles: the 50 Million Song Dataset tags of the musicnn backbone, a multi-label second output.

The bundled model's features are the frozen MSD_musicnn tagger's penultimate layer *and its 50
tag probabilities* (``embedding="penultimate+tags"``), one frame per 3-s patch: the tags
(electronic, dance, folk, soul, punk, ambient, female vocalists, 80s, House...) are computed for
every patch anyway. A file's style probabilities are their mean over its patches (each tag a
sigmoid of its own: several can be high at once). Nothing is retrained; no second decoding.

The tagger is musicnn's (Pons & Serra 2019), trained on the Last.fm tags of the Million Song
Dataset; genrekit levels each patch's loudness before the tagger (its ``level_db``), as the
genre head saw it in training, so the values differ a little from stock musicnn's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genrekit.errors import GenrekitError

if TYPE_CHECKING:
    from genrekit.features import FeatureConfig, FrameStream
    from genrekit.inference import Classifier, ModelBackend
    from genrekit.predictor import Prediction, Predictor

# measured by benchmarks/styles.py (benchmarks/results/styles.md; the same keys in summary.json, a
# test checks they agree): each style scored as a detector of the genre it names, nothing fitted
MEASURED = {"styles_gtzan_mean_auc": 0.963, "styles_outside_mean_auc": 0.943, "styles_outside_electronic_auc": 0.96}


def describe() -> list[str]:
    """What the styles are, where they come from and how good they are (``genrekit models``)."""
    m = MEASURED
    return [
        "styles (--styles): the 50 tags of musicnn's MSD tagger (electronic, dance, folk, soul, punk, ambient,",
        "    female vocalists, 80s, House...), a multi-label output beside the genre (each tag its own sigmoid,",
        "    the mean over the file's 3-s patches), computed in the same pass; trained by Pons & Serra 2019 on",
        "    the Last.fm tags of the Million Song Dataset (their MSD figures: see Pons & Serra 2019, musicnn).",
        (
            f"    measured here as detectors of the genres they name (ROC-AUC, nothing fitted): GTZAN mean "
            f"{m['styles_gtzan_mean_auc']:.3f},"
        ),
        (
            f"    outside clips mean {m['styles_outside_mean_auc']:.3f}; electronic music (no GTZAN genre) found by "
            f"'electronic' at {m['styles_outside_electronic_auc']:.2f}"
        ),
        "    (benchmarks/results/styles.md)",
    ]


def style_rows(feature_config: FeatureConfig) -> slice | None:
    """Where the MSD tags sit in a feature frame of this config (``None``: not there)."""
    from genrekit.features.musicnn import EMBEDDING_SIZES, MusicnnConfig, embedding_sizes

    if not isinstance(feature_config, MusicnnConfig):
        return None
    offset = 0
    for backbone in feature_config.backbones.split("+"):
        for part in feature_config.embedding.split("+"):
            if backbone == "msd" and part == "tags":
                return slice(offset, offset + EMBEDDING_SIZES["tags"])
            offset += embedding_sizes(backbone)[part]
    return None


def check_styles(predictor: Predictor) -> slice:
    """The rows of the styles in the predictor's frames.

    Raises
    ------
    GenrekitError
        the model's features do not carry the MSD tags
    """
    rows = style_rows(predictor.feature_config)
    if rows is None:
        raise GenrekitError(
            f"styles come from the musicnn MSD tagger: the model '{predictor.name}' does not "
            "compute its tags (use the bundled musicnn-gtzan model, or leave out --styles)"
        )
    return rows


class _TapStream:
    """A feature stream that keeps the style rows of every frame it gives."""

    def __init__(self, inner: FrameStream, rows: slice, sink: list[np.ndarray]):
        self.inner, self.rows, self.sink = inner, rows, sink

    def push(self, block: np.ndarray) -> np.ndarray:
        out = self.inner.push(block)
        self.sink.append(out[self.rows])
        return out

    def finish(self) -> np.ndarray:
        out = self.inner.finish()
        self.sink.append(out[self.rows])
        return out


class _TapBackend:
    """A model backend whose streams keep the style rows (its probabilities are the inner backend's)."""

    def __init__(self, inner: ModelBackend, rows: slice, sink: list[np.ndarray]):
        self._inner, self._rows, self._sink = inner, rows, sink

    def probabilities(self, batches: Iterable[np.ndarray]) -> list[np.ndarray]:
        return self._inner.probabilities(batches)

    def stream(self) -> FrameStream:
        return _TapStream(self._inner.stream(), self._rows, self._sink)


def tapped(classifier: Classifier, rows: slice, sink: list[np.ndarray]) -> Classifier:
    """``classifier`` whose feature streams put the style rows of every frame into ``sink``."""
    from genrekit.inference import Classifier

    backend = _TapBackend(classifier.backend, rows, sink)
    return Classifier(backend, classifier.features, classifier.labels, batch_size=classifier.batch_size)


def mean_styles(sink: list[np.ndarray], prediction: Prediction) -> dict[str, float]:
    """A file's style probabilities: each MSD tag's mean over the frames in ``sink`` (``{}`` without music)."""
    from genrekit.features.musicnn_tags import MSD_TAGS

    frames = np.concatenate(sink, axis=1) if sink else np.zeros((len(MSD_TAGS), 0), np.float32)
    if not frames.shape[1] or prediction.no_music is not None:
        return {}
    return {tag: float(p) for tag, p in zip(MSD_TAGS, frames.mean(axis=1))}


def predict_with_styles(predictor: Predictor, path: str | os.PathLike) -> tuple[Prediction, dict[str, float]]:
    """The prediction of one file and its style probabilities (tag -> mean over the patches).

    Raises
    ------
    GenrekitError
        the model has no styles (see :func:`check_styles`), or the file cannot be decoded
    """
    prediction = predictor.predict_file(Path(path), styles=True)
    return prediction, prediction.styles or {}


def top_styles(styles: dict[str, float], *, threshold: float, limit: int | None = None) -> list[tuple[str, float]]:
    """The styles at least ``threshold`` probable, most probable first."""
    ranked = sorted(((t, p) for t, p in styles.items() if p >= threshold), key=lambda kv: -kv[1])
    return ranked[:limit] if limit else ranked
