"""Cutting feature frames into the fixed windows a model reads: one generator for every use.

Evaluation and prediction take windows on a grid (:func:`stream_windows`, streamed;
:func:`cut_windows`, a whole matrix), training takes them at random starts (:func:`pad_frames`
makes every track at least one window long first). A track shorter than one window is padded
with its own minimum, so padding reads as the quietest part of the track.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np


def window_starts(n_frames: int, *, size: int, hop: int) -> np.ndarray:
    """Start frames of the windows covering ``n_frames`` frames.

    A track shorter than one window gets one (padded) window; the last window is aligned to the
    end of the track so that no tail longer than one hop is left out.
    """
    if n_frames <= size:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_frames - size + 1, hop)
    if starts[-1] + size < n_frames:
        starts = np.append(starts, n_frames - size)
    return starts


def pad_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """``frames`` (bins, n) padded on the right with their minimum to at least ``size`` frames."""
    if frames.shape[1] >= size:
        return frames
    fill = frames.min() if frames.size else 0.0
    out = np.full((frames.shape[0], size), fill, dtype=frames.dtype)
    out[:, : frames.shape[1]] = frames
    return out


def stream_windows(frame_blocks: Iterable[np.ndarray], *, size: int, hop: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start frame, window)`` over a stream of (bins, k) frame blocks.

    The windows are exactly those :func:`window_starts` places on the whole matrix; only the
    frames a later window still needs are kept, so memory does not grow with the stream.
    """
    buf, buf_start, total, next_start, last_start = None, 0, 0, 0, None
    for block in frame_blocks:
        buf = block if buf is None else np.concatenate([buf, block], axis=1)
        total += block.shape[1]
        while next_start + size <= total:
            yield next_start, buf[:, next_start - buf_start : next_start - buf_start + size]
            last_start, next_start = next_start, next_start + hop
        keep_from = min(next_start, total - size)  # the end-aligned last window may need older frames
        if keep_from > buf_start:
            buf, buf_start = buf[:, keep_from - buf_start :], keep_from
    if total == 0:
        return
    if last_start is None:
        yield 0, pad_frames(buf, size)
    elif last_start + size < total:
        yield total - size, buf[:, total - size - buf_start : total - buf_start]


def cut_windows(frames: np.ndarray, *, size: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """All windows of a whole (bins, n) matrix: (start frames, windows (n_windows, bins, size))."""
    starts, windows = zip(*stream_windows([frames], size=size, hop=hop)) if frames.shape[1] else ((), ())
    if not starts:
        return np.zeros(0, np.int64), np.zeros((0, frames.shape[0], size), frames.dtype)
    return np.array(starts), np.stack(windows)


@dataclass
class WindowProbabilities:
    """Class probabilities of each window of one input."""

    starts: np.ndarray  # (n_windows,) start frame of each window
    probabilities: np.ndarray  # (n_windows, n_classes), rows sum to 1
    n_samples: int  # audio samples read (0 for a feature matrix)
    n_frames: int  # feature frames computed

    @property
    def mean(self) -> np.ndarray:
        """The input's probabilities: the mean over its windows."""
        return self.probabilities.mean(axis=0)
