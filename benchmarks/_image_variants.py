"""The training sets of the outside_variants rows that add the 665 GTZAN clips we only have as Kaggle images.

Each image-only clip's musicnn embeddings come from its PNG through the spectral route
(:mod:`genrekit.features.kaggle_inverse`, cached by ``_images.py``). A fold's training set is its
audio clips, then:

- the image-only clips allowed (all 665 in CV and for the outside model: none is a held-out
  audio clip's own image; for the fault-filtered test, only those in the train/valid lists);
- with ``bridge``, those mapped by a ridge map image-route → audio patch embeddings fitted on the
  fold's training audio clips (their audio rendered to an image and inverted: ``rendered``);
- with ``domain``, the rendered image-route copy of each training audio clip too (the head sees
  both domains of the same clips);
- ``image_weight`` < 1: each audio clip is listed round(1 / image_weight) times, so an image-only
  clip is drawn that much less often than an audio clip of its genre.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _images import image_route_features
from kaggle_inverse import fit_bridge

from genrekit.datasets import Track, load_dataset
from genrekit.experiment import Data
from genrekit.splits import list_split


class ImageClips:
    """The image-only clips of a GTZAN folder and the rendered copies of its audio clips."""

    def __init__(self, *, root, data: Data):
        have = set(data.ids)
        self.tracks = [t for t in load_dataset(root, input_kind="images") if t.id not in have]
        self.features = [
            image_route_features(path=t.path, source="image", config=data.feature_config) for t in self.tracks
        ]
        self.y = np.array([data.labels.index(t.label) for t in self.tracks])
        self.rendered = [
            image_route_features(path=t.path, source="rendered", config=data.feature_config) for t in data.tracks
        ]
        lists = list_split([t.id for t in self.tracks], Path(root) / "splits")
        self.filtered = np.sort(np.concatenate([lists.parts["train"], lists.parts["valid"]]))

    def training_data(
        self, *, data: Data, train: np.ndarray, images: np.ndarray, bridge: bool, domain: bool, image_weight: float
    ) -> tuple[Data, np.ndarray]:
        """``data`` followed by the image-only clips ``images`` (bridged or not) and, with ``domain``,
        the rendered copies of the audio clips ``train``; with the training indices into it."""
        feats = [self.features[i] for i in images]
        if bridge:
            apply = fit_bridge(image=[self.rendered[i] for i in train], audio=[data.features[i] for i in train])
            feats = [apply(f) for f in feats]
        n = len(data.y)
        tracks = list(data.tracks) + [Track(f"image:{self.tracks[i].id}", *self._rest(i)) for i in images]
        ys = [data.y, self.y[images]]
        allf = list(data.features) + feats
        if domain:
            tracks += [
                Track(f"rendered:{data.tracks[i].id}", data.tracks[i].label, data.tracks[i].path, "image")
                for i in train
            ]
            allf += [self.rendered[i] for i in train]
            ys.append(data.y[train])
        repeat = max(1, round(1 / image_weight))
        idx = np.concatenate([np.tile(train, repeat), np.arange(n, len(tracks))])
        ext = Data(data.path, tracks, allf, np.concatenate(ys), data.labels, data.feature_config, data.failed)
        return ext, idx

    def _rest(self, i: int) -> tuple:
        t = self.tracks[i]
        return t.label, t.path, t.kind
