"""Feature kinds: what a model sees of the audio, from decoded samples to normalised windows.

Each kind is one module holding a frozen config dataclass (a subclass of :class:`FeatureConfig`)
and one streaming extractor (``push(block) -> frames``, ``finish() -> frames``); the features of
a whole signal are that stream run to its end (:func:`extract`). A config is saved in every
checkpoint and applied from there at inference, so a model always sees features computed as in
training. Kinds are found by name in :data:`FEATURE_KINDS` (``module:Class``, imported on first
use): adding a kind is one module and one entry there.

Frames are cut into fixed windows (:mod:`genrekit.features.windows`) and each window is scaled
by its kind's :meth:`FeatureConfig.normalize` before it reaches a model.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from genrekit.errors import GenrekitError

if TYPE_CHECKING:
    import torch

FEATURE_KINDS: dict[str, str] = {
    "logmel": "genrekit.features.logmel:LogMelConfig",
    "kaggle-image": "genrekit.features.kaggle_image:KaggleImageConfig",
    "musicnn": "genrekit.features.musicnn:MusicnnConfig",
}
DEFAULT_KIND = "logmel"


class FrameStream(Protocol):
    """A streaming extractor: blocks of mono samples in, (n_bins, n_frames) float32 frames out."""

    def push(self, block: np.ndarray) -> np.ndarray: ...

    def finish(self) -> np.ndarray: ...


@dataclass(frozen=True)
class FeatureConfig:
    """What every kind shares: how its frames are cut into windows.

    Subclasses add the fields of their kind, and define ``sample_rate`` (a field or a class
    constant), ``n_bins``,
    ``frames_per_second``, :meth:`stream` and :meth:`normalize`.
    """

    kind: ClassVar[str] = ""
    # True for kinds that can also be read from an image file (see genrekit.features.kaggle_image)
    reads_images: ClassVar[bool] = False
    # fields that do not change a track's (bins, frames) matrix (left out of cache keys)
    window_fields: ClassVar[tuple[str, ...]] = ("segment_seconds", "segment_overlap", "top_db")

    segment_seconds: float = 3.0
    segment_overlap: float = 0.5

    def __post_init__(self):
        if self.segment_seconds <= 0:
            raise GenrekitError(f"segment_seconds must be positive, not {self.segment_seconds}")
        if not 0 <= self.segment_overlap < 1:
            raise GenrekitError(f"segment_overlap must be in [0, 1), not {self.segment_overlap}")

    @property
    def n_bins(self) -> int:
        """Rows of the feature matrix."""
        raise NotImplementedError

    @property
    def frames_per_second(self) -> float:
        """Feature frames per second of audio."""
        raise NotImplementedError

    @property
    def segment_frames(self) -> int:
        """Frames in one window."""
        return max(1, int(round(self.segment_seconds * self.frames_per_second)))

    @property
    def hop_frames(self) -> int:
        """Frames between the starts of two windows."""
        return max(1, int(round(self.segment_frames * (1 - self.segment_overlap))))

    def stream(self) -> FrameStream:
        """A fresh streaming extractor of this kind."""
        raise NotImplementedError

    def normalize(self, windows: torch.Tensor) -> torch.Tensor:
        """Scale windows ``(..., n_bins, segment_frames)`` as the model expects them."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}

    def matrix_key(self) -> dict:
        """The fields that define a track's feature matrix (for cache keys)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.window_fields}

    @staticmethod
    def from_dict(d: dict) -> FeatureConfig:
        """The config a checkpoint stored; fields the kind does not have are ignored."""
        d = dict(d)
        cls = feature_kind(d.pop("kind", DEFAULT_KIND))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def feature_kind(name: str) -> type[FeatureConfig]:
    """The config class of a feature kind.

    Raises
    ------
    GenrekitError
        no kind of that name
    """
    try:
        module, cls = FEATURE_KINDS[name].split(":")
    except KeyError:
        raise GenrekitError(f"unknown feature kind '{name}'; choose one of: {', '.join(FEATURE_KINDS)}") from None
    return getattr(importlib.import_module(module), cls)


def make_feature_config(kind: str = DEFAULT_KIND, **values) -> FeatureConfig:
    """A config of ``kind`` with some fields set.

    Raises
    ------
    GenrekitError
        unknown kind, or a field that kind does not have (the message lists the ones it has)
    """
    cls = feature_kind(kind)
    known = [f.name for f in fields(cls)]
    unknown = [k for k in values if k not in known]
    if unknown:
        raise GenrekitError(
            f"feature kind '{kind}' has no setting {', '.join(unknown)}; its settings are: {', '.join(known)}"
        )
    return cls(**values)


def extract(config: FeatureConfig, y: np.ndarray | Iterable[np.ndarray]) -> np.ndarray:
    """Features of one whole signal: its stream run to the end, (n_bins, n_frames) float32.

    Parameters
    ----------
    config : the feature kind and its parameters
    y : a mono signal at ``config.sample_rate``, or an iterable of its blocks (e.g. from
        :func:`genrekit.audio.stream_audio`)
    """
    stream = config.stream()
    blocks = [y] if isinstance(y, np.ndarray) else y
    return np.concatenate([*(stream.push(b) for b in blocks), stream.finish()], axis=1)


def peak_normalize(windows: torch.Tensor, top_db: float) -> torch.Tensor:
    """Reference each window to its own maximum and scale ``[-top_db, 0]`` dB to ``[0, 1]``.

    The gain of a recording then does not change what the model sees.
    """
    import torch

    peak = windows.amax(dim=(-2, -1), keepdim=True)
    return torch.clamp(windows - peak, min=-top_db) / top_db + 1.0
