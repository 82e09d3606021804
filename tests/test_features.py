"""Features: log-mel against librosa, windows, per-window normalisation, the feature config."""
from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
from conftest import SR, noise_band, tone

from genrekit.features import (
    FEATURE_KINDS,
    FeatureConfig,
    LogMel,
    compute_features,
    frame_starts,
    normalize_windows,
    segment,
)


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
    cfg = FeatureConfig(n_mels=n_mels, n_fft=n_fft, hop_length=hop, fmin=fmin, fmax=fmax)
    ours = LogMel(cfg)(torch.from_numpy(y)).numpy()
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


@pytest.mark.parametrize("n_mels,hop", [(128, 512), (48, 300)])
def test_logmel_batch_equals_items(n_mels, hop):
    cfg = FeatureConfig(n_mels=n_mels, hop_length=hop)
    logmel = LogMel(cfg)
    batch = torch.from_numpy(np.stack([_test_signal(1.0, seed=s) for s in range(3)]))
    out = logmel(batch)
    assert out.shape == (3, n_mels, 1 + batch.shape[1] // hop)
    for i in range(3):
        np.testing.assert_allclose(out[i].numpy(), logmel(batch[i]).numpy(), atol=1e-3)


def test_logmel_floor_is_minus_100_db():
    out = LogMel(FeatureConfig(n_mels=32))(torch.zeros(4096))
    assert torch.all(out == -100.0)


def test_compute_features_is_logmel_of_the_whole_signal():
    cfg = FeatureConfig(n_mels=64)
    y = _test_signal()
    feats = compute_features(y, cfg)
    assert feats.dtype == np.float32 and feats.shape == (64, 1 + len(y) // cfg.hop_length)
    np.testing.assert_allclose(feats, LogMel(cfg)(torch.from_numpy(y)).numpy(), atol=1e-4)


def test_gain_shifts_logmel_by_the_gain_in_db():
    cfg = FeatureConfig(n_mels=64)
    y = _test_signal()
    a, b = compute_features(y, cfg), compute_features(y * 0.25, cfg)
    np.testing.assert_allclose(b - a, 20 * np.log10(0.25), atol=1e-3)


# ----------------------------------------------------------------------------- windows

SEGMENT_CASES = [(3.0, 0.5), (3.0, 0.0), (1.0, 0.75), (0.5, 0.9), (2.0, 0.25)]
LENGTHS = [1, 10, 42, 43, 44, 86, 129, 130, 258, 500, 1293]


@pytest.mark.parametrize("seconds,overlap", SEGMENT_CASES)
@pytest.mark.parametrize("n_frames", LENGTHS)
def test_frame_starts_cover_every_frame(seconds, overlap, n_frames):
    cfg = FeatureConfig(segment_seconds=seconds, segment_overlap=overlap)
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
    cfg = FeatureConfig(n_mels=16, segment_seconds=seconds, segment_overlap=overlap)
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
    cfg = FeatureConfig(n_mels=8)  # 129-frame windows
    spec = np.random.default_rng(0).uniform(-60, 0, size=(8, n_frames)).astype(np.float32)
    windows = segment(spec, cfg)
    assert windows.shape == (1, 8, cfg.segment_frames)
    np.testing.assert_array_equal(windows[0, :, :n_frames].numpy(), spec)
    assert torch.all(windows[0, :, n_frames:] == float(spec.min()))


def test_segment_frames_of_the_two_kinds():
    assert FeatureConfig().segment_frames == 129  # 3 s at 22050 / 512
    assert FeatureConfig().hop_frames == 64
    image = FeatureConfig(kind="kaggle-image")
    assert (image.n_bins, image.segment_frames) == (128, 33)  # 3 s of a 334-column, 30-s image
    assert FeatureConfig(segment_seconds=1.0).segment_frames == 43


# ----------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("shift", [-40.0, -3.5, 0.0, 12.0, 75.0])
@pytest.mark.parametrize("top_db", [40.0, 80.0])
def test_normalize_windows_is_gain_invariant_and_in_unit_range(shift, top_db):
    rng = np.random.default_rng(1)
    windows = torch.from_numpy(rng.uniform(-120, 0, size=(5, 16, 20)).astype(np.float32))
    a = normalize_windows(windows, top_db)
    b = normalize_windows(windows + shift, top_db)
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
    cfg = FeatureConfig(n_mels=64, segment_seconds=1.0)
    y = _test_signal(3.0)
    loud = normalize_windows(segment(compute_features(y, cfg), cfg), cfg.top_db)
    quiet = normalize_windows(segment(compute_features(y * 10 ** (-12 / 20), cfg), cfg), cfg.top_db)
    torch.testing.assert_close(loud, quiet, atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "cfg",
    [
        FeatureConfig(),
        FeatureConfig(kind="kaggle-image"),
        FeatureConfig(n_mels=32, n_fft=1024, hop_length=256, fmin=20.0, fmax=8000.0, top_db=60.0,
                      segment_seconds=1.5, segment_overlap=0.25),
    ],
)  # fmt: skip
def test_feature_config_round_trips(cfg):
    d = cfg.to_dict()
    assert isinstance(d, dict) and d["kind"] in FEATURE_KINDS
    assert FeatureConfig.from_dict(d) == cfg
    # unknown keys (from a newer version) are ignored
    assert FeatureConfig.from_dict({**d, "future_field": 1}) == cfg


@pytest.mark.parametrize("kind", ["mfcc", "", "LOGMEL"])
def test_feature_config_rejects_unknown_kind(kind):
    with pytest.raises(ValueError, match="feature kind"):
        FeatureConfig(kind=kind)


@pytest.mark.parametrize("overlap", [-0.1, 1.0, 1.5])
def test_feature_config_rejects_overlap_outside_0_1(overlap):
    with pytest.raises(ValueError, match="overlap"):
        FeatureConfig(segment_overlap=overlap)


def test_feature_config_is_frozen():
    with pytest.raises(AttributeError):
        FeatureConfig().n_mels = 64  # type: ignore[misc]


@pytest.mark.parametrize("seconds", [3.0, 15.0, 45.0])
def test_kaggle_image_features_keep_the_images_time_scale(seconds):
    # 334 columns always span 30 s, whatever the length of the audio (short audio is not stretched)
    from genrekit.features import FeatureConfig, compute_features

    y = (np.random.default_rng(0).standard_normal(int(seconds * 22050)) * 0.1).astype(np.float32)
    feats = compute_features(y, FeatureConfig(kind="kaggle-image"))
    assert feats.shape[0] == 128
    assert abs(feats.shape[1] - seconds / 30.0 * 334) <= 2
