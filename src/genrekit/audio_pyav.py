"""Decoding through PyAV (FFmpeg): the formats libsndfile does not read (m4a, aac, opus, wma,
video containers...), block by block at the file's own rate, for :func:`genrekit.audio.stream_audio`.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import numpy as np

from genrekit.audio_checks import (
    _BLOCK_BYTES,
    _NO_RATE,
    AudioError,
    DecodeReport,
    _check_shape,
    _check_values,
    _corrupt,
    _too_long,
)


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
) -> tuple[Generator[np.ndarray, None, None], int, float | None]:
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

    def blocks() -> Generator[np.ndarray, None, None]:
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
