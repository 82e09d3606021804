"""Features: log-mel against librosa, windows, per-window normalisation, the feature config."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
from conftest import SR, noise_band, tone

from genrekit.errors import GenrekitError
from genrekit.features import FEATURE_KINDS, FeatureConfig, extract, make_feature_config, peak_normalize
from genrekit.features.kaggle_image import KaggleImageConfig
from genrekit.features.logmel import LogMelConfig
from genrekit.features.windows import cut_windows, window_starts


def frame_starts(n_frames: int, cfg) -> np.ndarray:
    return window_starts(n_frames, size=cfg.segment_frames, hop=cfg.hop_frames)


def segment(spec: np.ndarray, cfg) -> torch.Tensor:
    return torch.from_numpy(cut_windows(spec, size=cfg.segment_frames, hop=cfg.hop_frames)[1])


def _test_signal(seconds: float = 1.3, seed: int = 0) -> np.ndarray:
    """Tones over broadband noise: no mel band near the dB floor, length not a multiple of any hop."""
    n = int(seconds * SR) + 7
    y = noise_band(20, 11000, n / SR, amp=0.05, seed=seed)[:n]
    y = y + tone(330.0, n / SR, amp=0.3)[:n] + tone(2500.0, n / SR, amp=0.1)[:n]
    return y.astype(np.float32)


@pytest.mark.parametrize(
    "n_mels,n_fft,hop,fmin,fmax",
    [
        (128, 2048, 512, 0.0, None),
        (64, 1024, 256, 0.0, None),
        (40, 512, 128, 0.0, None),
        (96, 2048, 441, 30.0, 8000.0),
        (32, 4096, 1024, 0.0, 5000.0),
    ],
)
def test_logmel_matches_librosa(n_mels, n_fft, hop, fmin, fmax):
    y = _test_signal()
    cfg = LogMelConfig(n_mels=n_mels, n_fft=n_fft, hop_length=hop, fmin=fmin, fmax=fmax)
    ours = extract(cfg, y)
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=y, sr=SR, n_fft=n_fft, hop_length=hop, n_mels=n_mels, fmin=fmin, fmax=fmax, power=2.0
        ),
        ref=1.0,
        top_db=None,
    )
    assert ours.shape == ref.shape == (n_mels, 1 + len(y) // hop)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=0.05)


@pytest.mark.parametrize(
    "sr,n_fft,n_mels,fmin,fmax",
    [
        (22050, 2048, 128, 0.0, None),
        (16000, 512, 96, 0.0, None),
        (22050, 1024, 40, 30.0, 8000.0),
        (44100, 4096, 64, 0.0, 5000.0),
    ],
)
def test_mel_filterbank_is_librosas(sr, n_fft, n_mels, fmin, fmax):
    from genrekit.features.logmel import mel_filterbank

    ours = mel_filterbank(sample_rate=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-9)


def test_prediction_needs_no_librosa(tmp_path):
    import subprocess
    import sys

    from conftest import random_checkpoint, write_audio

    model = random_checkpoint(tmp_path / "m.pt")
    wav = write_audio(tmp_path / "x.wav", tone(440.0, 4.0))
    code = (
        "import sys; from genrekit.predictor import Predictor; "
        f"Predictor.load({str(model)!r}).predict_file({str(wav)!r}); print('librosa' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_logmel_floor_is_minus_100_db():
    out = extract(LogMelConfig(n_mels=32), np.zeros(4096, np.float32))
    assert np.all(out == -100.0)


@pytest.mark.parametrize("n_fft,hop", [(2048, 512), (1024, 300), (512, 256)])
@pytest.mark.parametrize(
    "cuts", [(), (1,), (100, 101, 5000), (511, 1024, 2047, 2048, 9000), tuple(range(997, 28000, 997))]
)
def test_logmel_stream_equals_whole_signal(n_fft, hop, cuts):
    cfg = LogMelConfig(n_mels=40, n_fft=n_fft, hop_length=hop)
    y = _test_signal(1.3)
    edges = [0, *[c for c in cuts if c < len(y)], len(y)]
    streamed = extract(cfg, [y[a:b] for a, b in zip(edges[:-1], edges[1:])])
    whole = extract(cfg, y)
    assert streamed.shape == whole.shape == (40, 1 + len(y) // hop)
    np.testing.assert_allclose(streamed, whole, atol=1e-4)


def test_gain_shifts_logmel_by_the_gain_in_db():
    cfg = LogMelConfig(n_mels=64)
    y = _test_signal()
    a, b = extract(cfg, y), extract(cfg, y * 0.25)
    np.testing.assert_allclose(b - a, 20 * np.log10(0.25), atol=1e-3)


# ----------------------------------------------------------------------------- windows

SEGMENT_CASES = [(3.0, 0.5), (3.0, 0.0), (1.0, 0.75), (0.5, 0.9), (2.0, 0.25)]
LENGTHS = [1, 10, 42, 43, 44, 86, 129, 130, 258, 500, 1293]


@pytest.mark.parametrize("seconds,overlap", SEGMENT_CASES)
@pytest.mark.parametrize("n_frames", LENGTHS)
def test_frame_starts_cover_every_frame(seconds, overlap, n_frames):
    cfg = LogMelConfig(segment_seconds=seconds, segment_overlap=overlap)
    seg, hop = cfg.segment_frames, cfg.hop_frames
    starts = frame_starts(n_frames, cfg)
    assert starts.dtype == np.int64 and starts[0] == 0
    if n_frames <= seg:
        np.testing.assert_array_equal(starts, [0])
        return
    assert np.all(np.diff(starts) > 0)
    assert np.all(np.diff(starts) <= hop)
    assert np.all(np.diff(starts)[:-1] == hop)  # regular hops, only the end-aligned last one may be shorter
    assert starts[-1] + seg == n_frames  # last window aligned to the end: no frame left out
    covered = np.zeros(n_frames, bool)
    for s in starts:
        covered[s : s + seg] = True
    assert covered.all()


@pytest.mark.parametrize("seconds,overlap", SEGMENT_CASES)
@pytest.mark.parametrize("n_frames", [5, 129, 300, 1000])
def test_segment_cuts_the_windows_at_frame_starts(seconds, overlap, n_frames):
    cfg = LogMelConfig(n_mels=16, segment_seconds=seconds, segment_overlap=overlap)
    spec = np.random.default_rng(n_frames).normal(size=(16, n_frames)).astype(np.float32)
    windows = segment(spec, cfg)
    starts = frame_starts(max(n_frames, cfg.segment_frames), cfg)
    assert windows.shape == (len(starts), 16, cfg.segment_frames)
    assert windows.dtype == torch.float32
    for w, s in zip(windows, starts):
        if s + cfg.segment_frames <= n_frames:
            np.testing.assert_array_equal(w.numpy(), spec[:, s : s + cfg.segment_frames])


@pytest.mark.parametrize("n_frames", [1, 7, 128])
def test_short_input_is_padded_to_one_window_with_its_minimum(n_frames):
    cfg = LogMelConfig(n_mels=8)  # 129-frame windows
    spec = np.random.default_rng(0).uniform(-60, 0, size=(8, n_frames)).astype(np.float32)
    windows = segment(spec, cfg)
    assert windows.shape == (1, 8, cfg.segment_frames)
    np.testing.assert_array_equal(windows[0, :, :n_frames].numpy(), spec)
    assert torch.all(windows[0, :, n_frames:] == float(spec.min()))


def test_segment_frames_of_the_two_kinds():
    assert LogMelConfig().segment_frames == 129  # 3 s at 22050 / 512
    assert LogMelConfig().hop_frames == 64
    image = KaggleImageConfig()
    assert (image.n_bins, image.segment_frames) == (128, 33)  # 3 s of a 334-column, 30-s image
    assert LogMelConfig(segment_seconds=1.0).segment_frames == 43


# ----------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("shift", [-40.0, -3.5, 0.0, 12.0, 75.0])
@pytest.mark.parametrize("top_db", [40.0, 80.0])
def test_normalize_windows_is_gain_invariant_and_in_unit_range(shift, top_db):
    rng = np.random.default_rng(1)
    windows = torch.from_numpy(rng.uniform(-120, 0, size=(5, 16, 20)).astype(np.float32))
    a = peak_normalize(windows, top_db)
    b = peak_normalize(windows + shift, top_db)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert a.shape == windows.shape
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    # each window's loudest bin maps to 1, anything top_db or more below it to 0
    torch.testing.assert_close(a.amax(dim=(1, 2)), torch.ones(5))
    below = windows <= windows.amax(dim=(1, 2), keepdim=True) - top_db
    assert torch.all(a[below] == 0)
    # monotone inside a window
    w = windows[0].flatten()
    order = torch.argsort(w)
    assert torch.all(torch.diff(a[0].flatten()[order]) >= 0)


def test_windows_of_a_quieter_recording_are_identical_after_normalisation():
    cfg = LogMelConfig(n_mels=64, segment_seconds=1.0)
    y = _test_signal(3.0)
    loud = peak_normalize(segment(extract(cfg, y), cfg), cfg.top_db)
    quiet = peak_normalize(segment(extract(cfg, y * 10 ** (-12 / 20)), cfg), cfg.top_db)
    torch.testing.assert_close(loud, quiet, atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "cfg",
    [
        LogMelConfig(),
        KaggleImageConfig(),
        LogMelConfig(
            n_mels=32,
            n_fft=1024,
            hop_length=256,
            fmin=20.0,
            fmax=8000.0,
            top_db=60.0,
            segment_seconds=1.5,
            segment_overlap=0.25,
        ),
    ],
)
def test_feature_config_round_trips(cfg):
    d = cfg.to_dict()
    assert isinstance(d, dict) and d["kind"] in FEATURE_KINDS
    assert FeatureConfig.from_dict(d) == cfg
    # unknown keys (from a newer version) are ignored
    assert FeatureConfig.from_dict({**d, "future_field": 1}) == cfg


@pytest.mark.parametrize("kind", ["mfcc", "", "LOGMEL"])
def test_feature_config_rejects_unknown_kind(kind):
    with pytest.raises(GenrekitError, match="feature kind"):
        make_feature_config(kind)
    with pytest.raises(GenrekitError, match="feature kind"):
        FeatureConfig.from_dict({"kind": kind})


def test_a_kind_refuses_settings_it_does_not_have():
    # kaggle-image features are the images' own: n_mels=64 must not be recorded while 128 rows are used
    with pytest.raises(GenrekitError, match="n_mels"):
        make_feature_config("kaggle-image", n_mels=64)
    assert make_feature_config("logmel", n_mels=64).n_bins == 64


def test_each_kind_is_its_own_config_class():
    for kind in FEATURE_KINDS:
        cfg = make_feature_config(kind)
        assert cfg.kind == kind and isinstance(cfg, FeatureConfig)
        assert cfg.n_bins > 0 and cfg.frames_per_second > 0
    assert "n_mels" not in KaggleImageConfig().to_dict()  # not stored, not hashed into cache keys
    assert "n_mels" not in KaggleImageConfig().matrix_key()


def test_a_version_1_checkpoint_config_reads_as_its_kind():
    old = {
        "kind": "kaggle-image",
        "sample_rate": 22050,
        "n_fft": 2048,
        "hop_length": 512,
        "n_mels": 128,
        "fmin": 0.0,
        "fmax": None,
        "top_db": 80.0,
        "segment_seconds": 3.0,
        "segment_overlap": 0.5,
    }
    assert FeatureConfig.from_dict(old) == KaggleImageConfig()
    assert FeatureConfig.from_dict({**old, "kind": "logmel"}) == LogMelConfig()


@pytest.mark.parametrize("overlap", [-0.1, 1.0, 1.5])
def test_feature_config_rejects_overlap_outside_0_1(overlap):
    with pytest.raises(GenrekitError, match="overlap"):
        LogMelConfig(segment_overlap=overlap)


def test_feature_config_is_frozen():
    with pytest.raises(AttributeError):
        LogMelConfig().n_mels = 64  # type: ignore[misc]


@pytest.mark.parametrize("seconds", [3.0, 15.0, 45.0])
def test_kaggle_image_features_keep_the_images_time_scale(seconds):
    # 334 columns always span 30 s, whatever the length of the audio (short audio is not stretched)
    y = (np.random.default_rng(0).standard_normal(int(seconds * 22050)) * 0.1).astype(np.float32)
    feats = extract(KaggleImageConfig(), y)
    assert feats.shape[0] == 128
    assert abs(feats.shape[1] - seconds / 30.0 * 334) <= 2
