"""The one feature definition: log-mel spectrograms cut into fixed windows.

A :class:`FeatureConfig` is stored in every checkpoint and applied from there at inference, so a
model always sees features computed exactly as in training. Two kinds exist:

``"logmel"``
    log-mel power spectrogram of the audio (torch.stft + librosa's Slaney mel filterbank).
``"kaggle-image"``
    the matrix shown by the Kaggle GTZAN spectrogram images: decoded from a PNG, or rendered
    from audio (see :mod:`genrekit.kaggle_image`).

Windows are normalised one by one (:func:`normalize_windows`): the loudest bin becomes 0 dB and
the range is clipped to ``top_db``, so the gain of a recording does not change its features.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

import librosa
import numpy as np
import torch
from torch import nn

FEATURE_KINDS = ("logmel", "kaggle-image")
# each Kaggle image shows one 30-s GTZAN clip across its width
KAGGLE_CLIP_SECONDS = 30.0


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of the features a model is trained on."""

    kind: str = "logmel"
    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    top_db: float = 80.0
    segment_seconds: float = 3.0
    segment_overlap: float = 0.5

    def __post_init__(self):
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind '{self.kind}'; choose one of {FEATURE_KINDS}")
        if not 0 <= self.segment_overlap < 1:
            raise ValueError("segment_overlap must be in [0, 1)")

    @property
    def frames_per_second(self) -> float:
        """Feature frames per second of audio."""
        if self.kind == "kaggle-image":
            from genrekit.kaggle_image import BOX_SHAPE

            return BOX_SHAPE[1] / KAGGLE_CLIP_SECONDS
        return self.sample_rate / self.hop_length

    @property
    def n_bins(self) -> int:
        """Feature rows (mel bands, or image rows)."""
        if self.kind == "kaggle-image":
            from genrekit.kaggle_image import N_MELS

            return N_MELS
        return self.n_mels

    @property
    def segment_frames(self) -> int:
        """Frames in one window."""
        return max(1, int(round(self.segment_seconds * self.frames_per_second)))

    @property
    def hop_frames(self) -> int:
        """Frames between the starts of two windows."""
        return max(1, int(round(self.segment_frames * (1 - self.segment_overlap))))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class LogMel(nn.Module):
    """Batched log-mel spectrogram in dB (reference power 1, floor 1e-10).

    Matches ``librosa.power_to_db(librosa.feature.melspectrogram(y, ...), ref=1.0, top_db=None)``
    with librosa's defaults (Hann window, centred frames, zero padding, Slaney mel scale and norm).

    Parameters
    ----------
    config : the feature parameters (sample rate, n_fft, hop, mels, fmin, fmax)
    """

    def __init__(self, config: FeatureConfig = FeatureConfig()):
        super().__init__()
        self.n_fft = config.n_fft
        self.hop_length = config.hop_length
        mel = librosa.filters.mel(
            sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax
        )
        self.register_buffer("mel_fb", torch.from_numpy(mel).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(config.n_fft, periodic=True), persistent=False)

    def frames_db(self, frames: torch.Tensor) -> torch.Tensor:
        """Signal frames (..., n_frames, n_fft) → dB (..., n_mels, n_frames).

        The one place the log-mel values are computed: whole signals (:meth:`forward`) and
        streamed blocks (:mod:`genrekit.predictor`) both go through it.
        """
        spec = torch.fft.rfft(frames * self.window)
        power = spec.real.square() + spec.imag.square()
        return 10.0 * torch.log10(torch.clamp(self.mel_fb @ power.transpose(-1, -2), min=1e-10))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave`` (batch, samples) or (samples,) → dB (batch, n_mels, frames), centred frames."""
        pad = self.n_fft // 2
        padded = torch.nn.functional.pad(wave, (pad, pad))
        return self.frames_db(padded.unfold(-1, self.n_fft, self.hop_length))


def frame_starts(n_frames: int, config: FeatureConfig) -> np.ndarray:
    """Start frames of the windows covering ``n_frames`` frames.

    A track shorter than one window gets one (padded) window; the last window is aligned to the
    end of the track so that no tail longer than one hop is left out.
    """
    seg, hop = config.segment_frames, config.hop_frames
    if n_frames <= seg:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_frames - seg + 1, hop)
    if starts[-1] + seg < n_frames:
        starts = np.append(starts, n_frames - seg)
    return starts


def segment(spec: np.ndarray | torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Cut a (bins, frames) spectrogram into windows (n_windows, bins, segment_frames).

    A spectrogram shorter than one window is padded with its minimum value.
    """
    spec = torch.as_tensor(spec, dtype=torch.float32)
    seg = config.segment_frames
    if spec.shape[-1] < seg:
        pad = seg - spec.shape[-1]
        spec = torch.nn.functional.pad(spec, (0, pad), value=float(spec.min()) if spec.numel() else 0.0)
    starts = frame_starts(spec.shape[-1], config)
    return torch.stack([spec[:, s : s + seg] for s in starts])


def normalize_windows(windows: torch.Tensor, top_db: float) -> torch.Tensor:
    """Reference each window to its own maximum and scale ``[-top_db, 0]`` dB to ``[0, 1]``."""
    peak = windows.amax(dim=(-2, -1), keepdim=True)
    return torch.clamp(windows - peak, min=-top_db) / top_db + 1.0


def image_matrix_features(matrix: np.ndarray) -> np.ndarray:
    """Features of a decoded Kaggle image matrix (216, 334): one row per mel band (128, 334)."""
    from genrekit.kaggle_image import band_rows

    return np.asarray(matrix, dtype=np.float32)[band_rows()]


def read_image_features(path: str | os.PathLike, config: FeatureConfig) -> np.ndarray:
    """Features of a Kaggle GTZAN spectrogram PNG (128, 334), for ``kaggle-image`` configs only.

    Raises
    ------
    GenrekitError
        the config is not ``kaggle-image``, or the file is not a Kaggle image
    """
    from genrekit.audio import GenrekitError
    from genrekit.kaggle_image import decode_image

    if config.kind != "kaggle-image":
        raise GenrekitError(
            f"'{path}' is a spectrogram image: only models trained on kaggle-image features can read images "
            "(train with --features kaggle-image)"
        )
    try:
        return image_matrix_features(decode_image(path))
    except (ValueError, OSError) as exc:
        raise GenrekitError(f"cannot read image '{path}': {exc}") from None


def kaggle_image_piece(piece: np.ndarray, sr: int) -> np.ndarray:
    """Kaggle-image features of at most ~31 s of audio, with the images' time scale.

    A GTZAN-length piece (30 to 31 s) is rendered whole, as the Kaggle images were. A shorter one is
    padded with silence to 30 s and its padded columns are dropped, so that every column spans
    the same time as in the images (30 s / 334 columns) whatever the length of the audio.
    """
    from genrekit.kaggle_image import BOX_SHAPE, render_matrix

    clip = int(KAGGLE_CLIP_SECONDS * sr)
    if len(piece) >= clip:
        return image_matrix_features(render_matrix(piece, sr))
    keep = max(1, int(np.ceil(len(piece) / clip * BOX_SHAPE[1])))
    return image_matrix_features(render_matrix(np.pad(piece, (0, clip - len(piece))), sr))[:, :keep]


def _kaggle_image_features(y: np.ndarray, sr: int) -> np.ndarray:
    # up to 31 s: one piece; longer audio: 30-s pieces, the last one shorter
    clip = int(KAGGLE_CLIP_SECONDS * sr)
    if len(y) <= clip * 31 // 30:
        return kaggle_image_piece(y, sr)
    return np.concatenate([kaggle_image_piece(y[s : s + clip], sr) for s in range(0, len(y), clip)], axis=1)


def compute_features(y: np.ndarray, config: FeatureConfig, logmel: LogMel | None = None) -> np.ndarray:
    """Features of one whole signal: (bins, frames) float32, un-normalised dB."""
    if config.kind == "kaggle-image":
        return _kaggle_image_features(y, config.sample_rate)
    logmel = logmel or LogMel(config)
    with torch.inference_mode():
        return logmel(torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))).numpy()
