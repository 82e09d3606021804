"""The image-route musicnn embeddings of GTZAN clips (:mod:`genrekit.features.kaggle_inverse`), cached.

``image``: a Kaggle PNG inverted (the spectral route); ``rendered``: a clip's audio rendered to its
Kaggle image (:func:`genrekit.features.kaggle_render.render_matrix`) and inverted the same way, so
the clips with audio have image-domain embeddings too. The backbone is the bundled ONNX export's
(one thread; the torch one gives the same frames to ~1e-5, four times slower on 2 cores). Entries live under
``<genrekit cache>/kaggle-inverse/<recipe>/<file sha1>.npy``, like the augmented copies.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import numpy as np

from genrekit.audio import load_audio
from genrekit.datasets.cache import _file_hash, default_cache_dir, save_entry
from genrekit.features.kaggle_image import image_features
from genrekit.features.kaggle_inverse import audio_image_embeddings, image_embeddings

RECIPE = "spectral-v2"


@cache
def _onnx():
    from genrekit.checkpoint import bundled_model_path
    from genrekit.runtime import OnnxModel, current_card

    return OnnxModel(current_card(bundled_model_path()), threads=1)


def image_route_features(*, path: Path, source: str, config, cache_dir: Path | None = None) -> np.ndarray:
    """The ``config`` (musicnn) frames of ``path`` through the image route; ``source``: image or rendered."""
    sha = _file_hash(path)
    key = hashlib.sha1(f"{RECIPE}{source}{config.matrix_key()}".encode()).hexdigest()[:16]
    entry = (cache_dir or default_cache_dir()) / "kaggle-inverse" / key / f"{sha}.npy"
    if entry.exists():
        return np.load(entry)
    embed = _onnx().embed
    if source == "image":
        feats = image_embeddings(db=image_features(path), config=config, embed=embed)
    else:
        feats = audio_image_embeddings(y=load_audio(path, sr=22050), sr=22050, config=config, embed=embed)
    feats = feats.astype(np.float16)
    save_entry(entry, feats)
    return feats
