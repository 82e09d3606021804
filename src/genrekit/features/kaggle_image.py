"""Bridge between GTZAN audio and the Kaggle copy's mel-spectrogram images.

The Kaggle images (matplotlib 3.1.3, Agg) were made, as the 327 audio/image pairs show, by::

    S = librosa.feature.melspectrogram(y=y, sr=22050)      # n_fft 2048, hop 512, 128 mels,
                                                            # pad_mode "reflect" (librosa < 0.10)
    S_db = librosa.amplitude_to_db(S, ref=np.max)           # on a *power* spectrogram
    fig = plt.figure(figsize=(6, 4), dpi=72)                # 432 x 288 px
    ax = fig.add_axes([0.125, 0.125, 0.775, 0.755])         # left/right/top as the defaults
    librosa.display.specshow(S_db, ax=ax)                   # pcolormesh, magma, no ticks
    fig.savefig(path)

``amplitude_to_db`` on power values gives ``20 log10(S / S.max())`` clipped at -80, so the
colours span -80..0 on that scale (40 dB of power).  The plot box interior is rows 36..251,
columns 55..388; `render_image` reproduces the pixels and `decode_image` inverts the colours.

librosa, matplotlib and Pillow are imported only when an image is rendered or decoded: a folder of
album covers is scanned (:func:`png_size`, from the PNG header) without them.
"""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass

import numpy as np
import soxr

from genrekit.errors import GenrekitError
from genrekit.features import FeatureConfig, peak_normalize

__all__ = [
    "BOX_COLS",
    "BOX_ROWS",
    "BOX_SHAPE",
    "DB_MAX",
    "DB_MIN",
    "IMAGE_HEIGHT",
    "IMAGE_WIDTH",
    "KaggleImageConfig",
    "KaggleImageStream",
    "decode_image",
    "image_features",
    "is_kaggle_image",
    "render_image",
    "render_matrix",
    "save_png",
]

IMAGE_HEIGHT = 288
IMAGE_WIDTH = 432
BOX_ROWS = slice(36, 252)
BOX_COLS = slice(55, 389)
BOX_SHAPE = (216, 334)
DB_MIN = -80.0
DB_MAX = 0.0
N_COLORS = 256
DB_STEP = (DB_MAX - DB_MIN) / N_COLORS

SR = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
# Figure 6 x 4 in at 72 dpi; axes rectangle (left, bottom, width, height) in figure fractions.
FIGSIZE = (6.0, 4.0)
DPI = 72
AXES_RECT = (0.125, 0.125, 0.775, 0.755)
# Pixels painted by the mesh (rows 35 and column 54 lie under the top and left spines).
MESH_ROWS = slice(35, 252)
MESH_COLS = slice(54, 389)
MESH_SHAPE = (217, 335)


@functools.lru_cache(maxsize=1)
def _magma_lut() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the magma LUT as uint8 RGB, its packed keys sorted, and their indices."""
    from matplotlib import colormaps

    rgb = np.round(colormaps["magma"](np.arange(N_COLORS))[:, :3] * 255).astype(np.uint8)
    rgb.flags.writeable = False
    packed = _pack(rgb)
    order = np.argsort(packed).astype(np.int16)
    keys = packed[order]
    keys.flags.writeable = False
    order.flags.writeable = False
    return rgb, keys, order


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _colour_indices(rgb: np.ndarray) -> np.ndarray:
    """Map uint8 RGB pixels to the index of the nearest magma LUT entry."""
    lut, keys, order = _magma_lut()
    packed = _pack(rgb)
    pos = np.minimum(np.searchsorted(keys, packed), N_COLORS - 1)
    index = order[pos].astype(np.int64)
    miss = keys[pos] != packed
    if miss.any():
        d = rgb[miss].astype(np.int32)[:, None, :] - lut.astype(np.int32)[None, :, :]
        index[miss] = np.argmin((d * d).sum(axis=-1), axis=1)
    return index


def decode_image(image: str | os.PathLike | np.ndarray) -> np.ndarray:
    """Recover the dB values shown in the plot box of a Kaggle spectrogram image.

    Parameters
    ----------
    image : str, os.PathLike or np.ndarray
        Path to a Kaggle PNG, or its pixels as a ``(288, 432, 3 or 4)`` uint8 array.

    Returns
    -------
    np.ndarray, shape ``BOX_SHAPE``, float32
        dB values in ``[DB_MIN, DB_MAX]``: the centre of each colour's 80/256 dB interval,
        on the images' ``amplitude_to_db(mel_power, ref=np.max)`` scale.
        Row 0 is the lowest mel band, column 0 the start of the clip.

    Raises
    ------
    ValueError
        If the image does not have the Kaggle geometry.
    """
    if isinstance(image, np.ndarray):
        name, pixels = "array", image
    else:
        name = os.fspath(image)
        if png_size(name) != (IMAGE_WIDTH, IMAGE_HEIGHT):  # decided from the header, before any pixel is decoded
            raise ValueError(f"{name}: not a {IMAGE_WIDTH}x{IMAGE_HEIGHT} PNG (a Kaggle GTZAN spectrogram image)")
        from PIL import Image

        with Image.open(name) as im:
            pixels = np.asarray(im.convert("RGBA"))
    if (
        pixels.dtype != np.uint8
        or pixels.ndim != 3
        or pixels.shape[:2] != (IMAGE_HEIGHT, IMAGE_WIDTH)
        or pixels.shape[2] not in (3, 4)
    ):
        raise ValueError(
            f"{name}: expected a ({IMAGE_HEIGHT}, {IMAGE_WIDTH}, 3|4) uint8 Kaggle "
            f"spectrogram image, got shape {pixels.shape} dtype {pixels.dtype}"
        )
    box = pixels[BOX_ROWS, BOX_COLS, :3][::-1]
    index = _colour_indices(box)
    return (DB_MIN + (index + 0.5) * DB_STEP).astype(np.float32)


def _mel_db(y: np.ndarray, sr: int) -> np.ndarray:
    """Mel spectrogram exactly as the Kaggle images show it, shape ``(N_MELS, n_frames)``.

    The power mel spectrogram went through ``amplitude_to_db`` (not ``power_to_db``),
    so the values are ``20 log10(S / S.max())`` clipped at -80: 40 dB of power range.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio of shape (n,), got {y.shape}")
    if sr != SR:
        y = soxr.resample(y, sr, SR).astype(np.float32)
    import librosa

    mel = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS, pad_mode="reflect"
    )
    return librosa.amplitude_to_db(mel, ref=np.max)


def _mesh_pixels(db: np.ndarray) -> np.ndarray:
    """Sample the dB matrix onto the mesh pixels, shape ``(217, 335)``, top row first.

    matplotlib 3.1's Agg ``pcolormesh`` (unantialiased, snapped) leaves each pixel
    with the last-drawn cell that reaches it: the frame under the pixel's right
    edge and the mel band under its top edge.
    """
    n_mels, n_frames = db.shape
    left, bottom, width, height = AXES_RECT
    fig_w, fig_h = FIGSIZE[0] * DPI, FIGSIZE[1] * DPI
    x0, x1 = left * fig_w, (left + width) * fig_w
    y0, y1 = bottom * fig_h, (bottom + height) * fig_h
    right_edge = np.arange(MESH_COLS.start, MESH_COLS.stop) + 1.0
    top_edge = fig_h - np.arange(MESH_ROWS.start, MESH_ROWS.stop)
    frames = np.ceil((right_edge - x0) / (x1 - x0) * n_frames).astype(int) - 1
    bands = np.floor((top_edge - y0) / (y1 - y0) * n_mels).astype(int)
    frames = np.clip(frames, 0, n_frames - 1)
    bands = np.clip(bands, 0, n_mels - 1)
    return db[np.ix_(bands, frames)]


def _colour_index(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Colour-map index as matplotlib's ``Normalize`` + ``Colormap`` compute it."""
    if vmax <= vmin:
        return np.zeros(values.shape, dtype=np.int64)
    scaled = (values.astype(np.float32) - np.float32(vmin)) / np.float32(vmax - vmin)
    index = (scaled * N_COLORS).astype(np.int64)
    return np.clip(index, 0, N_COLORS - 1)


def _mesh_indices(y: np.ndarray, sr: int) -> np.ndarray:
    db = _mel_db(y, sr)
    return _colour_index(_mesh_pixels(db), db.min(), db.max())


def render_image(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """Render audio the way the Kaggle GTZAN spectrogram images were made.

    Parameters
    ----------
    y : np.ndarray, shape ``(n,)``
        Mono audio.
    sr : int
        Sample rate of ``y``; resampled to 22050 Hz if different.

    Returns
    -------
    np.ndarray, shape ``(IMAGE_HEIGHT, IMAGE_WIDTH, 4)``, uint8
        RGBA pixels.

    Notes
    -----
    The mesh pixels are sampled in numpy (see `_mesh_pixels`) because current matplotlib
    rasterises ``pcolormesh`` at pixel centres, unlike 3.1.3; they are placed 1:1 with
    ``figimage`` and Agg draws the axes frame over them.
    """
    lut, _, _ = _magma_lut()
    rgba = np.empty(MESH_SHAPE + (4,), dtype=np.uint8)
    rgba[..., :3] = lut[_mesh_indices(y, sr)]
    rgba[..., 3] = 255

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    fig.figimage(rgba, xo=MESH_COLS.start, yo=IMAGE_HEIGHT - MESH_ROWS.stop, origin="upper", zorder=-1)
    ax = fig.add_axes(AXES_RECT)
    ax.patch.set_visible(False)
    ax.set_xticks([])
    ax.set_yticks([])
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def render_matrix(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """dB matrix that ``decode_image(render_image(y, sr))`` returns, computed directly.

    Parameters
    ----------
    y : np.ndarray, shape ``(n,)``
        Mono audio.
    sr : int
        Sample rate of ``y``.

    Returns
    -------
    np.ndarray, shape ``BOX_SHAPE``, float32
        Row 0 is the lowest mel band.
    """
    index = _mesh_indices(y, sr)[1:, 1:][::-1]
    return (DB_MIN + (index + 0.5) * DB_STEP).astype(np.float32)


def save_png(rgba: np.ndarray, path: str | os.PathLike) -> None:
    """Write RGBA pixels (e.g. from `render_image`) to a PNG file."""
    rgba = np.asarray(rgba, dtype=np.uint8)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected an (H, W, 4) RGBA array, got shape {rgba.shape}")
    from PIL import Image

    Image.fromarray(rgba).save(os.fspath(path))


@functools.lru_cache(maxsize=1)
def band_rows() -> np.ndarray:
    """Index of one box row per mel band (lowest band first) in a decoded matrix.

    The 128 bands are stretched over 216 rows, so each band fills one or two rows; keeping one
    row per band recovers the (128, 334) matrix the image encodes, without duplicates.
    """
    _, bottom, _, height = AXES_RECT
    y0, y1 = bottom * FIGSIZE[1] * DPI, (bottom + height) * FIGSIZE[1] * DPI
    rows = np.arange(BOX_ROWS.start, BOX_ROWS.stop)
    bands = np.floor((IMAGE_HEIGHT - rows - y0) / (y1 - y0) * N_MELS).astype(int)[::-1]
    rows = np.array([np.flatnonzero(bands == b)[0] for b in range(N_MELS)])
    rows.flags.writeable = False  # cached: shared by every caller
    return rows


# --------------------------------------------------------------------------- the feature kind

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


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) of a PNG from its header (the first 24 bytes), or ``None`` if it is not a PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


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
