"""Decoding through soundfile (libsndfile): wav, au, flac, ogg and mp3, block by block at the file's
own rate, for :func:`genrekit.audio.stream_audio`.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import numpy as np
import soundfile as sf

from genrekit.audio_checks import _BLOCK_BYTES, _READ_BYTES, _SF_ERRORS, DecodeReport, _check_values, _corrupt


class _StraightSoundFile(sf.SoundFile):
    """A SoundFile read straight through, never seeking.

    soundfile seeks to the current position after every read; inside an MP3 that seek restarts
    mpg123 without its bit reservoir, and the samples after it change (by up to 0.55 on a 0.3-RMS
    signal), so the result would depend on the block size.
    """

    def seekable(self) -> bool:
        return False


def _soundfile_blocks(
    path: Path, f: sf.SoundFile, block_seconds: float, report: DecodeReport
) -> Generator[np.ndarray, None, None]:
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
