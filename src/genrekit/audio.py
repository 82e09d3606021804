"""Decoding audio files into mono float32 signals at a fixed sample rate.

soundfile (libsndfile) reads wav, au, flac, ogg and mp3; anything else (m4a, aac, opus, wma,
video containers...) goes through PyAV (FFmpeg). Decoding is block-wise with a streaming
resampler, so a long file never has to sit in memory whole and the blocks join exactly. Only the
samples a decoder really returns are kept: a header's frame count is never trusted, and memory is
bounded in bytes whatever the header declares (its rate and channel count are capped). A file whose
decoder fails after some audio gives that audio, flagged truncated (:class:`DecodeReport`).
Every failure becomes one :class:`AudioError` that names the file and the reason.

The limits a file must keep and the error live in :mod:`genrekit.audio_checks`, the libsndfile path in
:mod:`genrekit.audio_soundfile`, the FFmpeg path in :mod:`genrekit.audio_pyav`; every public name is
imported from here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from genrekit.audio_checks import (
    _NO_RATE,
    _SF_ERRORS,
    _TRUNCATED_MIN_S,
    _TRUNCATED_SHARE,
    MAX_ABS_SAMPLE,
    MAX_CHANNELS,
    MAX_RATE,
    MIN_RATE,
    AudioError,
    DecodeReport,
    _check_path,
    _checked_header,
    _corrupt,
    _sf_name,
    _too_long,
    to_mono,
)
from genrekit.audio_pyav import _pyav_blocks
from genrekit.audio_soundfile import _soundfile_blocks, _StraightSoundFile
from genrekit.errors import GenrekitError

# the public names, with those defined in genrekit.audio_checks (the limits and the errors)
__all__ = [
    "AUDIO_EXTENSIONS",
    "MAX_ABS_SAMPLE",
    "MAX_CHANNELS",
    "MAX_RATE",
    "MIN_RATE",
    "SAMPLE_RATE",
    "AudioError",
    "DecodeReport",
    "GenrekitError",
    "duration_seconds",
    "is_audio_path",
    "load_audio",
    "probe_audio",
    "resample",
    "stream_audio",
    "to_mono",
]

SAMPLE_RATE = 22050

AUDIO_EXTENSIONS = frozenset(
    [
        ".wav",
        ".wave",
        ".au",
        ".snd",
        ".aif",
        ".aiff",
        ".aifc",
        ".flac",
        ".ogg",
        ".oga",
        ".mp3",
        ".m4a",
        ".mp4",
        ".aac",
        ".opus",
        ".wma",
        ".webm",
        ".mka",
        ".mkv",
        ".caf",
        ".ac3",
        ".amr",
        ".3gp",
        ".mov",
        ".wv",
        ".ape",
        ".mpc",
        ".dsf",
    ]
)


def is_audio_path(path: str | os.PathLike) -> bool:
    """True if the file name has an extension genrekit treats as audio (the file is not opened).

    Examples
    --------
    >>> from genrekit.audio import is_audio_path
    >>> is_audio_path("Song.MP3"), is_audio_path("cover.jpg")
    (True, False)
    """
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def _open_blocks(
    path: Path, block_seconds: float, max_duration: float | None, report: DecodeReport
) -> tuple[Generator[np.ndarray, None, None], int, float | None]:
    """The blocks of ``path`` at its own rate, that rate and the header's duration; a header longer
    than ``max_duration``, or with a rate or channel count no music has, is refused before decoding."""
    try:
        f = _StraightSoundFile(_sf_name(path))
    except _SF_ERRORS:
        return _pyav_blocks(path, block_seconds, max_duration, report)
    if f.format == "RAW":  # libsndfile reads any headerless .au/.snd as raw 8 kHz audio
        f.close()
        return _pyav_blocks(path, block_seconds, max_duration, report)
    if f.samplerate <= 0:
        f.close()
        raise AudioError(path, _NO_RATE)
    declared = _checked_header(path, f, max_duration)
    return _soundfile_blocks(path, f, block_seconds, report), f.samplerate, declared


def stream_audio(
    path: str | os.PathLike,
    *,
    sr: int = SAMPLE_RATE,
    block_seconds: float = 30.0,
    max_seconds: float | None = None,
    max_duration: float | None = None,
    timeout_s: float | None = None,
    report: DecodeReport | None = None,
) -> Generator[np.ndarray, None, None]:
    """Decode ``path`` block by block, mono at ``sr`` Hz.

    Concatenating the blocks gives exactly :func:`load_audio`'s result.

    Parameters
    ----------
    path : str or os.PathLike
        Any audio file.
    sr : int
        Target sample rate; other rates are resampled with soxr.
    block_seconds : float
        Approximate length of each block.
    max_seconds : float or None
        Stop after this many seconds (``None``: the whole file).
    max_duration : float or None
        Refuse a file longer than this many seconds (``None``: no limit): one whose header says so
        at once, any other as soon as the audio decoded (at ``sr``) passes the limit.
    timeout_s : float or None
        Refuse a file once this many seconds have passed since the call, checked between blocks,
        so that the time the caller spends on each block counts too (``None``: no limit).
    report : DecodeReport or None
        Filled in with the header's duration, the seconds decoded and whether the file ended
        clearly before its header says.

    Yields
    ------
    np.ndarray
        float32, 1-D: the next block of samples.

    Raises
    ------
    AudioError
        The file is missing, empty, truncated, corrupt, not audio, declares no sample rate, is
        longer than ``max_duration`` or takes longer than ``timeout_s``.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, pathlib
    >>> from genrekit.audio import stream_audio
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tone.wav"
    >>> sf.write(path, np.sin(np.arange(44100 * 3) / 10).astype(np.float32), 44100)
    >>> blocks = list(stream_audio(path, sr=22050, block_seconds=1.0))
    >>> sum(len(b) for b in blocks)
    66150
    """
    start = time.monotonic()
    path = Path(path)
    _check_path(path)
    report = report if report is not None else DecodeReport()
    blocks, orig_sr, declared = _open_blocks(path, block_seconds, max_duration, report)
    report.declared_s = declared
    resampler = None if orig_sr == sr else soxr.ResampleStream(orig_sr, sr, 1, dtype="float32")
    limit = None if max_seconds is None else round(max_seconds * sr)
    most = None if max_duration is None else int(np.ceil(max_duration * sr))
    emitted = 0

    def checked(block: np.ndarray) -> np.ndarray:
        if limit is not None:
            block = block[: limit - emitted]
        if most is not None and max_duration is not None and emitted + block.size > most:
            raise _too_long(path, None, max_duration)
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            took = f"it took longer than {timeout_s:g} s to decode"
            raise AudioError(path, f"{took}; raise the limit (--file-timeout) to tag it")
        return block

    try:
        for block in blocks:
            if resampler is not None:
                block = resampler.resample_chunk(np.ascontiguousarray(block, dtype=np.float32))
            block = checked(block)
            if block.size:
                emitted += block.size
                report.decoded_s = emitted / sr
                yield block
            if limit is not None and emitted >= limit:
                return
        if resampler is not None:
            tail = checked(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
            if tail.size:
                emitted += tail.size
                report.decoded_s = emitted / sr
                yield tail
    except _SF_ERRORS as exc:
        raise _corrupt(path, exc) from None
    finally:
        blocks.close()  # a file refused or left early is closed now, not when collected
    if emitted == 0:
        raise AudioError(path, "it contains no audio samples")
    if limit is None and declared is not None:
        short = declared - report.decoded_s > max(_TRUNCATED_MIN_S, _TRUNCATED_SHARE * declared)
        report.truncated = report.truncated or short


def load_audio(path: str | os.PathLike, *, sr: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """Load an audio file as a mono float32 signal at ``sr`` Hz.

    Unlike ``librosa.load``, which returns ``(y, sr)``, this returns ``y`` only: its rate is the
    ``sr`` asked for (22050 Hz by default), whatever the file's own.

    Parameters
    ----------
    path : str or os.PathLike
        A wav, au, flac, ogg, mp3, m4a, aac, opus, wma... file.
    sr : int
        Target sample rate; other rates are resampled with soxr.
    max_seconds : float or None
        Stop decoding after this many seconds (``None``: the whole file).

    Returns
    -------
    np.ndarray
        float32, shape ``(n_samples,)``: the samples the file really holds (a WAV or MP3 cut short
        gives its intact beginning).

    Raises
    ------
    AudioError
        The file is missing, empty, truncated, corrupt, not audio or declares no sample rate.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, pathlib
    >>> import genrekit
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tone.wav"
    >>> sf.write(path, np.sin(np.arange(44100 * 2) / 10).astype(np.float32), 44100)
    >>> y = genrekit.load_audio(path)  # y only, at 22050 Hz
    >>> y.dtype, y.shape
    (dtype('float32'), (44100,))
    >>> genrekit.load_audio(path, sr=16000, max_seconds=1.0).shape
    (16000,)
    """
    return np.concatenate(list(stream_audio(path, sr=sr, max_seconds=max_seconds)))


def duration_seconds(path: str | os.PathLike) -> float | None:
    """Duration read from the file header, or ``None`` when the header does not say.

    Parameters
    ----------
    path : str or os.PathLike
        Any file; one that cannot be read gives ``None``.

    Returns
    -------
    float or None
    """
    try:
        return sf.info(_sf_name(Path(path))).duration
    except _SF_ERRORS:
        pass
    try:
        import av

        with av.open(str(path)) as c:
            return c.duration / 1e6 if c.duration else None
    except Exception:  # noqa: BLE001 - any failure means "unknown"
        return None


def resample(y: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """``y`` (mono) from ``sr`` to ``target_sr`` Hz with soxr, float32.

    Parameters
    ----------
    y : np.ndarray
        A mono signal at ``sr`` Hz.
    sr : int
        Its sample rate.
    target_sr : int
        The rate wanted.

    Returns
    -------
    np.ndarray
        float32; ``y`` itself when the rates are equal.

    Raises
    ------
    GenrekitError
        ``sr`` is not positive.
    """
    if sr <= 0:
        raise GenrekitError(f"the sample rate must be positive, not {sr}")
    return y if sr == target_sr else soxr.resample(y, sr, target_sr).astype(np.float32)


def probe_audio(path: str | os.PathLike, *, max_duration: float | None = None) -> DecodeReport:
    """Check a file as :func:`stream_audio` does and decode its first moment, whatever its length:
    a cheap test that it is audio, and its header's duration.

    Parameters
    ----------
    path : str or os.PathLike
        Any audio file.
    max_duration : float or None
        Refuse a file whose header says it is longer than this many seconds.

    Returns
    -------
    DecodeReport
        ``declared_s`` is the header's duration (``None`` when the header does not say).

    Raises
    ------
    AudioError
        As :func:`stream_audio` would at its start.
    """
    report = DecodeReport()
    blocks = stream_audio(path, block_seconds=0.1, max_duration=max_duration, report=report)
    try:
        next(blocks)
    finally:
        blocks.close()
    return report
