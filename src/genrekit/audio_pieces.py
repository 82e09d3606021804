"""Decoding chosen pieces of a file only: seek to each, decode it and what the decoder needs to settle.

A piece is what decoding the whole file through (:func:`genrekit.audio.stream_audio`) would give
between two times, at the same rate. Each piece is read from a little before its start, on a
sample that falls on both the file's and the target rate's grid, so that the resampler and the
decoder settle before the piece begins (MP3: a few frames of pre-roll, since a frame's samples
depend on the bit reservoir of the ones before; PyAV: the seek lands on an earlier packet, and the
samples before the start are dropped, counted from the first frame's timestamp, which already
excludes the encoder delay). The duration is the container's; the truncation check decodes the
end of the file, and a file whose end cannot be reached, whose duration is unknown or that cannot
seek is streamed through and cut instead.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np
import soundfile as sf
import soxr

from genrekit.audio import SAMPLE_RATE, stream_audio
from genrekit.audio_checks import (
    _SF_ERRORS,
    _TRUNCATED_MIN_S,
    _TRUNCATED_SHARE,
    AudioError,
    DecodeReport,
    _check_path,
    _check_shape,
    _check_values,
    _checked_header,
    _sf_name,
    _too_long,
)
from genrekit.audio_soundfile import _StraightSoundFile

# decoded before a piece and dropped: the resampler's filter settles in well under this
_MARGIN_S = 0.05
# samples libsndfile decodes before a lossy piece: four MP3 frames (the bit reservoir reaches back
# up to ~511 bytes)
_MP3_PREROLL = 4 * 1152
# PyAV seeks this much before a piece: AAC's overlap is one frame, Opus asks for 80 ms of pre-roll
_PYAV_PREROLL_S = 0.25


def truncation_margin_s(declared_s: float) -> float:
    """How much earlier than its header says a file may end before it counts as truncated."""
    return max(_TRUNCATED_MIN_S, _TRUNCATED_SHARE * declared_s)


class _Unseekable(Exception):
    """This file cannot be read piece by piece: stream it through."""


class _SoundfileSource:
    def __init__(self, path: Path, f: sf.SoundFile):
        self.path, self.f, self.rate = path, f, f.samplerate
        self.preroll = _MP3_PREROLL if f.format in ("MP3", "OGG") else 0  # Vorbis overlaps its blocks too

    def read(self, start: int, count: int) -> np.ndarray:
        """Mono samples ``[start, start + count)`` at the file's rate (fewer at its end)."""
        at = max(0, start - self.preroll)
        try:
            sf.SoundFile.seek(self.f, at)
            data = self.f.read(start - at + count, dtype="float32", always_2d=True)
        except _SF_ERRORS as exc:
            raise _Unseekable(str(exc)) from None
        _check_values(self.path, data)
        return data[start - at :].mean(axis=1)

    def close(self) -> None:
        self.f.close()


class _PyavSource:
    def __init__(self, path: Path, container, stream):
        self.path, self.container, self.stream, self.rate = path, container, stream, stream.rate
        if stream.time_base is None or stream.time_base > 1 / stream.rate:  # ASF counts milliseconds
            raise _Unseekable("timestamps coarser than a sample")
        first = next(container.decode(stream), None)
        if first is None or first.pts is None:
            raise _Unseekable("no timestamps")
        self.origin = first.pts  # the first sample the full decode returns (after the encoder delay)

    def read(self, start: int, count: int) -> np.ndarray:
        import av

        tb = self.stream.time_base
        target = self.origin + int((start / self.rate - _PYAV_PREROLL_S) / tb)
        out, end = [], start + count
        try:
            if target <= self.origin:  # a seek to the start does not drop the encoder delay again
                self.container.close()
                self.container = av.open(str(self.path))
                self.stream = self.container.streams.audio[0]
            else:
                self.container.seek(target, stream=self.stream, backward=True)
            resampler = av.AudioResampler(format="flt", rate=self.rate)
            for frame in self.container.decode(self.stream):
                if frame.pts is None:
                    raise _Unseekable("a frame without a timestamp")
                at = round((frame.pts - self.origin) * tb * self.rate)
                if at >= end:
                    break
                for f in resampler.resample(frame):
                    data = f.to_ndarray().reshape(-1, f.layout.nb_channels)
                    _check_values(self.path, data)
                    lo, hi = max(0, start - at), min(len(data), end - at)
                    if hi > lo:
                        out.append(data[lo:hi].mean(axis=1))
                    at += len(data)
        except av.error.FFmpegError as exc:
            raise _Unseekable(str(exc)) from None
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def close(self) -> None:
        self.container.close()


def _open_source(path: Path, max_duration: float | None):
    """A seekable source of ``path`` and its header's duration; :class:`_Unseekable` when it has none."""
    try:
        f = _StraightSoundFile(_sf_name(path))
    except _SF_ERRORS:
        f = None
    if f is not None and f.format != "RAW":
        declared = _checked_header(path, f, max_duration)
        if declared is None or not sf.SoundFile.seekable(f):
            f.close()
            raise _Unseekable("no duration or not seekable")
        return _SoundfileSource(path, f), declared
    if f is not None:
        f.close()
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        raise _Unseekable("not opened by PyAV") from None  # stream_audio names the reason
    try:
        if not container.streams.audio or not container.duration or not container.streams.audio[0].rate:
            raise _Unseekable("no audio stream, duration or rate")
        stream = container.streams.audio[0]
        _check_shape(path, stream.rate, int(getattr(stream.codec_context, "channels", 0) or 1))
        declared = container.duration / 1e6
        if max_duration is not None and declared > max_duration:
            raise _too_long(path, declared, max_duration)
        return _PyavSource(path, container, stream), declared
    except (AudioError, _Unseekable):
        container.close()
        raise
    except av.error.FFmpegError:  # stream_audio names what is wrong with it
        container.close()
        raise _Unseekable("decoding failed") from None


def _resampled_piece(source, start: int, count: int, sr: int) -> np.ndarray:
    """``count`` samples at ``sr`` from sample ``start`` (at ``sr``) of the file decoded through."""
    if source.rate == sr:
        return source.read(start, count)
    g = math.gcd(source.rate, sr)
    step_in, step_out = source.rate // g, sr // g  # the grids meet every step_in / step_out samples
    k = max(0, (start - int(_MARGIN_S * sr)) // step_out)
    first_out = k * step_out
    need = math.ceil((start + count - first_out) * source.rate / sr) + int(_MARGIN_S * source.rate)
    raw = source.read(k * step_in, need)
    y = soxr.resample(raw, source.rate, sr).astype(np.float32) if raw.size else raw
    return y[start - first_out : start - first_out + count]


def _streamed_pieces(
    path: Path, starts: list[int], count: int, sr: int, report: DecodeReport, max_duration: float | None
) -> list[np.ndarray]:
    """The pieces cut from the whole file streamed through (memory: the pieces and one block)."""
    pieces: list[list[np.ndarray]] = [[] for _ in starts]
    at = 0
    for block in stream_audio(path, sr=sr, max_duration=max_duration, report=report):
        for i, s in enumerate(starts):
            lo, hi = max(s, at), min(s + count, at + len(block))
            if hi > lo:
                pieces[i].append(block[lo - at : hi - at])
        at += len(block)
    return [np.concatenate(p) if p else np.zeros(0, np.float32) for p in pieces]


class PieceReader:
    """An open file read piece by piece; close it (or use it as a context manager).

    Parameters
    ----------
    path : any audio file
    sr : the rate pieces are returned at
    max_duration : refuse a file whose header says it is longer than this (``None``: no limit)

    Attributes
    ----------
    declared_s : the duration the container declares, ``None`` when it does not say
    seekable : whether pieces are read by seeking (else the file is streamed through and cut)

    Raises
    ------
    AudioError
        as :func:`genrekit.audio.stream_audio` at its start
    """

    def __init__(self, path: str | os.PathLike, *, sr: int = SAMPLE_RATE, max_duration: float | None = None):
        self.path, self.sr, self.max_duration = Path(path), sr, max_duration
        _check_path(self.path)
        try:
            self.source, self.declared_s = _open_source(self.path, max_duration)
        except _Unseekable:
            self.source, self.declared_s = None, None
        self.seekable = self.source is not None

    def pieces(
        self, *, starts_s: Sequence[float], seconds: float, report: DecodeReport | None = None
    ) -> list[np.ndarray]:
        """The pieces ``[start, start + seconds)``: see :func:`decode_pieces`."""
        report = report if report is not None else DecodeReport()
        starts, count = [round(s * self.sr) for s in starts_s], round(seconds * self.sr)
        if self.source is not None:
            declared = self.declared_s
            report.declared_s = declared
            try:  # the end: a file that ends clearly before its header says is streamed through instead
                end = int((declared - truncation_margin_s(declared)) * self.source.rate)
                if self.source.read(max(0, end - 1), 2).size == 2:
                    pieces = [_resampled_piece(self.source, s, count, self.sr) for s in starts]
                    report.decoded_s, report.truncated = declared, False
                    return pieces
            except _Unseekable:
                pass
            report.declared_s = None  # stream_audio fills it in again
        return _streamed_pieces(self.path, starts, count, self.sr, report, self.max_duration)

    def close(self) -> None:
        if self.source is not None:
            self.source.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode_pieces(
    path: str | os.PathLike,
    *,
    starts_s: Sequence[float],
    seconds: float,
    sr: int = SAMPLE_RATE,
    max_duration: float | None = None,
    report: DecodeReport | None = None,
) -> list[np.ndarray]:
    """The pieces ``[start, start + seconds)`` of ``path``, mono at ``sr``, decoding only them.

    Each is what :func:`genrekit.audio.stream_audio` gives between those times (sample
    ``round(start * sr)`` on; shorter, or empty, past the end of the file).

    Parameters
    ----------
    path : any audio file
    starts_s : where each piece starts, in seconds
    seconds : the length of each piece
    sr : target sample rate
    max_duration : refuse a file whose header says it is longer than this (``None``: no limit)
    report : filled in: ``declared_s`` from the container, ``decoded_s`` the duration the file was
        found to hold (its declared one, once its end was decoded), ``truncated``

    Raises
    ------
    AudioError
        as :func:`genrekit.audio.stream_audio`
    """
    with PieceReader(path, sr=sr, max_duration=max_duration) as reader:
        return reader.pieces(starts_s=starts_s, seconds=seconds, report=report)
