"""``genrekit.predict``: the genres of one file in one call, the model loaded once.

The only state genrekit keeps between calls is this module's cache of loaded models
(:func:`functools.lru_cache`, the last four, keyed on the model's file and its modification time).
"""

from __future__ import annotations

import functools
import os

from genrekit.checkpoint import resolve_model_path
from genrekit.predictor import Prediction, Predictor


def predict(path: str | os.PathLike, *, model: str | os.PathLike | None = None) -> Prediction:
    """Genres of one audio file with the bundled model (or the checkpoint ``model``).

    The model is loaded on the first call and kept for the next ones: a cache of the last four models
    (by file and modification time, so a rewritten checkpoint is loaded again) is the only state
    genrekit keeps between calls. For many files :meth:`Predictor.predict_files` is faster.

    Parameters
    ----------
    path : str or os.PathLike
        Any audio file (or a Kaggle GTZAN spectrogram PNG, for a model trained on them).
    model : str, os.PathLike or None
        A checkpoint file or a bundled model's name; ``None``: the bundled default model.

    Returns
    -------
    Prediction

    Raises
    ------
    GenrekitError
        The model cannot be loaded, or the file read (:class:`genrekit.AudioError`).

    Examples
    --------
    >>> import genrekit
    >>> result = genrekit.predict("song.mp3")  # doctest: +SKIP
    >>> result.genre, result.top[0]  # doctest: +SKIP
    ('jazz', ('jazz', 0.87))

    A steady tone is no music, so it gets no genre:

    >>> import numpy as np, soundfile as sf, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tone.wav"
    >>> sf.write(path, 0.3 * np.sin(np.arange(22050 * 5) * 2 * np.pi * 440 / 22050), 22050)
    >>> result = genrekit.predict(path)
    >>> result.genre, result.no_music.startswith("steady tones")
    (None, True)
    """
    resolved = resolve_model_path(model)
    key = None if model is None else os.fspath(model)
    return _cached_predictor(key, str(resolved), resolved.stat().st_mtime_ns).predict_file(path)


@functools.lru_cache(maxsize=4)
def _cached_predictor(model: str | None, resolved: str, mtime_ns: int) -> Predictor:
    """:meth:`Predictor.load` of ``model``, kept while ``resolved`` (its file) keeps ``mtime_ns``."""
    return Predictor.load(model)
