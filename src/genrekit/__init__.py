"""genrekit: music genre classification from audio."""
from __future__ import annotations

__version__ = "0.1.0"

from genrekit.audio import AudioError, GenrekitError, load_audio, stream_audio  # noqa: E402
from genrekit.features import FeatureConfig, LogMel  # noqa: E402

__all__ = ["AudioError", "FeatureConfig", "GenrekitError", "LogMel", "load_audio", "stream_audio", "__version__"]

from genrekit.predictor import Prediction, Predictor, Segment, predict  # noqa: E402

__all__ += ["Prediction", "Predictor", "Segment", "predict"]
