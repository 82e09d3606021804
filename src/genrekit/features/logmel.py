"""``logmel``: the log-mel power spectrogram in dB (torch or numpy framing and FFT, the Slaney mel filterbank).

Matches ``librosa.power_to_db(librosa.feature.melspectrogram(y, ...), ref=1.0, top_db=None)`` with
librosa's defaults (Hann window, centred frames, zero padding, Slaney mel scale and norm), computed
block by block: a stream gives exactly the frames of the whole signal. :class:`MelStream` is the
one mel core; other kinds (musicnn's front end) give it their own compression. Its ``numpy``
backend serves the torch-free runtime (:mod:`genrekit.runtime`); torch is imported only when used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from genrekit.features import FeatureConfig, peak_normalize

if TYPE_CHECKING:
    import torch


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    return np.where(f < 1000.0, 3.0 * f / 200.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0))


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m < 15.0, 200.0 * m / 3.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)))


def mel_filterbank(
    *, sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Triangular filters on Slaney's mel scale with Slaney's area norm, ``(n_mels, 1 + n_fft // 2)``.

    The filterbank of ``librosa.filters.mel`` with its defaults (tested equal), computed here so
    that prediction does not need librosa.
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    bins = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    ramps = edges[:, None] - bins[None, :]
    widths = np.diff(edges)
    rising, falling = -ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def power_to_db(mel_power: torch.Tensor) -> torch.Tensor:
    """``10 log10`` of the power, floored at -100 dB (reference power 1)."""
    import torch

    return 10.0 * torch.log10(torch.clamp(mel_power, min=1e-10))


@dataclass(frozen=True)
class LogMelConfig(FeatureConfig):
    """Log-mel spectrogram parameters; windows are scaled to their own peak over ``top_db`` dB."""

    kind = "logmel"

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    top_db: float = 80.0

    @property
    def n_bins(self) -> int:
        return self.n_mels

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def stream(self) -> MelStream:
        return MelStream(
            sample_rate=self.sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            compress=power_to_db,
        )

    def normalize(self, windows: torch.Tensor) -> torch.Tensor:
        return peak_normalize(windows, self.top_db)


class MelStream:
    """Compressed mel-power frames of a stream of sample blocks, identical to the centred frames of
    the whole signal.

    Parameters
    ----------
    sample_rate, n_fft, hop_length, n_mels, fmin, fmax : the spectrogram, as librosa's
        ``melspectrogram`` (power 2, Hann window, centred, zero padding, Slaney mel)
    compress : mel power ``(n_mels, frames)`` → the feature values (e.g. :func:`power_to_db`), a
        tensor with the torch backend, an array with the numpy one
    backend : ``"torch"`` or ``"numpy"`` (the same frames within float32 rounding; no torch needed)
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        fmin: float = 0.0,
        fmax: float | None = None,
        compress: Callable,
        backend: str = "torch",
    ):
        self.n_fft, self.hop, self.compress, self.backend = n_fft, hop_length, compress, backend
        self.mel_fb = mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        # periodic Hann (torch.hann_window(n_fft, periodic=True)), for both backends
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
        self.buffer = np.zeros(self.n_fft // 2, dtype=np.float32)  # the centring pad
        self.n_samples = 0

    def _frames(self, samples: np.ndarray) -> np.ndarray:
        n = 1 + (len(samples) - self.n_fft) // self.hop if len(samples) >= self.n_fft else 0
        if n == 0:
            self.buffer = samples  # too short for a frame: it belongs to the next block
            return np.zeros((self.mel_fb.shape[0], 0), np.float32)
        used = samples[: (n - 1) * self.hop + self.n_fft]
        self.buffer = samples[n * self.hop :]
        if self.backend == "numpy":
            frames = np.lib.stride_tricks.sliding_window_view(used, self.n_fft)[:: self.hop]
            spec = np.fft.rfft(frames * self.window)
            power = (spec.real**2 + spec.imag**2).astype(np.float32)
            return np.asarray(self.compress(self.mel_fb @ power.T), dtype=np.float32)
        import torch

        frames = torch.from_numpy(used).unfold(0, self.n_fft, self.hop)
        with torch.inference_mode():
            spec = torch.fft.rfft(frames * torch.from_numpy(self.window))
            power = spec.real.square() + spec.imag.square()
            return self.compress(torch.from_numpy(self.mel_fb) @ power.T).numpy()

    def frames_within(self, samples: np.ndarray) -> np.ndarray:
        """The frames lying wholly within ``samples``, frame ``i`` from sample ``i * hop_length`` (no
        centring pad: ``samples`` hold their own context); the stream is left as it was."""
        buffer = self.buffer
        try:
            return self._frames(np.asarray(samples, dtype=np.float32))
        finally:
            self.buffer = buffer

    def push(self, block: np.ndarray) -> np.ndarray:
        """Frames complete once ``block`` (mono float32) is appended to the stream."""
        self.n_samples += len(block)
        return self._frames(np.concatenate([self.buffer, np.asarray(block, dtype=np.float32)]))

    def finish(self) -> np.ndarray:
        """The last frames, over the end of the signal padded as centring pads it."""
        total = 1 + self.n_samples // self.hop  # frames of the whole centred signal
        done = (self.n_samples + self.n_fft // 2 - len(self.buffer)) // self.hop
        tail = np.concatenate([self.buffer, np.zeros(self.n_fft, np.float32)])
        return self._frames(tail)[:, : max(0, total - done)]
