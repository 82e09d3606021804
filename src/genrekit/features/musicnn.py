"""``musicnn``: the front end of the pretrained musicnn taggers (Pons & Serra 2019).

16 kHz mono, n_fft 512, hop 256, 96 Slaney mel bands of the power spectrum, then
``log10(10000 x + 1)``, in float32 (the stock code's float16 rounding overflows under numpy 2).
Windows are musicnn's 3-s patches of 187 frames, without overlap by default; the network scales
its input itself (batch norm), so windows are not normalised here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genrekit.features import FeatureConfig
from genrekit.features.logmel import MelStream

PATCH_FRAMES = 187  # 3 s at 16000 / 256, as musicnn counts them


def _log_compress(mel_power: torch.Tensor) -> torch.Tensor:
    return torch.log10(10000.0 * mel_power + 1.0)


@dataclass(frozen=True)
class MusicnnConfig(FeatureConfig):
    """musicnn's log-mel front end; its spectrogram is fixed by the pretrained weights."""

    kind = "musicnn"
    sample_rate = 16000
    window_fields = ("segment_seconds", "segment_overlap")

    segment_overlap: float = 0.0

    @property
    def n_bins(self) -> int:
        return 96

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / 256

    @property
    def segment_frames(self) -> int:
        return PATCH_FRAMES if self.segment_seconds == 3.0 else super().segment_frames

    def stream(self) -> MelStream:
        return MelStream(sample_rate=self.sample_rate, n_fft=512, hop_length=256, n_mels=96, compress=_log_compress)

    def normalize(self, windows: torch.Tensor) -> torch.Tensor:
        return windows
