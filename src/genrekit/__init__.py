"""genrekit: music genre classification from audio.

The names below are imported on first use, so ``import genrekit`` (and the CLI) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)

if TYPE_CHECKING:  # the names below, for type checkers and IDEs; at run time they come from __getattr__
    from genrekit.audio import AudioError, load_audio, stream_audio
    from genrekit.default_predictor import predict
    from genrekit.errors import GenrekitError
    from genrekit.features import FeatureConfig, extract, make_feature_config
    from genrekit.inference import Classifier
    from genrekit.predictor import Prediction, Predictor, Segment

_EXPORTS = {
    "AudioError": "genrekit.audio",
    "load_audio": "genrekit.audio",
    "stream_audio": "genrekit.audio",
    "GenrekitError": "genrekit.errors",
    "FeatureConfig": "genrekit.features",
    "make_feature_config": "genrekit.features",
    "extract": "genrekit.features",
    "Classifier": "genrekit.inference",
    "Prediction": "genrekit.predictor",
    "Predictor": "genrekit.predictor",
    "Segment": "genrekit.predictor",
    "predict": "genrekit.default_predictor",
}
__all__ = [  # the keys of _EXPORTS and __version__, written out so that linters see them
    "AudioError",
    "Classifier",
    "FeatureConfig",
    "GenrekitError",
    "Prediction",
    "Predictor",
    "Segment",
    "__version__",
    "extract",
    "load_audio",
    "make_feature_config",
    "predict",
    "stream_audio",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'genrekit' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
