"""Is there music at all? Silence, near-silence, steady noise, steady pure tones, clicks in silence
and values that are not audio get "no music detected" instead of a genre, whatever the model would
say of them.

:class:`PresenceCheck` follows the decoded blocks as they stream past (cheap: a peak, an energy,
and for a few frames per block their level, spectral flatness and how few FFT bins hold their
energy), and :meth:`PresenceCheck.verdict` names the reason when there is nothing to classify.
The thresholds are :class:`PresenceConfig`'s.
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
    tone_bins, tone_level_sd : a signal whose median frame holds 99 % of its energy in fewer FFT
        bins (of 1024) and whose frame level varies less than ``tone_level_sd`` dB is a steady
        tone or a few: a sine takes 3 bins, a sweep 6, a triad 9; every GTZAN and outside clip at
        least 20 (at 16 kHz)
    max_silent_share : a signal whose frames are silent (under ``silence_dbfs``) more often than
        this is isolated sounds in silence (2-Hz clicks: 0.75; GTZAN clips at most 0.03, the
        outside ones 0.19)
    confident : a top probability at least this high is a confident prediction: for the bundled
        model, the lowest at which its recipe's GTZAN held-out clips (and augmented copies of
        them) are right 95 % of the time (``benchmarks/bundled_model.py``, which records it in
        the model's metadata and warns when this default differs). The bundled head lowers the
        probabilities of windows out of its training distribution itself
        (:class:`genrekit.models.heads.EmbeddingHead`'s ``ood_threshold``), so this one
        threshold decides ``confident`` for the torch and ONNX forms alike
    """

    min_seconds: float = 0.5
    silence_dbfs: float = -60.0
    max_peak: float = 1e3
    noise_flatness: float = 0.15
    tone_bins: int = 12
    tone_level_sd: float = 1.0
    max_silent_share: float = 0.5
    confident: float = 0.68


class PresenceCheck:
    """Statistics of a stream of mono blocks at ``sample_rate``, for :meth:`verdict`."""

    FRAME = 2048
    FRAMES_PER_BLOCK = 64  # flatness is measured on this many frames spread over each block

    def __init__(self, sample_rate: int, config: PresenceConfig | None = None):
        self.sample_rate, self.config = sample_rate, config or PresenceConfig()
        self.n, self.energy, self.peak = 0, 0.0, 0.0
        self.flatness: list[np.ndarray] = []
        self.levels: list[np.ndarray] = []  # dB of each analysed frame
        self.bins: list[np.ndarray] = []  # per non-silent frame, how many FFT bins hold 99 % of its energy
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
            self.levels.append(10 * np.log10((frames**2).mean(axis=1) / (self.window**2).mean() + 1e-30))
            power = np.abs(np.fft.rfft(frames, axis=1))[:, 1:] ** 2 + 1e-20
            power = power[power.mean(axis=1) > 1e-12]  # silent frames say nothing of the spectrum's shape
            if len(power):
                self.flatness.append(np.exp(np.log(power).mean(axis=1)) / power.mean(axis=1))
                share = np.cumsum(np.sort(power, axis=1)[:, ::-1], axis=1) / power.sum(axis=1, keepdims=True)
                self.bins.append((share < 0.99).sum(axis=1) + 1)
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
        levels = np.concatenate(self.levels) if self.levels else np.zeros(0)
        silent = float(np.mean(levels < c.silence_dbfs)) if levels.size else 0.0
        if silent > c.max_silent_share:
            return f"isolated sounds in silence ({silent:.0%} of the frames silent)"
        bins = float(np.median(np.concatenate(self.bins))) if self.bins else np.inf
        loud = levels[levels >= c.silence_dbfs]
        if bins < c.tone_bins and loud.size and float(np.std(loud)) < c.tone_level_sd:
            return f"steady tones (99 % of the energy in {bins:.0f} frequency bins, level within {np.std(loud):.1f} dB)"
        return None
