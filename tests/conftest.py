"""Shared fixtures: synthetic signals, audio writers for every format, tiny checkpoints and a tiny
labelled dataset whose classes differ in spectrum (so a model can really learn them).

Everything is generated here; nothing is downloaded. Tests that need the real GTZAN copy use the
``gtzan_root`` fixture, which skips when the data is absent.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 22050
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan"
GTZAN = Path(os.environ.get("GENREKIT_DATA", DEFAULT_DATA))

# extension -> (soundfile format, subtype); these are written by libsndfile
SOUNDFILE_FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "au": ("AU", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
# extension -> (container, encoder, forced sample rate or None, bit rate); written by PyAV (FFmpeg)
PYAV_FORMATS = {
    "m4a": ("mp4", "aac", None, 128_000),
    "aac": ("adts", "aac", None, 128_000),
    "opus": ("ogg", "libopus", 48000, 96_000),
    "wma": ("asf", "wmav2", None, 128_000),
}
LOSSLESS = {"wav", "au", "flac"}
ALL_FORMATS = [*SOUNDFILE_FORMATS, *PYAV_FORMATS]

# Synthetic "genres": each has its own spectral signature, whatever the gain.
LABELS = ("bass", "hiss", "treble")


def slow_except(values, *quick):
    """``values`` for ``parametrize``, those not in ``quick`` marked slow: the quick run
    (``pytest -m "not slow"``) keeps a few cases of a test, ``make test`` runs them all. A tuple is
    one case of several arguments, named by its first."""
    names = [v[0] if isinstance(v, tuple) else v for v in values]
    missing = [q for q in quick if q not in names]
    assert not missing, f"slow_except: {missing} not among {names}"
    slow = pytest.mark.slow
    return [
        v if name in quick else pytest.param(*v, marks=slow) if isinstance(v, tuple) else pytest.param(v, marks=slow)
        for name, v in zip(names, values)
    ]


# ----------------------------------------------------------------------------- signals


def script_module(name: str):
    """``scripts/<name>.py`` imported as the module ``name`` (once: later calls get the same module)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.5, phase: float = 0.0) -> np.ndarray:
    """A sine of ``freq`` Hz, float32."""
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def noise_band(lo: float, hi: float, seconds: float, sr: int = SR, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """White noise band-limited to [lo, hi] Hz (FFT mask), scaled to RMS ``amp``, float32."""
    n = round(seconds * sr)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    spec[(f < lo) | (f > hi)] = 0
    y = np.fft.irfft(spec, n)
    return (amp * y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def labelled_clip(label: str, seed: int, seconds: float, sr: int = SR) -> np.ndarray:
    """A clip of one synthetic class; ``seed`` varies pitch, rhythm and noise inside the class.

    - ``bass``: a 80-160 Hz tone with four harmonics, pulsed
    - ``hiss``: noise in the 1.5-3.5 kHz band
    - ``treble``: two 5-7.5 kHz tones, slowly tremolo
    All carry a little broadband noise so that no bin sits at the dB floor.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    if label == "bass":
        f0 = rng.uniform(80, 160)
        y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))
        y = y * (0.6 + 0.4 * (np.sin(2 * np.pi * rng.uniform(1.5, 3) * t) > 0))
    elif label == "hiss":
        y = noise_band(1500, 3500, seconds, sr, amp=0.4, seed=seed + 1000)
    elif label == "treble":
        f1, f2 = rng.uniform(5000, 7500, size=2)
        y = (np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)) * (0.7 + 0.3 * np.sin(2 * np.pi * 0.7 * t))
    else:
        raise ValueError(label)
    y = np.asarray(y, dtype=np.float64)
    y = 0.4 * y / np.abs(y).max() + 0.003 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def dominant_frequency(y: np.ndarray, sr: int) -> float:
    """Frequency (Hz) of the largest peak of the Hann-windowed spectrum, parabolic interpolation."""
    y = np.asarray(y, dtype=np.float64)
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    k = int(np.argmax(spec[1:-1])) + 1
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-30)
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    return float((k + delta) * sr / len(y))


# ----------------------------------------------------------------------------- writers


def pyav_can_encode(ext: str) -> str | None:
    """None when this FFmpeg build can write ``ext``, else the reason it cannot."""
    import av

    container, codec, _, _ = PYAV_FORMATS[ext]
    try:
        av.codec.Codec(codec, "w")
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return f"this FFmpeg build has no '{codec}' encoder for .{ext} ({exc})"
    if container not in av.formats_available:
        return f"this FFmpeg build has no '{container}' muxer for .{ext}"
    return None


def _write_pyav(path: Path, y: np.ndarray, sr: int, ext: str) -> None:
    import av
    import soxr

    container, codec, forced_rate, bit_rate = PYAV_FORMATS[ext]
    rate = forced_rate or sr
    y = np.asarray(y, dtype=np.float32)
    channels = 1 if y.ndim == 1 else y.shape[1]
    y2 = y.reshape(len(y), channels)
    if rate != sr:
        y2 = soxr.resample(y2, sr, rate).astype(np.float32).reshape(-1, channels)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono" if channels == 1 else "stereo")
        stream.bit_rate = bit_rate
        stream.codec_context.open()
        frame_size = stream.codec_context.frame_size or 1024  # opus: 960 at 48 kHz
        fmt = stream.format.name
        pts = 0
        for start in range(0, len(y2), frame_size):
            chunk = y2[start : start + frame_size]
            if len(chunk) < frame_size:
                chunk = np.pad(chunk, ((0, frame_size - len(chunk)), (0, 0)))
            arr = chunk.T if fmt.endswith("p") else chunk.reshape(1, -1)  # planar or interleaved
            if fmt.startswith("s16"):
                arr = np.round(np.clip(arr, -1, 1) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=fmt, layout=stream.layout.name)
            frame.sample_rate, frame.pts = rate, pts
            pts += frame_size
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def write_audio(path: str | os.PathLike, y: np.ndarray, sr: int = SR, subtype: str | None = None) -> Path:
    """Write ``y`` (samples,) or (samples, channels) in the format named by the extension of ``path``.

    PyAV formats skip the calling test when this FFmpeg build cannot encode them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower().lstrip(".")
    if ext in SOUNDFILE_FORMATS:
        fmt, default_subtype = SOUNDFILE_FORMATS[ext]
        sf.write(str(path), y, sr, format=fmt, subtype=subtype or default_subtype)
    elif ext in PYAV_FORMATS:
        reason = pyav_can_encode(ext)
        if reason:
            pytest.skip(reason)
        _write_pyav(path, y, sr, ext)
    else:
        raise ValueError(f"no writer for .{ext}")
    return path


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread, and the suite shares a small machine with other jobs
    (two threads fighting a busy core are ~10x slower here)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def gtzan_root() -> Path:
    """The real GTZAN copy; skips the test when it is absent."""
    if not (GTZAN / "genres_original").is_dir() and not (GTZAN / "images_original").is_dir():
        pytest.skip(f"GTZAN data not found at {GTZAN} (set GENREKIT_DATA)")
    return GTZAN


def make_dataset(root: Path, *, clips_per_label: int = 8, seconds: float = 4.0, ext: str = "wav") -> Path:
    """``root/<label>/<label>_NN.<ext>`` for the synthetic labels."""
    for li, label in enumerate(LABELS):
        for i in range(clips_per_label):
            write_audio(root / label / f"{label}_{i:02d}.{ext}", labelled_clip(label, 100 * li + i, seconds))
    return root


@pytest.fixture(scope="session")
def labelled_dataset(tmp_path_factory) -> Path:
    """3 synthetic labels x 8 clips x 4 s, as ``<label>/<file>.wav`` (read-only for the tests)."""
    return make_dataset(tmp_path_factory.mktemp("dataset"))


def random_checkpoint(path: Path, *, model: str = "gknet", config=None, labels=("a", "b", "c"), seed: int = 0) -> Path:
    """A checkpoint with random weights (deterministic per ``seed``)."""
    import torch

    from genrekit.checkpoint import Checkpoint
    from genrekit.features.logmel import LogMelConfig
    from genrekit.models import build_model

    cfg = config or LogMelConfig()
    torch.manual_seed(seed)
    m = build_model(model, n_classes=len(labels), input_shape=(cfg.n_bins, cfg.segment_frames))
    Checkpoint(model, {}, list(labels), cfg, m.state_dict(), metadata={"description": "random weights"}).save(path)
    return path


@pytest.fixture(scope="session")
def random_model(tmp_path_factory) -> Path:
    """gknet with random weights, 3 labels, default feature config (128 mels, 3-s windows)."""
    return random_checkpoint(tmp_path_factory.mktemp("random_model") / "random.pt")


@pytest.fixture(scope="session")
def small_config():
    """Small, fast features: 32 mels, 1-s windows."""
    from genrekit.features.logmel import LogMelConfig

    return LogMelConfig(n_mels=32, segment_seconds=1.0)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, labelled_dataset, small_config) -> Path:
    """gknet trained for a few epochs on the whole synthetic dataset (32 mels, 1-s windows)."""
    from genrekit.config import TrainConfig
    from genrekit.experiment import fit, prepare
    from genrekit.splits import make_split

    data = prepare(
        labelled_dataset, feature_config=small_config, cache_dir=tmp_path_factory.mktemp("cache"), progress=False
    )
    fold = make_split("none", ids=data.ids, labels=data.track_labels, val_fraction=0).folds[0]
    ckpt, _ = fit(data, fold, config=TrainConfig(epochs=8, seed=0), progress=False)
    return ckpt.save(tmp_path_factory.mktemp("trained_model") / "trained.pt")


def run_cli(argv) -> int:
    """Run ``genrekit argv`` in this process (paths and bytes are decoded as file names): its exit code."""
    from genrekit.cli import main

    try:
        main([a if isinstance(a, str) else os.fsdecode(a) for a in argv])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def csv_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a CSV file the CLI wrote, as dicts (file names of any bytes read back as the CLI wrote
    them: undecodable bytes as surrogates, like ``os.fsdecode``)."""
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return list(csv.DictReader(f))
