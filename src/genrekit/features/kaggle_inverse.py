"""A Kaggle GTZAN image turned back into what the musicnn backbone hears.

An image (:mod:`genrekit.features.kaggle_render`) shows 128 Slaney mel bands of 22050-Hz audio
(n_fft 2048) in 334 columns over 30 s, each column one hop-512 frame sampled every ~3.9 frames,
only the top 40 dB of power, in 256 colour levels. Two routes lead from it to musicnn
embeddings:

- **spectral** (:func:`musicnn_power`, :func:`image_embeddings`): the columns are interpolated
  (in dB) to musicnn's frames (16 kHz, hop 256), the 128-band mel power is spread over the
  frequencies of musicnn's 512-point spectrum (linear interpolation between the band centres,
  which is what a Slaney-normalised band measures: the mean power per bin under it), musicnn's
  96-band filterbank is applied, and the patches go through the backbone exactly as
  :class:`genrekit.features.musicnn.MusicnnStream` patches audio (levelled, ``log_compress``).
- **audio** (:func:`griffin_lim_audio`): the mel power at the images' hop, inverted by
  librosa's NNLS + Griffin-Lim to a 22050-Hz signal, which then takes the normal feature path.

The absolute level is lost in the images (``ref=np.max``); musicnn's front end brings every patch
to one level anyway. :func:`audio_image_embeddings` renders real audio to an image and back, so
the clips that have audio get embeddings of the image domain too.
"""

from __future__ import annotations

import functools

import numpy as np

from genrekit.errors import GenrekitError
from genrekit.features.kaggle_render import (
    BOX_SHAPE,
    DB_MAX,
    DB_MIN,
    DB_STEP,
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    SR,
    _mesh_pixels,
    band_rows,
    render_matrix,
)
from genrekit.features.logmel import _hz_to_mel, _mel_to_hz, mel_filterbank
from genrekit.features.musicnn import MusicnnConfig, MusicnnStream

CLIP_SECONDS = 30.0  # an image spans one 30-s GTZAN clip (the exact length, 30.0-30.6 s, is not shown)
MUSICNN_SR = 16000
MUSICNN_N_FFT = 512
MUSICNN_HOP = 256
MUSICNN_BANDS = 96
IMAGE_SHAPE = (N_MELS, BOX_SHAPE[1])
FLOOR_DB = -120.0  # chosen on the audio/image pairs (benchmarks/kaggle_inverse.py), 20 log10 of the power ratio
LEVEL_DB = -7.0  # musicnn's patch level (MusicnnConfig.level_db), the median GTZAN patch's  # the matrix of kaggle_image.image_features: one row per band


def check_image_db(*, db: np.ndarray) -> np.ndarray:
    """``db`` as float32 if it is a decoded Kaggle image matrix, else one clear error.

    Parameters
    ----------
    db : the ``(128, 334)`` dB matrix of :func:`genrekit.features.kaggle_image.image_features`

    Raises
    ------
    GenrekitError
        ``db`` has another shape, or values outside the images' -80..0 dB
    """
    db = np.asarray(db)
    if db.shape != IMAGE_SHAPE:
        raise GenrekitError(
            f"a Kaggle image matrix is {IMAGE_SHAPE} (128 mel bands x 334 columns, from "
            f"kaggle_image.image_features), got shape {db.shape}"
        )
    db = db.astype(np.float32)
    if not np.all(np.isfinite(db)) or db.min() < DB_MIN or db.max() > DB_MAX:
        raise GenrekitError(
            f"a Kaggle image matrix holds dB values in [{DB_MIN:g}, {DB_MAX:g}]; got values from "
            f"{np.nanmin(db):g} to {np.nanmax(db):g} (decode the PNG with kaggle_image.image_features)"
        )
    return db


@functools.lru_cache(maxsize=4)
def column_times(*, seconds: float = CLIP_SECONDS) -> np.ndarray:
    """The time (s) of the hop-512 frame each of the 334 image columns shows, for a clip of ``seconds``."""
    n_frames = 1 + int(seconds * SR) // HOP_LENGTH
    frames = _mesh_pixels(np.tile(np.arange(n_frames, dtype=np.float64), (N_MELS, 1)))[0, 1:]
    times = frames * HOP_LENGTH / SR
    times.flags.writeable = False  # cached: shared by every caller
    return times


@functools.lru_cache(maxsize=1)
def band_map() -> np.ndarray:
    """``(96, 128)``: musicnn's mel power from the images' 128-band mel power.

    Each frequency of musicnn's 512-point spectrum gets the power interpolated between the centres
    of the images' bands around it (below the first centre: the first band), then musicnn's
    filterbank sums them.
    """
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SR / 2), N_MELS + 2))
    centres = edges[1:-1]
    freqs = np.linspace(0, MUSICNN_SR / 2, 1 + MUSICNN_N_FFT // 2)
    spread = np.stack([np.interp(freqs, centres, row) for row in np.eye(N_MELS)], axis=1)  # (257, 128)
    fb = mel_filterbank(sample_rate=MUSICNN_SR, n_fft=MUSICNN_N_FFT, n_mels=MUSICNN_BANDS)
    out = (fb @ spread).astype(np.float32)
    out.flags.writeable = False
    return out


def _mel_power(*, db: np.ndarray, floor_db: float, seconds: float, sr: int, hop: int) -> np.ndarray:
    """The image's 128-band mel power at the centred frames of ``hop`` samples at ``sr`` (its dB
    columns checked, floored and interpolated per band, in dB, to those frames' times)."""
    db = floored(db=check_image_db(db=db), floor_db=floor_db)
    times = np.arange(1 + int(seconds * sr) // hop) * hop / sr
    cols = column_times(seconds=seconds)
    frames = np.stack([np.interp(times, cols, row) for row in db]).astype(np.float32)
    return 10.0 ** (frames / 20.0)  # the images show amplitude_to_db of *power*: 20 log10


def musicnn_power(
    *, db: np.ndarray, seconds: float = CLIP_SECONDS, floor_db: float = FLOOR_DB, level_db: float = LEVEL_DB
) -> np.ndarray:
    """musicnn's mel power ``(96, frames)`` at 16 kHz / hop 256 from a Kaggle image matrix.

    Parameters
    ----------
    db : the ``(128, 334)`` dB matrix of :func:`genrekit.features.kaggle_image.image_features`
    seconds : the clip length the image spans
    floor_db : the value (on the images' scale) given to cells of the lowest colour, which stand
        for everything 40 dB or more below the clip's peak power
    level_db : the clip's mean mel power (dB), as a GTZAN clip's typically is: musicnn's front end
        raises a quiet patch by at most 20 dB, so the image's relative level (peak 0 dB) would
        leave most patches too quiet

    Returns
    -------
    np.ndarray, float32, shape ``(96, 1 + seconds * 16000 // 256)``
        The power as musicnn's centred frames count them.

    Raises
    ------
    GenrekitError
        ``db`` is not a decoded Kaggle image matrix
    """
    mel = _mel_power(db=db, floor_db=floor_db, seconds=seconds, sr=MUSICNN_SR, hop=MUSICNN_HOP)
    power = band_map() @ mel
    return (power * (10 ** (level_db / 10) / max(float(power.mean()), 1e-30))).astype(np.float32)


def floored(*, db: np.ndarray, floor_db: float) -> np.ndarray:
    """``db`` with the cells of the images' lowest colour (40 dB of power or more below the peak) at ``floor_db``."""
    return np.where(db < DB_MIN + DB_STEP, np.float32(floor_db), db).astype(np.float32)


def image_embeddings(
    *, db: np.ndarray, config: MusicnnConfig | None = None, embed=None, seconds: float = CLIP_SECONDS
) -> np.ndarray:
    """musicnn embedding frames ``(n_bins, patches)`` of a Kaggle image matrix (the spectral route).

    Parameters
    ----------
    db : the ``(128, 334)`` dB matrix of :func:`genrekit.features.kaggle_image.image_features`
    config : the musicnn features (default: the default ones)
    embed : log-mel patches → embeddings (default: the torch backbones of ``config``)
    seconds : the clip length the image spans

    Returns
    -------
    np.ndarray, float32: one frame per 3-s patch, as :class:`MusicnnStream` gives for audio

    Raises
    ------
    GenrekitError
        ``db`` is not a decoded Kaggle image matrix
    """
    stream = MusicnnStream(config or MusicnnConfig(), embed=embed)
    return stream.embed_power(musicnn_power(db=db, seconds=seconds))


def audio_image_embeddings(*, y: np.ndarray, sr: int, config: MusicnnConfig | None = None, embed=None) -> np.ndarray:
    """musicnn embedding frames of real audio seen through a Kaggle image (rendered, then inverted).

    Parameters
    ----------
    y : mono audio of about 30 s
    sr : its sample rate
    config, embed : as :func:`image_embeddings`

    Returns
    -------
    np.ndarray, float32, ``(n_bins, patches)``: the image domain's embeddings of ``y``
    """
    db = render_matrix(np.asarray(y, dtype=np.float32), sr)[band_rows()]
    return image_embeddings(db=db, config=config, embed=embed, seconds=CLIP_SECONDS)


def griffin_lim_audio(*, db: np.ndarray, n_iter: int = 32, seconds: float = CLIP_SECONDS) -> np.ndarray:
    """22050-Hz audio whose mel spectrogram is the image's (the audio route): NNLS + Griffin-Lim.

    Parameters
    ----------
    db : the ``(128, 334)`` dB matrix of :func:`genrekit.features.kaggle_image.image_features`
    n_iter : Griffin-Lim iterations
    seconds : the clip length the image spans

    Returns
    -------
    np.ndarray, float32, ``(n,)`` at :data:`SR` (relative level)

    Raises
    ------
    GenrekitError
        ``db`` is not a decoded Kaggle image matrix
    """
    import librosa

    power = _mel_power(db=db, floor_db=FLOOR_DB, seconds=seconds, sr=SR, hop=HOP_LENGTH)
    y = librosa.feature.inverse.mel_to_audio(
        power, sr=SR, n_fft=N_FFT, hop_length=HOP_LENGTH, n_iter=n_iter, length=int(seconds * SR)
    )
    return (y / max(float(np.abs(y).max()), 1e-9) * 0.5).astype(np.float32)
