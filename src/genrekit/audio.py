"""Decoding audio files into mono float32 signals at a fixed sample rate.

soundfile (libsndfile) reads wav, au, flac, ogg and mp3; anything else (m4a, aac, opus, wma,
video containers...) goes through PyAV (FFmpeg). Decoding is block-wise with a streaming
resampler, so a long file never has to sit in memory whole and the blocks join exactly. Only the
samples a decoder really returns are kept: a header's frame count is never trusted, and memory is
bounded in bytes whatever the header declares (its rate and channel count are capped). A file whose
decoder fails after some audio gives that audio, flagged truncated (:class:`DecodeReport`).
Every failure becomes one :class:`AudioError` that names the file and the reason.

The limits a file must keep and the error live in :mod:`genrekit.audio_checks`; every public
name of both is imported from here.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
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
    _check_shape,
    _check_values,
    _checked_header,
    _corrupt,
    _mp4_index_missing,
    _sf_name,
    _too_long,
    to_mono,
)
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
    ".wav .wave .au .snd .aif .aiff .aifc .flac .ogg .oga .mp3 .m4a .mp4 .aac .opus .wma .webm "
    ".mka .mkv .caf .ac3 .amr .3gp .mov .wv .ape .mpc .dsf".split()
)

# the most bytes one decoder read fills (small: a read that meets a cut returns nothing), and one
# mono block holds at the file's rate
_READ_BYTES = 1 << 15
_BLOCK_BYTES = 16 << 20


def is_audio_path(path: str | os.PathLike) -> bool:
    """True if the file name has an extension genrekit treats as audio."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


class _StraightSoundFile(sf.SoundFile):
    """A SoundFile read straight through, never seeking.

    soundfile seeks to the current position after every read; inside an MP3 that seek restarts
    mpg123 without its bit reservoir, and the samples after it change (by up to 0.55 on a 0.3-RMS
    signal), so the result would depend on the block size.
    """

    def seekable(self) -> bool:
        return False


def _soundfile_blocks(path: Path, f: sf.SoundFile, block_seconds: float, report: DecodeReport) -> Iterator[np.ndarray]:
    # Never trust the declared frame count: an MP3's is an estimate and a truncated file's is the
    # length it once had. Keep what each read really returned, and stop at the first empty read.
    # Reads are sized in bytes (libsndfile fills every frame asked for, whatever the channel count),
    # and small, so that a decoder error at a cut loses little of what came before it.
    target = max(1, min(int(block_seconds * f.samplerate), _BLOCK_BYTES // 4))
    buf = np.empty((max(1, min(target, _READ_BYTES // (4 * f.channels))), f.channels), np.float32)
    pending: list[np.ndarray] = []
    held = decoded = 0
    with f:
        while True:
            try:
                data = f.read(out=buf)  # a view of the frames this read filled, not of buf's stale rest
            except _SF_ERRORS as exc:
                if not decoded:
                    raise _corrupt(path, exc) from None
                report.truncated = True  # cut short: what decoded is what the file holds
                break
            if not len(data):
                break
            _check_values(path, data)
            pending.append(data.mean(axis=1))
            held, decoded = held + len(data), decoded + len(data)
            if held >= target:
                yield np.concatenate(pending)
                pending, held = [], 0
    if pending:
        yield np.concatenate(pending)


def _mono(path: Path, frame) -> np.ndarray:
    """Average the channels of a packed float frame (its own layout, not the stream's declared one)."""
    data = frame.to_ndarray().reshape(-1, frame.layout.nb_channels)
    _check_values(path, data)
    return data.mean(axis=1)


def _pyav_blocks(
    path: Path, block_seconds: float, max_duration: float | None, report: DecodeReport
) -> tuple[Iterator[np.ndarray], int, float | None]:
    import av  # lazily: most files never need FFmpeg

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        if _mp4_index_missing(path):
            raise AudioError(
                path, "it was cut short before its index (the MP4 'moov' box): nothing of it can be decoded; "
                "copy or download it again",
            ) from None  # fmt: skip
        raise AudioError(path, f"not a recognised audio format ({exc.__class__.__name__})") from None
    if not container.streams.audio:
        container.close()
        raise AudioError(path, "the file holds no audio stream")
    stream = container.streams.audio[0]
    # PyAV leaves out ``rate`` of a stream whose header it cannot read (a WAV of 0-bit samples)
    rate = stream.rate if hasattr(stream, "rate") else getattr(stream.codec_context, "sample_rate", None)
    if rate is None or rate <= 0:
        container.close()
        raise AudioError(path, _NO_RATE)
    try:
        _check_shape(path, rate, int(getattr(stream.codec_context, "channels", 0) or 1))
    except AudioError:
        container.close()
        raise
    declared = container.duration / 1e6 if container.duration else None
    if max_duration is not None and declared is not None and declared > max_duration:
        container.close()
        raise _too_long(path, declared, max_duration)

    def blocks() -> Iterator[np.ndarray]:
        resampler = av.AudioResampler(format="flt", rate=rate)  # packed, the file's own layout
        pending: list[np.ndarray] = []
        target = max(1, min(int(block_seconds * rate), _BLOCK_BYTES // 4))
        held = decoded = 0
        with container:
            try:
                for frame in container.decode(stream):
                    for f in resampler.resample(frame):
                        pending.append(_mono(path, f))
                        held, decoded = held + pending[-1].size, decoded + pending[-1].size
                    if held >= target:
                        yield np.concatenate(pending)
                        pending, held = [], 0
                pending += [_mono(path, f) for f in resampler.resample(None)]
            except av.error.FFmpegError as exc:
                if not decoded:
                    raise _corrupt(path, exc) from None
                report.truncated = True  # cut short: what decoded is what the file holds
        if pending:
            yield np.concatenate(pending)

    return blocks(), rate, declared


def _open_blocks(
    path: Path, block_seconds: float, max_duration: float | None, report: DecodeReport
) -> tuple[Iterator[np.ndarray], int, float | None]:
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
) -> Iterator[np.ndarray]:
    """Decode ``path`` block by block, mono at ``sr`` Hz.

    Concatenating the blocks gives exactly :func:`load_audio`'s result.

    Parameters
    ----------
    path : path of any audio file
    sr : target sample rate; other rates are resampled with soxr
    block_seconds : approximate length of each block
    max_seconds : stop after this many seconds (``None``: whole file)
    max_duration : refuse a file longer than this many seconds (``None``: no limit): one whose header
        says so at once, any other as soon as the audio decoded (at ``sr``) passes the limit
    timeout_s : refuse a file once this many seconds have passed since the call, checked between
        blocks, so that the time the caller spends on each block counts too (``None``: no limit)
    report : filled in with the header's duration, the seconds decoded and whether the file ended
        clearly before its header says (see :class:`DecodeReport`)

    Yields
    ------
    np.ndarray, float32, 1-D

    Raises
    ------
    AudioError
        the file is missing, empty, truncated, corrupt, not audio, declares no sample rate, is longer
        than ``max_duration`` or takes longer than ``timeout_s``
    """
    start = time.monotonic()
    path = Path(path)
    _check_path(path)
    report = report if report is not None else DecodeReport()
    blocks, orig_sr, declared = _open_blocks(path, block_seconds, max_duration, report)
    report.declared_s = declared
    resampler = None if orig_sr == sr else soxr.ResampleStream(orig_sr, sr, 1, dtype="float32")
    limit = None if max_seconds is None else int(round(max_seconds * sr))
    most = None if max_duration is None else int(np.ceil(max_duration * sr))
    emitted = 0

    def checked(block: np.ndarray) -> np.ndarray:
        if limit is not None:
            block = block[: limit - emitted]
        if most is not None and emitted + block.size > most:
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


def load_audio(
    path: str | os.PathLike, *, sr: int = SAMPLE_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Load an audio file as a mono float32 signal at ``sr`` Hz.

    Parameters
    ----------
    path : path of a wav, au, flac, ogg, mp3, m4a, aac, opus, wma... file
    sr : target sample rate; other rates are resampled with soxr
    max_seconds : stop decoding after this many seconds (``None``: whole file)

    Returns
    -------
    np.ndarray, float32, shape (n_samples,)
        the samples the file really holds: a WAV or MP3 cut short gives its intact beginning

    Raises
    ------
    AudioError
        the file is missing, empty, truncated, corrupt, not audio or declares no sample rate
    """
    return np.concatenate(list(stream_audio(path, sr=sr, max_seconds=max_seconds)))


def duration_seconds(path: str | os.PathLike) -> float | None:
    """Duration read from the file header, or ``None`` when the header does not say."""
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
    """``y`` (mono) from ``sr`` to ``target_sr`` Hz with soxr, float32."""
    if sr <= 0:
        raise GenrekitError(f"the sample rate must be positive, not {sr}")
    return y if sr == target_sr else soxr.resample(y, sr, target_sr).astype(np.float32)


def probe_audio(path: str | os.PathLike, *, max_duration: float | None = None) -> DecodeReport:
    """Check a file as :func:`stream_audio` does and decode its first moment, whatever its length:
    a cheap test that it is audio, and its header's duration (``declared_s``, ``None`` when the
    header does not say).

    Raises
    ------
    AudioError
        as :func:`stream_audio` would at its start
    """
    report = DecodeReport()
    blocks = stream_audio(path, block_seconds=0.1, max_duration=max_duration, report=report)
    try:
        next(blocks)
    finally:
        blocks.close()
    return report
