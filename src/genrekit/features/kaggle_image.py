"""The ``kaggle-image`` feature kind: what a Kaggle GTZAN spectrogram image shows, read from its PNG
or rendered from audio exactly as the images were made.

The rendering and decoding of the images' pixels live in :mod:`genrekit.features.kaggle_render`;
every public name of it is imported from here too. A folder of album covers is scanned
(:func:`is_kaggle_image`, from the PNG header) without librosa, matplotlib or Pillow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from genrekit.errors import GenrekitError
from genrekit.features import FeatureConfig, peak_normalize
from genrekit.features.kaggle_render import (
    BOX_COLS,
    BOX_ROWS,
    BOX_SHAPE,
    DB_MAX,
    DB_MIN,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    N_MELS,
    SR,
    band_rows,
    decode_image,
    png_size,
    render_image,
    render_matrix,
    save_png,
)

__all__ = [
    "BOX_COLS",
    "BOX_ROWS",
    "BOX_SHAPE",
    "CLIP_SECONDS",
    "DB_MAX",
    "DB_MIN",
    "IMAGE_HEIGHT",
    "IMAGE_WIDTH",
    "SR",
    "KaggleImageConfig",
    "KaggleImageStream",
    "band_rows",
    "decode_image",
    "image_features",
    "is_kaggle_image",
    "png_size",
    "render_image",
    "render_matrix",
    "save_png",
]

CLIP_SECONDS = 30.0  # each image shows one 30-s GTZAN clip across its width


@dataclass(frozen=True)
class KaggleImageConfig(FeatureConfig):
    """``kaggle-image``: the (128, 334) matrix a Kaggle GTZAN image shows, one row per mel band.

    Read from a PNG (:func:`image_features`) or rendered from audio exactly as the images were
    made, so a model trained on the 999 images classifies real audio. Its spectrogram
    parameters are the images' own and cannot be changed; windows are scaled to their peak over
    ``top_db`` dB.
    """

    kind = "kaggle-image"
    sample_rate = SR
    reads_images = True

    top_db: float = 80.0

    @property
    def n_bins(self) -> int:
        return N_MELS

    @property
    def frames_per_second(self) -> float:
        return BOX_SHAPE[1] / CLIP_SECONDS

    def stream(self) -> KaggleImageStream:
        return KaggleImageStream()

    def normalize(self, windows):
        return peak_normalize(windows, self.top_db)


def _piece_features(piece: np.ndarray) -> np.ndarray:
    """Features of at most ~31 s of audio at 22050 Hz, with the images' time scale.

    A GTZAN-length piece (30 to 31 s) is rendered whole, as the images were. A shorter one is
    padded with silence to 30 s and its padded columns are dropped, so that every column spans
    30 s / 334 whatever the length of the audio.
    """
    clip = int(CLIP_SECONDS * SR)
    if len(piece) >= clip:
        return render_matrix(piece, SR)[band_rows()]
    keep = max(1, int(np.ceil(len(piece) / clip * BOX_SHAPE[1])))
    return render_matrix(np.pad(piece, (0, clip - len(piece))), SR)[band_rows()][:, :keep]


class KaggleImageStream:
    """Kaggle-image columns of a stream of 22050-Hz blocks.

    Audio up to ~31 s is rendered whole (a GTZAN clip, as the images were); longer audio in
    30-s pieces, the last one shorter.
    """

    def __init__(self):
        self.clip = int(CLIP_SECONDS * SR)
        self.buffer = np.zeros(0, np.float32)
        self.cut_any = False

    def _pieces(self, audio: np.ndarray) -> np.ndarray:
        pieces = [_piece_features(audio[s : s + self.clip]) for s in range(0, len(audio), self.clip)]
        return np.concatenate(pieces, axis=1) if pieces else np.zeros((N_MELS, 0), np.float32)

    def push(self, block: np.ndarray) -> np.ndarray:
        """Columns of the 30-s pieces complete once ``block`` is appended."""
        self.buffer = np.concatenate([self.buffer, np.asarray(block, dtype=np.float32)])
        cut = 0
        while len(self.buffer) - cut > self.clip * 31 // 30:  # keep up to ~31 s: it may be the whole clip
            cut += self.clip
        out, self.buffer = self._pieces(self.buffer[:cut]), self.buffer[cut:]
        self.cut_any = self.cut_any or cut > 0
        return out

    def finish(self) -> np.ndarray:
        """Columns of what is left."""
        if not self.cut_any and len(self.buffer):
            return _piece_features(self.buffer)  # up to ~31 s: rendered whole
        return self._pieces(self.buffer)


def is_kaggle_image(path: str | os.PathLike) -> bool:
    """True if ``path`` is a PNG with the Kaggle images' geometry (read from its header only)."""
    return png_size(path) == (IMAGE_WIDTH, IMAGE_HEIGHT)


def image_features(path: str | os.PathLike) -> np.ndarray:
    """Features of a Kaggle GTZAN spectrogram PNG: (128, 334) float32, one row per mel band.

    Raises
    ------
    GenrekitError
        the file cannot be read or is not a Kaggle spectrogram image
    """
    try:
        return decode_image(path)[band_rows()]
    except (ValueError, OSError) as exc:
        raise GenrekitError(f"cannot read image '{path}': {exc}") from None
