"""Audio augmentation before the backbone, and the musicnn embeddings of augmented copies (cached).

Each copy of a clip gets a seeded random chain, applied at the backbone's 16 kHz: resampling by
0.9-1.1 (tempo and pitch together, about ±1.7 semitones), an EQ tilt of ±3 dB per octave, a band
limit (low-pass 3.5-7 kHz or high-pass 80-250 Hz), a little reverb, noise at 20-40 dB SNR, a gain
of ±10 dB and an MP3 round trip (libsndfile's LAME at a random quality). Copies are cached under
``<genrekit cache>/augmented/<recipe>/<file sha1>-<copy>.npy`` like any feature.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, fftconvolve, sosfilt

from genrekit.audio import load_audio, resample
from genrekit.datasets.cache import _file_hash, default_cache_dir, save_entry
from genrekit.features import extract

SR = 16000
RECIPE = "chain-v1"


def augment(y: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """One random augmentation chain of a mono 16-kHz signal."""
    rate = rng.uniform(0.9, 1.1)
    y = resample(y, round(SR * rate), SR)  # played faster or slower: tempo and pitch move together
    spec = np.fft.rfft(y)
    f = np.fft.rfftfreq(len(y), 1 / SR)
    tilt = rng.uniform(-3, 3)  # dB per octave around 1 kHz
    spec *= 10 ** (tilt * np.log2(np.maximum(f, 50) / 1000) / 20)
    y = np.fft.irfft(spec, n=len(y))
    if rng.random() < 0.5:
        sos = butter(4, rng.uniform(3500, 7000), "lowpass", fs=SR, output="sos")
    else:
        sos = butter(2, rng.uniform(80, 250), "highpass", fs=SR, output="sos")
    y = sosfilt(sos, y)
    if rng.random() < 0.5:
        n = int(SR * rng.uniform(0.2, 0.8))
        ir = rng.standard_normal(n) * np.exp(-np.arange(n) / (n / 6))
        wet = fftconvolve(y, ir)[: len(y)]
        y = y + rng.uniform(0.05, 0.3) * wet * np.std(y) / (np.std(wet) + 1e-9)
    noise = np.cumsum(rng.standard_normal(len(y))) if rng.random() < 0.5 else rng.standard_normal(len(y))
    noise = noise - np.convolve(noise, np.ones(64) / 64, "same") if noise.std() > 10 else noise  # brownish, no DC
    y = y + noise * np.std(y) / (np.std(noise) + 1e-9) * 10 ** (-rng.uniform(20, 40) / 20)
    y = y * 10 ** (rng.uniform(-10, 10) / 20)
    y = np.clip(y / max(1.0, np.abs(y).max() / 0.99), -1, 1).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, y, SR, format="MP3", compression_level=float(rng.uniform(0.2, 0.9)))
    buf.seek(0)
    return sf.read(buf, dtype="float32")[0]


def augmented_features(*, path: Path, config, copy: int, cache_dir: Path | None = None) -> np.ndarray:
    """The ``config`` features of augmented copy ``copy`` of the audio file ``path`` (cached).

    A stack of musicnn backbones (``"msd+vgg_msd"``) gets its backbones' copies stacked: the chain is
    seeded by the file and the copy only, so that is the same audio through each backbone."""
    if "+" in getattr(config, "backbones", ""):
        parts = [dataclasses.replace(config, backbones=b) for b in config.backbones.split("+")]
        return np.vstack([augmented_features(path=path, config=c, copy=copy, cache_dir=cache_dir) for c in parts])
    sha = _file_hash(path)
    key = hashlib.sha1(f"{RECIPE}{config.matrix_key()}".encode()).hexdigest()[:16]
    entry = (cache_dir or default_cache_dir()) / "augmented" / key / f"{sha}-{copy}.npy"
    if entry.exists():
        return np.load(entry)
    rng = np.random.default_rng([int(sha[:8], 16), copy])
    feats = extract(config, augment(load_audio(path, sr=SR), rng=rng), sr=SR).astype(np.float16)
    save_entry(entry, feats)
    return feats
