"""Decoding audio files into mono float32 signals at a fixed sample rate.

soundfile (libsndfile) reads wav, au, flac, ogg and mp3; anything else (m4a, aac, opus, wma,
video containers...) goes through PyAV (FFmpeg). Decoding is block-wise with a streaming
resampler, so a long file never has to sit in memory whole and the blocks join exactly. Only the
samples a decoder really returns are kept: a header's frame count is never trusted, and memory is
bounded in bytes whatever the header declares (its rate and channel count are capped). A file whose
decoder fails after some audio gives that audio, flagged truncated (:class:`DecodeReport`).
Every failure becomes one :class:`AudioError` that names the file and the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from genrekit.durations import clock
from genrekit.errors import GenrekitError

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


def is_audio_path(path: str | os.PathLike) -> bool:
    """True if the file name has an extension genrekit treats as audio."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "no such file; check the path")
    if path.is_dir():
        raise AudioError(path, "this is a folder, not an audio file")
    if not path.is_file():  # a pipe or a device: opening it could wait, or read forever
        raise AudioError(path, "this is not a regular file (a named pipe, a device or a socket)")
    if path.stat().st_size == 0:
        raise AudioError(path, "the file is empty")


class _StraightSoundFile(sf.SoundFile):
    """A SoundFile read straight through, never seeking.

    soundfile seeks to the current position after every read; inside an MP3 that seek restarts
    mpg123 without its bit reservoir, and the samples after it change (by up to 0.55 on a 0.3-RMS
    signal), so the result would depend on the block size.
    """

    def seekable(self) -> bool:
        return False


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


def _mp4_index_missing(path: Path) -> bool:
    """True for an MP4/M4A whose top-level boxes end without the index ('moov'): cut before it."""
    with open(path, "rb") as f:
        head = f.read(8)
        if head[4:8] != b"ftyp":
            return False
        size, end = int.from_bytes(head[:4], "big"), os.fstat(f.fileno()).st_size
        at = 0
        while size >= 8 and at + 8 <= end:
            at += size
            f.seek(at)
            head = f.read(16)
            if len(head) < 8:
                return True
            if head[4:8] == b"moov":
                return False
            size = int.from_bytes(head[:4], "big")
            if size == 1 and len(head) == 16:  # a 64-bit size follows the type
                size = int.from_bytes(head[8:16], "big")
        return True


def _pyav_blocks(
    path: Path, block_seconds: float, max_duration: float | None, report: DecodeReport
) -> tuple[Iterator[np.ndarray], int, float | None]:
    import av  # lazily: most files never need FFmpeg

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        if _mp4_index_missing(path):
            raise AudioError(
                path,
                "it was cut short before its index (the MP4 'moov' box): nothing of it can be decoded; "
                "copy or download it again",
            ) from None
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


def load_audio(path: str | os.PathLike, *, sr: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
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


def to_mono(y: np.ndarray) -> np.ndarray:
    """A signal in memory as mono float32: ``(n,)`` as it is, ``(n, channels)`` (soundfile's layout)
    or ``(channels, n)`` (librosa's) averaged over its channels.

    Raises
    ------
    GenrekitError
        the signal is empty, has non-finite samples, or its shape is not that of audio
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
