"""Is there music at all? Silence, near-silence, steady noise and values that are not audio get
"no music detected" instead of a genre, whatever the model would say of them.

:class:`PresenceCheck` follows the decoded blocks as they stream past (cheap: a peak, an energy
and the spectral flatness of a few frames per block), and :meth:`PresenceCheck.verdict` names the
reason when there is nothing to classify. The thresholds are :class:`PresenceConfig`'s.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PresenceConfig:
    """When a signal counts as no music.

    Parameters
    ----------
    min_seconds : shorter signals are too short to tell
    silence_dbfs : RMS level (dB re full scale) under which a signal is silence
    max_peak : a sample beyond this magnitude is not audio (full scale is 1)
    noise_flatness : median spectral flatness (0 tone … 1 white noise) above which a signal is noise;
        white noise measures 0.56, pink 0.18, the GTZAN clips at most 0.07
    confident : a top probability at least this high is a confident prediction: for the bundled
        model, the lowest at which its recipe's GTZAN held-out clips (and augmented copies of
        them) are right 95 % of the time (``benchmarks/bundled_model.py``, which records it in
        the model's metadata and warns when this default differs)
    """

    min_seconds: float = 0.5
    silence_dbfs: float = -60.0
    max_peak: float = 1e3
    noise_flatness: float = 0.15
    confident: float = 0.63


class PresenceCheck:
    """Statistics of a stream of mono blocks at ``sample_rate``, for :meth:`verdict`."""

    FRAME = 2048
    FRAMES_PER_BLOCK = 64  # flatness is measured on this many frames spread over each block

    def __init__(self, sample_rate: int, config: PresenceConfig | None = None):
        self.sample_rate, self.config = sample_rate, config or PresenceConfig()
        self.n, self.energy, self.peak = 0, 0.0, 0.0
        self.flatness: list[np.ndarray] = []
        self.window = np.hanning(self.FRAME).astype(np.float32)

    def push(self, block: np.ndarray) -> np.ndarray:
        """Account for ``block`` and hand it on unchanged."""
        x = np.asarray(block, dtype=np.float64)
        self.n += len(x)
        self.energy += float(np.dot(x, x))
        self.peak = max(self.peak, float(np.abs(x).max(initial=0.0)))
        if len(x) >= self.FRAME:
            starts = np.linspace(0, len(x) - self.FRAME, self.FRAMES_PER_BLOCK).astype(int)
            frames = np.stack([x[s : s + self.FRAME] for s in np.unique(starts)]) * self.window
            power = np.abs(np.fft.rfft(frames, axis=1))[:, 1:] ** 2 + 1e-20
            power = power[power.mean(axis=1) > 1e-12]  # silent frames say nothing of the spectrum's shape
            if len(power):
                self.flatness.append(np.exp(np.log(power).mean(axis=1)) / power.mean(axis=1))
        return block

    def verdict(self) -> str | None:
        """Why there is no music to classify, or ``None`` when there may be."""
        c = self.config
        if self.n < c.min_seconds * self.sample_rate:
            return f"too short to tell (under {c.min_seconds:g} s)"
        if self.peak > c.max_peak:
            return f"not audio: sample values reach {self.peak:.3g}, far beyond full scale (1)"
        rms_db = 10 * np.log10(self.energy / self.n + 1e-30)
        if rms_db < c.silence_dbfs:
            return f"silence (level {max(rms_db, -200):.0f} dBFS)"
        flat = np.concatenate(self.flatness) if self.flatness else np.zeros(0)
        if flat.size and float(np.median(flat)) > c.noise_flatness:
            return f"noise (spectral flatness {float(np.median(flat)):.2f})"
        return None
