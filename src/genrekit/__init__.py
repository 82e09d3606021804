"""genrekit: music genre classification from audio.

The names below are imported on first use, so ``import genrekit`` (and the CLI) stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

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
    "predict": "genrekit.predictor",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'genrekit' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
