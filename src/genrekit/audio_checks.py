"""What genrekit accepts as audio, and the one error for what it does not.

The limits a file, its header and its samples must keep (a header's rate and channel count are
capped, sample values bounded, a declared length checked against the caller's limit), checked by
the decoders (:mod:`genrekit.audio`, :mod:`genrekit.audio_pyav`, :mod:`genrekit.audio_pieces`)
before and while they decode; :class:`AudioError` names the file and the reason, and
:class:`DecodeReport` says what decoding found. Import these names from :mod:`genrekit.audio`,
which re-exports them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from genrekit.durations import clock
from genrekit.errors import GenrekitError

# libsndfile reports unreadable files with these exception types
_SF_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError)

_NO_RATE = "the file declares no sample rate; re-encode it (e.g. convert it to wav or flac)"

# libsndfile's frame count for a stream of unknown length (SF_COUNT_MAX)
_UNKNOWN_FRAMES = 2**62


# what a header may declare: beyond these no music file goes, and a few bytes could ask for gigabytes
MIN_RATE, MAX_RATE, MAX_CHANNELS = 1000, 384_000, 64
# samples beyond this (60 dB above full scale) are corrupt data, whose spectra would overflow
MAX_ABS_SAMPLE = 1000.0

# the most bytes one decoder read fills (small: a read that meets a cut returns nothing), and one
# mono block holds at the file's rate
_READ_BYTES = 1 << 15
_BLOCK_BYTES = 16 << 20
# a file is truncated when it ends this much before its header says (MP3 headers hold estimates)
_TRUNCATED_SHARE = 0.05
_TRUNCATED_MIN_S = 1.0


@dataclass
class DecodeReport:
    """What decoding a file found, filled in as :func:`stream_audio` goes.

    Attributes
    ----------
    declared_s : the duration the header declares (``None`` when it does not say)
    decoded_s : the seconds of audio really decoded
    truncated : the file ended clearly before its declared duration, or its decoder failed after
        some audio: what decoded is what it holds
    """

    declared_s: float | None = None
    decoded_s: float = 0.0
    truncated: bool = False


class AudioError(GenrekitError):
    """A file could not be decoded as audio."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read audio from '{self.path}': {reason}")

    def __reduce__(self):  # pickled whole, as worker processes send it back
        return type(self), (self.path, self.reason)


def _too_long(path: Path, seconds: float | None, max_duration: float) -> AudioError:
    lasts = f"its header says it lasts {clock(seconds)}, longer" if seconds is not None else "it lasts longer"
    limit = clock(max_duration)
    return AudioError(path, f"{lasts} than the limit of {limit}; raise the limit (--max-duration) to tag it")


def _sf_name(path: Path) -> str | bytes:
    """The file name for libsndfile: bytes on POSIX, since soundfile encodes a str strictly and a
    name that is not valid UTF-8 (held with surrogates) would not encode."""
    return os.fsencode(path) if os.name == "posix" else str(path)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "no such file; check the path")
    if path.is_dir():
        raise AudioError(path, "this is a folder, not an audio file")
    if not path.is_file():  # a pipe or a device: opening it could wait, or read forever
        raise AudioError(path, "this is not a regular file (a named pipe, a device or a socket)")
    if path.stat().st_size == 0:
        raise AudioError(path, "the file is empty")


def _check_shape(path: Path, rate: int, channels: int) -> None:
    """Refuse a header whose rate or channel count no music file has (a header bomb)."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            path,
            f"it declares a sample rate of {rate} Hz, outside the {MIN_RATE}-{MAX_RATE} Hz genrekit reads; "
            "this is not a music file, or re-encode it at 44100 Hz",
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(
            path,
            f"it declares {channels} channels, not 1 to {MAX_CHANNELS}; "
            "this is not a music file, or re-encode it in stereo",
        )


def _check_values(path: Path, data: np.ndarray) -> None:
    """Refuse samples no audio has: NaN, infinities, or levels far beyond full scale."""
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if not peak <= MAX_ABS_SAMPLE:  # NaN fails this too
        shown = "non-finite" if not np.isfinite(peak) else f"absurd (up to {peak:.3g})"
        raise AudioError(path, f"its sample values are {shown}: this is not audio (corrupt data)")


def _corrupt(path: Path, exc: Exception) -> AudioError:
    return AudioError(path, f"the audio data is corrupt or truncated ({exc})")


def _checked_header(path: Path, f: sf.SoundFile, max_duration: float | None) -> float | None:
    """The duration ``f``'s header declares (``None``: it does not say), once its rate, channels and
    length are checked; ``f`` is closed when they are refused.

    Raises
    ------
    AudioError
        a rate or channel count no music has, or a header longer than ``max_duration``
    """
    declared = f.frames / f.samplerate if f.samplerate > 0 and 0 < f.frames < _UNKNOWN_FRAMES else None
    try:
        _check_shape(path, f.samplerate, f.channels)
        if max_duration is not None and declared is not None and declared > max_duration:
            raise _too_long(path, declared, max_duration)
    except AudioError:
        f.close()
        raise
    return declared


def to_mono(y: np.ndarray) -> np.ndarray:
    """A signal in memory as mono float32: ``(n,)`` as it is, ``(n, channels)`` (soundfile's layout)
    or ``(channels, n)`` (librosa's) averaged over its channels.

    Parameters
    ----------
    y : np.ndarray
        Samples in one of those layouts, up to 8 channels.

    Returns
    -------
    np.ndarray
        float32, shape ``(n,)``.

    Raises
    ------
    GenrekitError
        The signal is empty, has non-finite samples, or its shape is not that of audio.

    Examples
    --------
    >>> import numpy as np
    >>> from genrekit.audio import to_mono
    >>> to_mono(np.array([[0.5, -0.5], [1.0, 0.0], [0.0, 0.0]] * 4)).shape  # (n, 2) -> (n,)
    (12,)
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2 and min(y.shape) <= 8 < max(y.shape):
        y = y.mean(axis=1 if y.shape[0] > y.shape[1] else 0)
    if y.ndim != 1:
        raise GenrekitError(f"a signal must be mono (n,) or (n, channels) with up to 8 channels, not {y.shape}")
    if not y.size:
        raise GenrekitError("the signal is empty")
    if not np.all(np.isfinite(y)):
        raise GenrekitError("the signal has non-finite samples (NaN or inf)")
    if np.max(np.abs(y)) > MAX_ABS_SAMPLE:
        raise GenrekitError(f"the signal has samples beyond {MAX_ABS_SAMPLE:g}: this is not audio (scale it to -1..1)")
    return y
